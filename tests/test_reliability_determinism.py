"""Determinism on the CPU: one config and its seeds give one result, in any process.

The promise covers one machine, one torch thread count and one set of
library versions. Runs on a GPU, or with another torch build or thread
count, may give other weights and metrics.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ifm_core.config import RunConfig
from ifm_core.records import load_checkpoint
from ifm_core.training import load_data

TINY = dict(train_size=256, val_size=128, test_size=128, epochs=1, batch_size=64, test_agreements=[0.5])
TWIN = dict(method="ifm", seed=3, data_seed=5, **TINY)
# Two threads, so the check covers reductions split across threads. A fixed
# count keeps the result independent of the machine's cores.
TWIN_THREADS = "2"

# Wall-clock values differ between any two runs, but every other number must match.
TIMING_METRICS = ("wall_seconds", "train_images_per_second")

TRAIN_SCRIPT = """
import json, sys
from pathlib import Path
from ifm_core.config import RunConfig
from ifm_core.training import train
result = train(RunConfig(**json.loads(sys.argv[1])), results_root=Path(sys.argv[2]), progress=False)
print(result.folder)
"""


def start_training(values: dict, root: Path) -> subprocess.Popen:
    """Start a fresh Python process that trains ``values`` into ``root``."""
    command = [sys.executable, "-c", TRAIN_SCRIPT, json.dumps(values), str(root)]
    env = {**os.environ, "OMP_NUM_THREADS": TWIN_THREADS}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture(scope="module")
def twin_folders(tmp_path_factory) -> tuple[Path, Path]:
    # Both processes run at once to save wall time.
    processes = [start_training(TWIN, tmp_path_factory.mktemp(f"twin{index}")) for index in range(2)]
    folders = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        folders.append(Path(stdout.strip().splitlines()[-1]))
    return folders[0], folders[1]


def read_json(folder: Path, name: str):
    return json.loads((folder / name).read_text())


def tensor_leaves(value, path: str = "") -> dict[str, torch.Tensor]:
    """Return every tensor inside nested dicts and lists, keyed by its path."""
    if isinstance(value, torch.Tensor):
        return {path: value}
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return {}
    leaves = {}
    for key, item in items:
        leaves.update(tensor_leaves(item, f"{path}/{key}"))
    return leaves


def test_twin_runs_same_metrics(twin_folders):
    first, second = (read_json(folder, "metrics.json") for folder in twin_folders)
    for name in TIMING_METRICS:
        del first[name], second[name]
    assert first == second


def test_twin_runs_same_history(twin_folders):
    first, second = (read_json(folder, "history.json") for folder in twin_folders)
    for row in first + second:
        del row["seconds"]
    assert first == second


def test_twin_checkpoints_same_tensors(twin_folders):
    first, second = (tensor_leaves(load_checkpoint(folder)) for folder in twin_folders)
    assert first.keys() == second.keys()
    assert len(first) > 10
    for path, tensor in first.items():
        assert tensor.dtype == second[path].dtype, path
        assert tensor.numpy().tobytes() == second[path].numpy().tobytes(), path


@functools.cache
def split_bytes(config: RunConfig, include_training: bool = True) -> dict[str, bytes]:
    """Return the raw bytes of every tensor of every split ``config`` trains and tests on."""
    data = load_data(config)
    splits = dict(data.tests)
    if include_training:
        splits.update(train=data.train, val=data.val, val_shifted=data.val_shifted)
    return {
        f"{name}.{part}": getattr(split, part).numpy().tobytes()
        for name, split in splits.items()
        for part in ("images", "labels", "cues")
    }


@pytest.mark.parametrize("method", ["ifm", "sd"])
def test_methods_share_images(method):
    reference = split_bytes(RunConfig(method="ce", data_seed=5, **TINY))
    other = split_bytes(RunConfig(method=method, data_seed=5, ifm_weight=1.0, **TINY))
    assert other == reference


def test_oracle_shares_test_images():
    # The oracle trains with the cue independent of the label by design, but it is tested on the common test sets.
    reference = split_bytes(RunConfig(method="ce", data_seed=5, **TINY), include_training=False)
    oracle = split_bytes(RunConfig(method="oracle", data_seed=5, **TINY), include_training=False)
    assert oracle == reference


def test_model_seed_keeps_images():
    first = split_bytes(RunConfig(method="ce", seed=1, data_seed=5, **TINY))
    second = split_bytes(RunConfig(method="ce", seed=2, data_seed=5, **TINY))
    assert first == second


@pytest.mark.parametrize("part", ["train.images", "val.labels", "q=0.5.cues"])
def test_data_seed_changes_images(part):
    first = split_bytes(RunConfig(method="ce", data_seed=5, **TINY))
    second = split_bytes(RunConfig(method="ce", data_seed=6, **TINY))
    assert first[part] != second[part]
