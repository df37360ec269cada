"""Interrupted runs and sweeps: SIGKILL and Ctrl-C leave nothing read as complete, and a rerun resumes.

Each killed process runs a real sweep and pauses at one chosen point (after
an epoch, inside the checkpoint write, after metrics.json) so the kill
lands there every time instead of at a random moment.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import ifm_core.records as records
from ifm_core.config import RunConfig
from ifm_core.records import is_complete, read_status, run_dir
from ifm_core.results import SUMMARY_METRICS, load_runs, summarize
from ifm_core.sweep import run_sweep

TINY = dict(
    method="ce", train_size=256, val_size=128, test_size=128, epochs=2, batch_size=64, test_agreements=[0.5]
)
SWEEP = [RunConfig(seed=seed, **TINY) for seed in (0, 1, 2)]
FIRST, KILLED, UNSTARTED = (config.run_name() for config in SWEEP)
IN_CHECKPOINT = RunConfig(seed=3, **TINY)
AFTER_METRICS = RunConfig(seed=4, **TINY)
INTERRUPTED = RunConfig(seed=5, **TINY)

# Columns that differ between any two runs of one config: wall time and where the record lies.
RUN_SPECIFIC = ["folder", "wall_seconds", "train_images_per_second"]

PAUSE_SCRIPT = """
import json, sys, time
from pathlib import Path
import ifm_core.atomic as atomic
import ifm_core.records as records
from ifm_core.config import RunConfig
from ifm_core.sweep import run_sweep

stage, target, root = sys.argv[1], sys.argv[2], Path(sys.argv[3])
configs = [RunConfig(**values) for values in json.loads(sys.argv[4])]

def pause():
    print("paused", flush=True)
    time.sleep(600)

add_epoch = records.RunRecord.add_epoch

def add_epoch_then_pause(self, row):
    add_epoch(self, row)
    if stage == "epoch" and self.folder.name == target:
        pause()

def write_atomic_with_pause(path, write):
    if stage == "checkpoint" and path.name == "checkpoint.pt" and path.parent.name == target:
        def write_then_pause(tmp):
            write(tmp)
            pause()
        return atomic.write_atomic(path, write_then_pause)
    return atomic.write_atomic(path, write)

def write_json_then_pause(path, payload):
    atomic.write_json_atomic(path, payload)
    if stage == "metrics" and path.name == "metrics.json" and path.parent.name == target:
        pause()

records.RunRecord.add_epoch = add_epoch_then_pause
records.write_atomic = write_atomic_with_pause
records.write_json_atomic = write_json_then_pause
run_sweep(configs, root, workers=1, progress=False)
"""


pytestmark = pytest.mark.usefixtures("one_thread")


def start_paused_sweep(stage: str, target: RunConfig, configs: list[RunConfig], root: Path, log: Path):
    """Start a sweep in a new process that pauses at ``stage`` of the run ``target``."""
    values = json.dumps([config.to_dict() for config in configs])
    command = [sys.executable, "-c", PAUSE_SCRIPT, stage, target.run_name(), str(root), values]
    with open(log, "w") as stderr:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)


def wait_for_pause(process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready:
            line = process.stdout.readline()
            if line.strip() == "paused":
                return
            if line == "":
                break
    process.kill()
    pytest.fail(f"the sweep ended or timed out before its pause point:\n{log.read_text()[-3000:]}")


def read_status_json(folder: Path) -> dict:
    """Return the contents of status.json, or an empty dict when it is missing or not valid JSON."""
    try:
        return json.loads((folder / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def folder_state(folder: Path) -> dict:
    """Return what a reader sees in a run folder: its status, completeness and file names."""
    return {
        "exists": folder.is_dir(),
        "complete": is_complete(folder),
        "status": read_status(folder),
        "files": sorted(path.name for path in folder.iterdir()) if folder.is_dir() else [],
        "status_json": read_status_json(folder),
    }


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Kill four paused sweeps (three with SIGKILL, one with SIGINT) and record what they left."""
    base = tmp_path_factory.mktemp("killed")
    plans = {
        "sweep": ("epoch", SWEEP[1], SWEEP, signal.SIGKILL),
        "checkpoint": ("checkpoint", IN_CHECKPOINT, [IN_CHECKPOINT], signal.SIGKILL),
        "metrics": ("metrics", AFTER_METRICS, [AFTER_METRICS], signal.SIGKILL),
        "sigint": ("epoch", INTERRUPTED, [INTERRUPTED], signal.SIGINT),
    }
    processes = {}
    for name, (stage, target, configs, _) in plans.items():
        processes[name] = start_paused_sweep(stage, target, configs, base / name, base / f"{name}.log")

    for name, (_, _, _, kill_signal) in plans.items():
        wait_for_pause(processes[name], base / f"{name}.log")
        processes[name].send_signal(kill_signal)
    for process in processes.values():
        process.wait(timeout=120)

    states = {config.run_name(): folder_state(run_dir(config, base / "sweep")) for config in SWEEP}
    for name, (_, target, _, _) in plans.items():
        if name != "sweep":
            states[name] = folder_state(run_dir(target, base / name))
    return {
        "base": base,
        "states": states,
        "sweep_table": load_runs(base / "sweep"),
        "metrics_table": load_runs(base / "metrics"),
        "returncodes": {name: process.returncode for name, process in processes.items()},
        "sigint_log": (base / "sigint.log").read_text(),
    }


@pytest.fixture(scope="module")
def resumed(killed, tmp_path_factory):
    """Resume the killed sweep, and run the same configs without interruption for comparison."""
    outcome = run_sweep(SWEEP, killed["base"] / "sweep", workers=1, progress=False)
    uninterrupted_root = tmp_path_factory.mktemp("uninterrupted")
    run_sweep(SWEEP, uninterrupted_root, workers=1, progress=False)
    return {
        "outcome": outcome,
        "table": load_runs(killed["base"] / "sweep"),
        "uninterrupted_table": load_runs(uninterrupted_root),
    }


def test_sweep_kill_keeps_finished_run(killed):
    assert killed["states"][FIRST]["complete"]


def test_sweep_kill_run_not_complete(killed):
    assert not killed["states"][KILLED]["complete"]


def test_sweep_kill_run_still_running(killed):
    assert killed["states"][KILLED]["status"] == "running"


def test_sweep_kill_leaves_no_metrics(killed):
    assert "metrics.json" not in killed["states"][KILLED]["files"]


def test_sweep_kill_leaves_no_checkpoint(killed):
    assert "checkpoint.pt" not in killed["states"][KILLED]["files"]


def test_sweep_kill_before_next_run(killed):
    assert not killed["states"][UNSTARTED]["exists"]


def test_killed_run_counted_not_complete(killed):
    summary = summarize(killed["sweep_table"])
    assert summary["n"].tolist() == [1]
    assert summary["n_failed"].tolist() == [1]


def test_killed_run_has_no_metrics_row(killed):
    table = killed["sweep_table"].set_index("run_name")
    assert pd.isna(table.loc[KILLED, "in_distribution_accuracy"])


def test_checkpoint_kill_not_complete(killed):
    assert not killed["states"]["checkpoint"]["complete"]


def test_checkpoint_kill_no_checkpoint(killed):
    # Only the temporary file exists; a direct write would have left a truncated checkpoint.pt.
    assert "checkpoint.pt" not in killed["states"]["checkpoint"]["files"]


def test_checkpoint_kill_leaves_temporary(killed):
    temporaries = [name for name in killed["states"]["checkpoint"]["files"] if name.endswith(".tmp")]
    assert len(temporaries) == 1


def test_metrics_kill_not_complete(killed):
    # metrics.json is in place, but status.json is written last and still reads running.
    state = killed["states"]["metrics"]
    assert "metrics.json" in state["files"]
    assert not state["complete"]


def test_metrics_kill_not_read(killed):
    table = killed["metrics_table"]
    assert "in_distribution_accuracy" not in table.columns


def test_metrics_kill_counted(killed):
    assert summarize(killed["metrics_table"])["n_failed"].tolist() == [1]


def test_sigint_exits_nonzero(killed):
    assert killed["returncodes"]["sigint"] != 0


def test_sigint_raises_keyboard_interrupt(killed):
    assert "KeyboardInterrupt" in killed["sigint_log"]


def test_sigint_marks_failed(killed):
    assert killed["states"]["sigint"]["status"] == "failed"


def test_sigint_error_recorded(killed):
    assert killed["states"]["sigint"]["status_json"].get("error", "").startswith("KeyboardInterrupt")


def test_resume_skips_complete(resumed):
    assert resumed["outcome"].skipped == [FIRST]


def test_resume_trains_missing(resumed):
    assert sorted(resumed["outcome"].trained) == sorted([KILLED, UNSTARTED])


def test_resume_no_failures(resumed):
    assert resumed["outcome"].failed == {}


def test_resumed_runs_equal_uninterrupted(resumed):
    resumed_table = resumed["table"].drop(columns=RUN_SPECIFIC).set_index("run_name")
    uninterrupted = resumed["uninterrupted_table"].drop(columns=RUN_SPECIFIC).set_index("run_name")
    pd.testing.assert_frame_equal(resumed_table, uninterrupted, check_exact=True)


def test_resumed_summary_equals_uninterrupted(resumed):
    summary = summarize(resumed["table"])
    uninterrupted = summarize(resumed["uninterrupted_table"])
    pd.testing.assert_frame_equal(summary, uninterrupted, check_exact=True)
    assert summary["n"].tolist() == [3]


def test_resumed_summary_has_metrics(resumed):
    # Guards the two comparisons above against passing on empty or all-NaN tables.
    summary = summarize(resumed["table"])
    for metric in SUMMARY_METRICS:
        assert summary[metric].notna().all(), metric


def test_rerun_clears_temporary_files(killed):
    root = killed["base"] / "checkpoint"
    outcome = run_sweep([IN_CHECKPOINT], root, workers=1, progress=False)
    assert outcome.trained == [IN_CHECKPOINT.run_name()]
    assert not list(run_dir(IN_CHECKPOINT, root).glob("*.tmp"))


def test_keyboard_interrupt_stops_sweep(tmp_path, monkeypatch):
    # Ctrl-C in a notebook raises KeyboardInterrupt in the kernel. It must end
    # the whole sweep, not count as one failed run.
    def interrupt(self, row):
        raise KeyboardInterrupt

    monkeypatch.setattr(records.RunRecord, "add_epoch", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(SWEEP[:2], tmp_path, workers=1, progress=False)
    assert read_status(run_dir(SWEEP[0], tmp_path)) == "failed"
    assert not run_dir(SWEEP[1], tmp_path).exists()
