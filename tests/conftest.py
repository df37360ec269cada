"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest
import torch

from ifm_core.mnist import Mnist, load_mnist


@pytest.fixture(scope="session")
def mnist() -> Mnist:
    """Real MNIST from the default data folder; the first run on a machine downloads it."""
    return load_mnist()


@pytest.fixture(scope="module")
def one_thread():
    """Train on one thread: fastest for tiny runs on a busy machine, and the same count as worker subprocesses."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
