"""Ways to damage a cached MNIST file, shared by the data-integrity tests."""

import numpy as np


def flip_bytes(path):
    """Invert 64 bytes in the middle of the file, inside the training images."""
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    content[middle : middle + 64] = bytes(byte ^ 0xFF for byte in content[middle : middle + 64])
    path.write_bytes(bytes(content))


def change_pixel(path, array_name="train_images"):
    """Rewrite the cache as a valid npz whose first image of ``array_name`` differs in one pixel."""
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays[array_name][0, 0, 0] ^= 0xFF
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
