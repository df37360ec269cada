"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

from ifm_core.mnist import Mnist, load_mnist


@pytest.fixture(scope="session")
def mnist() -> Mnist:
    """Real MNIST from the default data folder; the first run on a machine downloads it."""
    return load_mnist()
