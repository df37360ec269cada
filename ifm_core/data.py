"""The shiftedMNIST generator: MNIST digits with a class-coded cue.

Each image carries a cue that encodes a class in 0..9. In a split with cue
agreement q, the cue equals the digit's label with probability q. Otherwise
it encodes a class drawn uniformly from the other nine. Training uses q = p,
the shifted test uses q = 0.1 (the cue is then uniform over all ten classes
and so independent of the label), and the adversarial test uses q = 0 (the
cue always encodes a wrong class).

Cue types:

- ``pixel``: a 2x2 patch of value 1.0 in the top two rows, at columns
  ``4 + 2c`` and ``5 + 2c`` for class c. Those rows contain ink in 0.44 % of
  the 60,000 MNIST training digits.
- ``texture``: a background grating of amplitude 0.3 whose orientation and
  period depend on the class, drawn under the digit as
  ``digit + (1 - digit) * texture``.
- ``position``: the digit placed on a 40x40 canvas at a class-specific offset.
  A digit without a cue sits at the centre offset (6, 6).

All randomness comes from explicit ``torch.Generator`` objects seeded from
``data_seed`` and a split name, so every split is reproducible on its own.
"""

from __future__ import annotations

import functools
import math
import numbers
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ifm_core.mnist import Mnist

CUE_TYPES = ("pixel", "texture", "position")
NO_CUE = -1  # cue class of an image without a cue
SHIFTED_AGREEMENT = 0.1  # q of the standard shifted test
ADVERSARIAL_AGREEMENT = 0.0

NUM_CLASSES = 10
DIGIT_SIZE = 28
POSITION_CANVAS_SIZE = 40

PIXEL_PATCH_SIZE = 2
PIXEL_FIRST_COLUMN = 4

TEXTURE_AMPLITUDE = 0.3

# (dy, dx) of the digit's top-left corner on the 40x40 canvas for each class.
# They are ten points on a circle of radius 6 around the centre offset,
# rounded to whole pixels, so no cue offset equals the centre offset.
POSITION_OFFSETS = (
    (6, 12), (10, 11), (12, 8), (12, 4), (10, 1),
    (6, 0), (2, 1), (0, 4), (0, 8), (2, 11),
)
POSITION_CENTER_OFFSET = (6, 6)

# With show_digit=False a position cue needs something to place, so a solid
# square over the central 20x20, where MNIST digits are drawn, replaces the
# digit.
DIGIT_BOX_START = 4
DIGIT_BOX_SIZE = 20

NUM_TRAINING_DIGITS = 60000
NUM_TEST_DIGITS = 10000


def image_size(cue_type: str) -> int:
    """Return the side length of images with cue type ``cue_type``."""
    _check_cue_type(cue_type)
    return POSITION_CANVAS_SIZE if cue_type == "position" else DIGIT_SIZE


@dataclass(frozen=True)
class ShiftedSplit:
    """One set of shiftedMNIST images with their labels and cue classes."""

    images: torch.Tensor  # (N, 1, S, S) float32 in [0, 1]
    labels: torch.Tensor  # (N,) int64 digit
    cues: torch.Tensor  # (N,) int64 cue class, NO_CUE where none

    def __len__(self) -> int:
        return len(self.labels)

    def cue_agreement(self) -> float:
        """Return the fraction of cued images whose cue equals the label (nan if none has a cue)."""
        has_cue = self.cues != NO_CUE
        if not bool(has_cue.any()):
            return math.nan
        agrees = self.cues[has_cue] == self.labels[has_cue]
        return agrees.double().mean().item()


@dataclass(frozen=True)
class ShiftedMNIST:
    """The splits of one shiftedMNIST dataset."""

    cue_type: str
    train: ShiftedSplit  # q = p
    val: ShiftedSplit  # held-out training digits, q = p
    val_shifted: ShiftedSplit  # the same held-out digits, q = SHIFTED_AGREEMENT
    tests: dict[str, ShiftedSplit]  # keys test_key(q) for each q, plus "clean"


def test_key(agreement: float | None) -> str:
    """Return the key of a test split in :attr:`ShiftedMNIST.tests`: "q=0.1" or "clean"."""
    return "clean" if agreement is None else f"q={agreement:g}"


def draw_cue_classes(labels: torch.Tensor, agreement: float, generator: torch.Generator) -> torch.Tensor:
    """Draw one cue class per label that equals the label with probability ``agreement``.

    A cue that disagrees is uniform over the nine other classes.
    """
    _check_labels(labels)
    _check_agreement("agreement", agreement)
    count = labels.shape[0]
    agrees = torch.rand(count, generator=generator) < agreement  # (N,) bool
    # Adding 1..9 modulo 10 reaches each of the nine other classes once.
    shifts = torch.randint(1, NUM_CLASSES, (count,), generator=generator)  # (N,)
    other_classes = (labels + shifts) % NUM_CLASSES  # (N,)
    return torch.where(agrees, labels, other_classes)


def render(digits: torch.Tensor, cues: torch.Tensor, cue_type: str, show_digit: bool = True) -> torch.Tensor:
    """Draw the cue of each class in ``cues`` onto the matching digit.

    ``digits`` is (N, 28, 28) uint8 and ``cues`` is (N,) int64 with NO_CUE
    allowed. Returns (N, 1, S, S) float32 in [0, 1], S = image_size(cue_type).
    With ``show_digit=False`` the cue is drawn on a blank canvas.
    """
    _check_cue_type(cue_type)
    _check_digits(digits)
    _check_cues(cues, digits.shape[0])

    if cue_type == "position":
        return _render_position(digits, cues, show_digit).unsqueeze(1)  # (N, 1, 40, 40)

    pixels = digits.to(torch.float32) / 255.0 if show_digit else torch.zeros(digits.shape)  # (N, 28, 28)
    if cue_type == "pixel":
        patches = _pixel_templates()[_template_index(cues)]  # (N, 28, 28)
        images = torch.maximum(pixels, patches)
    else:
        textures = _texture_templates()[_template_index(cues)]  # (N, 28, 28)
        images = pixels + (1.0 - pixels) * textures
    return images.unsqueeze(1)  # (N, 1, 28, 28)


def make_split(
    digits: torch.Tensor,
    labels: torch.Tensor,
    cue_type: str,
    agreement: float | None,
    generator: torch.Generator,
    show_digit: bool = True,
) -> ShiftedSplit:
    """Draw cues with the given agreement and render them. ``agreement=None`` gives a clean split."""
    _check_cue_type(cue_type)
    _check_labels(labels)
    if agreement is None:
        cues = torch.full_like(labels, NO_CUE)  # (N,)
    else:
        cues = draw_cue_classes(labels, agreement, generator)  # (N,)
    images = render(digits, cues, cue_type, show_digit)
    return ShiftedSplit(images=images, labels=labels, cues=cues)


def training_split_indices(
    data_seed: int, val_size: int, train_size: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (validation, training) indices into the 60,000 MNIST training digits.

    Both come from one permutation seeded by ``data_seed``, so they never
    overlap. ``train_size=None`` takes every digit not in validation.
    """
    _check_seed(data_seed)
    _check_training_sizes(val_size, train_size)
    permutation = torch.randperm(NUM_TRAINING_DIGITS, generator=split_generator(data_seed, "permutation"))
    train_end = NUM_TRAINING_DIGITS if train_size is None else val_size + train_size
    return permutation[:val_size], permutation[val_size:train_end]


def split_generator(data_seed: int, name: str) -> torch.Generator:
    """Return a generator seeded from ``data_seed`` and the split ``name``.

    Seeding each split on its own means adding a split leaves the bytes of
    every other split unchanged.
    """
    seed = np.random.SeedSequence([data_seed, zlib.crc32(name.encode())]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(seed))


def build_shifted_mnist(
    mnist: Mnist,
    *,
    cue_type: str,
    train_cue_agreement: float,
    test_agreements: Sequence[float],
    data_seed: int,
    train_size: int | None = None,
    val_size: int = 5000,
    test_size: int | None = None,
    show_digit: bool = True,
) -> ShiftedMNIST:
    """Build the training, validation and test splits of shiftedMNIST.

    Validation takes the first ``val_size`` digits of a permutation of the
    MNIST training set, and training takes the next ``train_size`` (None: all
    the rest). Test splits use the first ``test_size`` MNIST test digits
    (None: all 10,000) in their original order, once per agreement in
    ``test_agreements`` and once without a cue (key "clean").
    """
    _check_cue_type(cue_type)
    _check_agreement("train_cue_agreement", train_cue_agreement)
    test_keys = _check_test_agreements(test_agreements)
    _check_test_size(test_size)
    val_indices, train_indices = training_split_indices(data_seed, val_size, train_size)

    def named_split(name: str, digits: torch.Tensor, labels: torch.Tensor, agreement: float | None) -> ShiftedSplit:
        generator = split_generator(data_seed, name)
        return make_split(digits, labels, cue_type, agreement, generator, show_digit)

    train_digits, train_labels = mnist.train_images[train_indices], mnist.train_labels[train_indices]
    val_digits, val_labels = mnist.train_images[val_indices], mnist.train_labels[val_indices]
    test_digits, test_labels = mnist.test_images[:test_size], mnist.test_labels[:test_size]

    tests = {
        key: named_split(key, test_digits, test_labels, agreement)
        for key, agreement in zip(test_keys, test_agreements)
    }
    tests[test_key(None)] = named_split(test_key(None), test_digits, test_labels, None)
    return ShiftedMNIST(
        cue_type=cue_type,
        train=named_split("train", train_digits, train_labels, train_cue_agreement),
        val=named_split("val", val_digits, val_labels, train_cue_agreement),
        val_shifted=named_split("val_shifted", val_digits, val_labels, SHIFTED_AGREEMENT),
        tests=tests,
    )


def _template_index(cues: torch.Tensor) -> torch.Tensor:
    """Map each cue class to its row in a template table whose last row is blank."""
    return torch.where(cues == NO_CUE, NUM_CLASSES, cues)  # (N,)


@functools.cache
def _pixel_templates() -> torch.Tensor:
    templates = torch.zeros(NUM_CLASSES + 1, DIGIT_SIZE, DIGIT_SIZE)  # (11, 28, 28)
    for cue_class in range(NUM_CLASSES):
        left = PIXEL_FIRST_COLUMN + PIXEL_PATCH_SIZE * cue_class
        templates[cue_class, :PIXEL_PATCH_SIZE, left : left + PIXEL_PATCH_SIZE] = 1.0
    return templates


@functools.cache
def _texture_templates() -> torch.Tensor:
    """Build one grating per class: orientation 18 degrees times c, period 4 + 0.5c pixels."""
    coordinates = torch.arange(DIGIT_SIZE, dtype=torch.float64) - (DIGIT_SIZE - 1) / 2
    y, x = torch.meshgrid(coordinates, coordinates, indexing="ij")  # (28, 28) each
    templates = torch.zeros(NUM_CLASSES + 1, DIGIT_SIZE, DIGIT_SIZE, dtype=torch.float64)  # (11, 28, 28)
    for cue_class in range(NUM_CLASSES):
        angle = math.pi * cue_class / NUM_CLASSES
        period = 4.0 + 0.5 * cue_class
        phase = 2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / period
        templates[cue_class] = TEXTURE_AMPLITUDE * 0.5 * (1 + torch.cos(phase))
    return templates.to(torch.float32)


def _render_position(digits: torch.Tensor, cues: torch.Tensor, show_digit: bool) -> torch.Tensor:
    count = digits.shape[0]
    if show_digit:
        pixels = digits.to(torch.float32) / 255.0  # (N, 28, 28)
    else:
        pixels = torch.zeros(count, DIGIT_SIZE, DIGIT_SIZE)  # (N, 28, 28)
        box = slice(DIGIT_BOX_START, DIGIT_BOX_START + DIGIT_BOX_SIZE)
        pixels[:, box, box] = 1.0

    offsets = torch.tensor(POSITION_OFFSETS + (POSITION_CENTER_OFFSET,))  # (11, 2)
    image_offsets = offsets[_template_index(cues)]  # (N, 2)
    steps = torch.arange(DIGIT_SIZE)
    rows = image_offsets[:, 0, None] + steps  # (N, 28)
    columns = image_offsets[:, 1, None] + steps  # (N, 28)

    canvas = torch.zeros(count, POSITION_CANVAS_SIZE, POSITION_CANVAS_SIZE)  # (N, 40, 40)
    image_index = torch.arange(count)[:, None, None]  # (N, 1, 1)
    canvas[image_index, rows[:, :, None], columns[:, None, :]] = pixels
    return canvas


def _check_cue_type(cue_type: str) -> None:
    if cue_type not in CUE_TYPES:
        raise ValueError(f"cue_type={cue_type!r} is unknown; use one of {CUE_TYPES}")


def _check_agreement(name: str, agreement: float) -> None:
    is_number = isinstance(agreement, numbers.Real) and not isinstance(agreement, bool)
    if not is_number or not 0.0 <= agreement <= 1.0:
        raise ValueError(f"{name}={agreement!r} is not a probability; use a number in [0, 1]")


def _check_test_agreements(test_agreements: Sequence[float]) -> list[str]:
    """Check every test agreement and return their distinct test keys."""
    if isinstance(test_agreements, (str, bytes)) or not isinstance(test_agreements, Sequence):
        raise ValueError(
            f"test_agreements={test_agreements!r} is not a sequence; pass a list such as [0.1, 0.0]"
        )
    for agreement in test_agreements:
        _check_agreement("test_agreements entry", agreement)
    keys = [test_key(agreement) for agreement in test_agreements]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(
            f"test_agreements={list(test_agreements)!r} repeats {repeated}; list each agreement once"
        )
    return keys


def _check_seed(data_seed: int) -> None:
    # SeedSequence accepts only non-negative integers.
    if not isinstance(data_seed, numbers.Integral) or isinstance(data_seed, bool) or data_seed < 0:
        raise ValueError(f"data_seed={data_seed!r} is invalid; use a non-negative integer")


def _check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name}={value!r} is invalid; use a positive integer")


def _check_training_sizes(val_size: int, train_size: int | None) -> None:
    _check_positive_int("val_size", val_size)
    if val_size >= NUM_TRAINING_DIGITS:
        raise ValueError(
            f"val_size={val_size} leaves none of the {NUM_TRAINING_DIGITS} training digits "
            "for training; lower val_size"
        )
    if train_size is None:
        return
    _check_positive_int("train_size", train_size)
    available = NUM_TRAINING_DIGITS - val_size
    if train_size > available:
        raise ValueError(
            f"train_size={train_size} exceeds the {available} training digits left after "
            f"val_size={val_size}; lower train_size or val_size"
        )


def _check_test_size(test_size: int | None) -> None:
    if test_size is None:
        return
    _check_positive_int("test_size", test_size)
    if test_size > NUM_TEST_DIGITS:
        raise ValueError(
            f"test_size={test_size} exceeds the {NUM_TEST_DIGITS} MNIST test digits; "
            f"use at most {NUM_TEST_DIGITS} or None"
        )


def _check_labels(labels: torch.Tensor) -> None:
    if labels.dtype != torch.int64 or labels.dim() != 1:
        raise ValueError(
            f"labels has dtype {labels.dtype} and shape {tuple(labels.shape)}; "
            "expected a 1-D int64 tensor"
        )
    if labels.numel() and not (0 <= int(labels.min()) and int(labels.max()) < NUM_CLASSES):
        raise ValueError(
            f"labels range over [{int(labels.min())}, {int(labels.max())}]; "
            f"expected classes 0..{NUM_CLASSES - 1}"
        )


def _check_digits(digits: torch.Tensor) -> None:
    expected_tail = (DIGIT_SIZE, DIGIT_SIZE)
    if digits.dtype != torch.uint8 or digits.dim() != 3 or tuple(digits.shape[1:]) != expected_tail:
        raise ValueError(
            f"digits has dtype {digits.dtype} and shape {tuple(digits.shape)}; "
            "expected uint8 of shape (N, 28, 28)"
        )


def _check_cues(cues: torch.Tensor, count: int) -> None:
    if cues.dtype != torch.int64 or tuple(cues.shape) != (count,):
        raise ValueError(
            f"cues has dtype {cues.dtype} and shape {tuple(cues.shape)}; "
            f"expected int64 of shape ({count},), one per digit"
        )
    invalid = (cues < NO_CUE) | (cues >= NUM_CLASSES)
    if bool(invalid.any()):
        raise ValueError(
            f"cues contains {int(cues[invalid][0])}; expected classes 0..{NUM_CLASSES - 1} "
            f"or NO_CUE ({NO_CUE})"
        )
