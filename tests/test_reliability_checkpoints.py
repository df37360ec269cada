"""Checkpoints hold only tensors and plain values, and the package uses no DataLoader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import ifm_core
from ifm_core.config import RunConfig
from ifm_core.training import train

TINY = dict(train_size=256, val_size=128, test_size=128, epochs=1, batch_size=64, test_agreements=[0.5])
PLAIN_TYPES = (torch.Tensor, str, int, float, bool, type(None))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["ce", "ifm"])
def checkpoint_path(request, tmp_path_factory) -> Path:
    config = RunConfig(method=request.param, **TINY)
    result = train(config, results_root=tmp_path_factory.mktemp(request.param), progress=False)
    return result.folder / "checkpoint.pt"


def non_plain_values(value, path: str = "") -> list[str]:
    """Return the path and type of every value that is not a tensor, container or plain scalar."""
    if isinstance(value, dict):
        found = [f"{path} key {key!r}" for key in value if not isinstance(key, (str, int))]
        for key, item in value.items():
            found += non_plain_values(item, f"{path}/{key}")
        return found
    if isinstance(value, (list, tuple)):
        found = []
        for index, item in enumerate(value):
            found += non_plain_values(item, f"{path}/{index}")
        return found
    if isinstance(value, PLAIN_TYPES):
        return []
    return [f"{path}: {type(value).__module__}.{type(value).__qualname__}"]


def test_checkpoint_loads_weights_only(checkpoint_path):
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    assert set(state) == {"config", "method", "optimizer", "step"}


def test_checkpoint_values_plain(checkpoint_path):
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    assert non_plain_values(state) == []


def test_checkpoint_weights_are_tensors(checkpoint_path):
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    assert all(isinstance(value, torch.Tensor) for value in state["method"].values())


def test_checkpoint_restores_config(checkpoint_path):
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    assert RunConfig(**state["config"]).method == checkpoint_path.parent.name.split("-")[0]


def test_plain_check_detects_object():
    # The walk above must reject what weights_only loading would also reject.
    assert non_plain_values({"config": RunConfig(), "step": 3}) == ["/config: ifm_core.config.RunConfig"]


def test_no_dataloader_in_package():
    # Training and evaluation slice in-memory tensors, so no worker process
    # draws random numbers. A DataLoader with num_workers > 0 would need each
    # worker seeded from the run's seed (worker_init_fn and a generator) and
    # a test that no image repeats across workers. Add both before using one.
    package = Path(ifm_core.__file__).parent
    pattern = re.compile(r"\bDataLoader\b|torch\.utils\.data|num_workers")
    users = [path.name for path in sorted(package.rglob("*.py")) if pattern.search(path.read_text())]
    assert users == []
