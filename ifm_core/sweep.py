"""Grids of runs: the study's profiles and a resumable, parallel sweep over them.

A run whose record is complete is skipped; a run with a partial or failed
record is trained again from the start. Runs go to worker processes, each
limited to its share of the CPU threads, because small convolutions use
threads poorly and two single-threaded runs finish sooner than two
two-threaded runs one after the other.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig
from .data import ShiftedMNIST, build_shifted_mnist
from .mnist import load_mnist
from .paths import results_dir
from .progress import progress_bar
from .records import is_complete, run_dir, runs_dir
from .training import data_settings, train

logger = logging.getLogger(__name__)

IFM_WEIGHTS = (0.1, 0.3, 1.0, 3.0)
SD_WEIGHTS = (0.01, 0.1, 1.0)
REFERENCE_METHODS = ("oracle", "cue_only")


@dataclass(frozen=True)
class Profile:
    """A named grid of runs and the data and training sizes they share."""

    name: str
    cue_types: tuple[str, ...]
    seeds: tuple[int, ...]
    ifm_weights: tuple[float, ...]
    sd_weights: tuple[float, ...]
    sizes: dict[str, int | None]
    ablations: tuple[dict[str, object], ...] = ()

    def configs(self) -> list[RunConfig]:
        """Return one config per run: every method, weight, cue type and seed of the grid."""
        variants: list[dict[str, object]] = [{"method": "ce"}]
        variants += [{"method": "ifm", "ifm_weight": weight} for weight in self.ifm_weights]
        variants += [{"method": "sd", "sd_weight": weight} for weight in self.sd_weights]
        variants += [{"method": name} for name in REFERENCE_METHODS]
        variants += [{"method": "ifm", **ablation} for ablation in self.ablations]
        return [
            RunConfig(cue_type=cue_type, seed=seed, data_seed=seed, **self.sizes, **variant)
            for cue_type in self.cue_types
            for seed in self.seeds
            for variant in variants
        ]


PROFILES = {
    "quick": Profile(
        name="quick",
        cue_types=("pixel",),
        seeds=(0,),
        ifm_weights=(0.3, 1.0),
        sd_weights=(0.1,),
        sizes={"train_size": 2000, "val_size": 1000, "test_size": 1000, "epochs": 2},
    ),
    "default": Profile(
        name="default",
        cue_types=("pixel", "texture"),
        seeds=(0, 1, 2, 3, 4),
        ifm_weights=IFM_WEIGHTS,
        sd_weights=SD_WEIGHTS,
        sizes={"train_size": 10_000, "val_size": 2000, "test_size": None, "epochs": 3},
    ),
    "full": Profile(
        name="full",
        cue_types=("pixel", "texture", "position"),
        seeds=(0, 1, 2, 3, 4),
        ifm_weights=IFM_WEIGHTS,
        sd_weights=SD_WEIGHTS,
        sizes={"train_size": None, "val_size": 5000, "test_size": None, "epochs": 5},
        ablations=(
            {"ifm_weight": 1.0, "estimator": "dv"},
            {"ifm_weight": 1.0, "estimator": "infonce"},
            {"ifm_weight": 1.0, "critic": "local"},
            {"ifm_weight": 1.0, "include_input": True},
        ),
    ),
}


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``; raise ValueError listing the valid names."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {list(PROFILES)}")
    return PROFILES[name]


def default_workers() -> int:
    """Return one worker per available CPU core."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def pending(configs: Iterable[RunConfig], root: Path | None = None) -> list[RunConfig]:
    """Return the configs whose record under ``root`` is not complete, in order, without duplicates."""
    seen: set[str] = set()
    missing = []
    for config in configs:
        name = config.run_name()
        if name not in seen and not is_complete(run_dir(config, root)):
            missing.append(config)
        seen.add(name)
    return missing


@dataclass(frozen=True)
class SweepOutcome:
    """The outcome of a sweep: runs trained now, runs found complete, and failures with their errors."""

    trained: list[str]
    skipped: list[str]
    failed: dict[str, str]


def run_sweep(
    configs: Sequence[RunConfig],
    root: Path | None = None,
    *,
    workers: int | None = None,
    progress: bool = True,
) -> SweepOutcome:
    """Train every config whose record under ``root`` is not complete.

    Records go to ``root`` (default ``results/runs``). A failed run is
    recorded as failed and the sweep goes on; the outcome lists it.
    """
    root = runs_dir(root)
    workers = workers or default_workers()
    todo = pending(configs, root)
    todo_names = {config.run_name() for config in todo}
    skipped = sorted({config.run_name() for config in configs} - todo_names)
    logger.info("%d runs complete, %d to train with %d workers", len(skipped), len(todo), workers)

    bar = progress_bar(len(todo), "runs", enabled=progress, unit="run")
    trained: list[str] = []
    failed: dict[str, str] = {}
    with bar:
        for name, error in _execute(todo, root, workers):
            if error is None:
                trained.append(name)
            else:
                failed[name] = error
                logger.warning("run %s failed: %s", name, error)
            bar.update(1)
    return SweepOutcome(trained=trained, skipped=skipped, failed=failed)


def _execute(todo: list[RunConfig], root: Path, workers: int) -> Iterable[tuple[str, str | None]]:
    if workers == 1 or len(todo) <= 1:
        for config in todo:
            yield _run_one(config.to_dict(), str(root))
        return

    # NOTE: on the CPU the torch thread count changes the trained weights, so a
    # sweep resumed with another number of workers can differ from an
    # uninterrupted one. config.json records the count as environment.torch_threads.
    threads = max(1, torch.get_num_threads() // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=torch.set_num_threads, initargs=(threads,)) as pool:
        futures: set[Future] = {pool.submit(_run_one, config.to_dict(), str(root)) for config in todo}
        try:
            while futures:
                done, futures = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _run_one(config_values: dict, root: str) -> tuple[str, str | None]:
    """Train one run in the current process; return its name and its error, if any."""
    config = RunConfig(**config_values)
    try:
        data = _cached_data(tuple(data_settings(config).items()))
        train(config, data, results_root=Path(root), progress=False)
    except Exception as error:  # recorded as failed by train(); the sweep goes on
        return config.run_name(), f"{type(error).__name__}: {error}"
    return config.run_name(), None


@functools.lru_cache(maxsize=2)
def _cached_data(settings: tuple[tuple[str, Any], ...]) -> ShiftedMNIST:
    """Build the images for ``settings`` once per worker, so runs of the same data share them."""
    return build_shifted_mnist(load_mnist(), **dict(settings))


def study_dir(profile: str) -> Path:
    """Return the folder of one profile's study: run records, tables and figures."""
    return results_dir() / "studies" / profile
