"""Per-run records on disk: one folder per run, written so a crash never leaves a half-written file.

A run folder contains ``config.json`` (written first), ``history.json`` (one
row per epoch, rewritten after each epoch), ``checkpoint.pt``,
``metrics.json`` and ``status.json``. Every file is written to a temporary
name and renamed. ``status.json`` contains ``running``, ``failed`` (with the
error) or ``complete``. It is written last, so a run counts as complete
only when every other file is already in place.
"""

from __future__ import annotations

import json
import platform
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .atomic import write_atomic, write_json_atomic
from .config import RunConfig
from .paths import RESULTS_DIR_VARIABLE, results_dir

RUNS_FOLDER = "runs"
STATUS_RUNNING = "running"
STATUS_FAILED = "failed"
STATUS_COMPLETE = "complete"


def runs_dir(root: Path | None = None) -> Path:
    """Return the folder of run records: ``<results>/runs`` unless ``root`` is given."""
    return Path(root) if root is not None else results_dir() / RUNS_FOLDER


def run_dir(config: RunConfig, root: Path | None = None) -> Path:
    """Return the folder of the run that ``config`` describes."""
    return runs_dir(root) / config.run_name()


def read_status(folder: Path) -> str | None:
    """Return the status stored in ``folder``, or None when it has none or an unreadable one."""
    try:
        return json.loads((Path(folder) / "status.json").read_text())["status"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_complete(folder: Path) -> bool:
    """Return whether the run in ``folder`` finished and wrote every file."""
    return read_status(folder) == STATUS_COMPLETE


def environment() -> dict[str, Any]:
    """Describe the software and machine a run used."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.machine(),
        "torch_threads": torch.get_num_threads(),
    }


@dataclass
class RunRecord:
    """Writes one run's folder step by step."""

    folder: Path
    config: RunConfig
    history: list[dict[str, float]] = field(default_factory=list)

    def start(self, device: str) -> None:
        """Clear files of an earlier attempt and write the configuration.

        Raises OSError naming the folder and ``IFM_RESULTS_DIR`` when the
        run folder cannot be created.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OSError(
                f"cannot create the run folder {self.folder} ({error}); set {RESULTS_DIR_VARIABLE} "
                "or pass results_root to use a writable folder"
            ) from error
        # status.json goes first, so a crash during the clean-up cannot leave
        # an old "complete" next to a half-removed set of files.
        for name in ("status.json", "metrics.json", "history.json", "checkpoint.pt"):
            (self.folder / name).unlink(missing_ok=True)
        # Temporary files of writes that an earlier attempt did not finish.
        for leftover in self.folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        write_json_atomic(
            self.folder / "config.json",
            {
                "config": self.config.to_dict(),
                "run_name": self.config.run_name(),
                "device": device,
                "environment": environment(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
        write_json_atomic(self.folder / "status.json", {"status": STATUS_RUNNING})

    def add_epoch(self, row: dict[str, float]) -> None:
        self.history.append(row)
        write_json_atomic(self.folder / "history.json", self.history)

    def finish(self, metrics: dict[str, Any], state: dict[str, Any]) -> None:
        """Write the checkpoint and metrics, then mark the run complete."""
        write_atomic(self.folder / "checkpoint.pt", lambda tmp: torch.save(state, tmp))
        write_json_atomic(self.folder / "metrics.json", metrics)
        write_json_atomic(self.folder / "status.json", {"status": STATUS_COMPLETE})

    def fail(self, error: BaseException) -> None:
        """Mark the run failed, keeping the error for aggregation to report."""
        write_json_atomic(
            self.folder / "status.json",
            {
                "status": STATUS_FAILED,
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exception(error),
            },
        )


def load_checkpoint(folder: Path) -> dict[str, Any]:
    """Load a run's checkpoint with ``weights_only=True`` (tensors and plain values only)."""
    return torch.load(Path(folder) / "checkpoint.pt", map_location="cpu", weights_only=True)
