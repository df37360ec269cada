"""The per-sample shiftedMNIST pipeline that the vectorized code is compared against.

This is how a user would usually write the dataset without ``ifm_core``: a
``torch.utils.data.Dataset`` whose ``__getitem__`` converts one digit to
float and draws its cue, read through a ``DataLoader``. The cue classes are
drawn once per split with the same seeded generators as
``ifm_core.data.build_shifted_mnist``, so both pipelines yield the same
images and the benchmark can check that they do. Only the drawing of each
image happens per sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from ifm_core import data as shifted
from ifm_core.mnist import Mnist


class PerSampleShiftedMNIST(Dataset):
    """Digits with one cue each, drawn in ``__getitem__``; items are (image (1, S, S), label)."""

    def __init__(self, digits: torch.Tensor, labels: torch.Tensor, cues: torch.Tensor, cue_type: str) -> None:
        if cue_type not in shifted.CUE_TYPES:
            raise ValueError(f"cue_type={cue_type!r} is unknown; use one of {shifted.CUE_TYPES}")
        self.digits = digits  # (N, 28, 28) uint8
        self.labels = labels  # (N,) int64
        self.cues = cues  # (N,) int64, NO_CUE where the image gets no cue
        self.cue_type = cue_type
        self.gratings = _texture_gratings() if cue_type == "texture" else None  # (10, 28, 28)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        pixels = self.digits[index].float() / 255.0  # (28, 28)
        cue = int(self.cues[index])
        if self.cue_type == "pixel":
            image = _draw_pixel_cue(pixels, cue)
        elif self.cue_type == "texture":
            image = _draw_texture_cue(pixels, cue, self.gratings)
        else:
            image = _draw_position_cue(pixels, cue)
        return image.unsqueeze(0), int(self.labels[index])


def _draw_pixel_cue(pixels: torch.Tensor, cue: int) -> torch.Tensor:
    if cue != shifted.NO_CUE:
        left = shifted.PIXEL_FIRST_COLUMN + shifted.PIXEL_PATCH_SIZE * cue
        pixels[: shifted.PIXEL_PATCH_SIZE, left : left + shifted.PIXEL_PATCH_SIZE] = 1.0
    return pixels


def _draw_texture_cue(pixels: torch.Tensor, cue: int, gratings: torch.Tensor) -> torch.Tensor:
    if cue == shifted.NO_CUE:
        return pixels
    return pixels + (1.0 - pixels) * gratings[cue]


def _draw_position_cue(pixels: torch.Tensor, cue: int) -> torch.Tensor:
    top, left = shifted.POSITION_CENTER_OFFSET if cue == shifted.NO_CUE else shifted.POSITION_OFFSETS[cue]
    canvas = torch.zeros(shifted.POSITION_CANVAS_SIZE, shifted.POSITION_CANVAS_SIZE)  # (40, 40)
    canvas[top : top + shifted.DIGIT_SIZE, left : left + shifted.DIGIT_SIZE] = pixels
    return canvas


def _texture_gratings() -> torch.Tensor:
    """Compute the ten gratings once, from the formula in the ``ifm_core.data`` docstring.

    Computing in float64 and rounding once to float32, as ``ifm_core.data``
    does, gives the same bytes, so the two pipelines stay comparable.
    """
    size = shifted.DIGIT_SIZE
    coordinates = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = torch.meshgrid(coordinates, coordinates, indexing="ij")  # (28, 28) each
    gratings = []
    for cue_class in range(shifted.NUM_CLASSES):
        angle = math.pi * cue_class / shifted.NUM_CLASSES
        period = 4.0 + 0.5 * cue_class
        phase = 2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / period
        gratings.append(shifted.TEXTURE_AMPLITUDE * 0.5 * (1 + torch.cos(phase)))
    return torch.stack(gratings).to(torch.float32)  # (10, 28, 28)


def read_all(dataset: Dataset, batch_size: int, workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Read every item of ``dataset`` in order through a DataLoader; return (images, labels)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    images, labels = zip(*loader)
    return torch.cat(images), torch.cat(labels)  # (N, 1, S, S), (N,)


def per_sample_splits(
    mnist: Mnist,
    *,
    cue_type: str,
    train_cue_agreement: float,
    test_agreements: Sequence[float],
    data_seed: int,
    train_size: int | None,
    val_size: int,
    test_size: int | None,
) -> dict[str, PerSampleShiftedMNIST]:
    """Build the per-sample datasets of the splits that ``build_shifted_mnist`` builds, keyed by split name.

    Keys are "train", "val", "val_shifted" and the test keys ("q=0.1", ...,
    "clean"). The digits, labels and cue classes match ``build_shifted_mnist``
    called with the same arguments.
    """
    val_indices, train_indices = shifted.training_split_indices(data_seed, val_size, train_size)
    sources = {
        "train": (mnist.train_images[train_indices], mnist.train_labels[train_indices], train_cue_agreement),
        "val": (mnist.train_images[val_indices], mnist.train_labels[val_indices], train_cue_agreement),
        "val_shifted": (
            mnist.train_images[val_indices],
            mnist.train_labels[val_indices],
            shifted.SHIFTED_AGREEMENT,
        ),
    }
    test_digits, test_labels = mnist.test_images[:test_size], mnist.test_labels[:test_size]
    for agreement in [*test_agreements, None]:
        sources[shifted.test_key(agreement)] = (test_digits, test_labels, agreement)

    datasets = {}
    for name, (digits, labels, agreement) in sources.items():
        if agreement is None:
            cues = torch.full_like(labels, shifted.NO_CUE)  # (N,)
        else:
            cues = shifted.draw_cue_classes(labels, agreement, shifted.split_generator(data_seed, name))  # (N,)
        datasets[name] = PerSampleShiftedMNIST(digits, labels, cues, cue_type)
    return datasets
