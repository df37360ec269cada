"""Tests of the shiftedMNIST generator in ifm_core.data, on real MNIST digits."""

from __future__ import annotations

import math

import pytest
import torch

# Imported as a module because pytest would collect a bare `test_key` as a test.
from ifm_core import data as shifted

TEST_AGREEMENTS = (1.0, shifted.SHIFTED_AGREEMENT, shifted.ADVERSARIAL_AGREEMENT)
SMALL_SIZES = {"train_size": 2000, "val_size": 500, "test_size": 1000}


def build_small(mnist, cue_type="pixel", **overrides):
    arguments = {
        "cue_type": cue_type,
        "train_cue_agreement": 0.9,
        "test_agreements": TEST_AGREEMENTS,
        "data_seed": 0,
        **SMALL_SIZES,
    }
    arguments.update(overrides)
    return shifted.build_shifted_mnist(mnist, **arguments)


def all_splits(dataset) -> dict[str, shifted.ShiftedSplit]:
    splits = {"train": dataset.train, "val": dataset.val, "val_shifted": dataset.val_shifted}
    splits.update({f"tests[{key}]": split for key, split in dataset.tests.items()})
    return splits


@pytest.fixture(scope="module")
def full_pixel(mnist):
    """All 55,000 training, 5,000 validation and 10,000 test digits with pixel cues."""
    return shifted.build_shifted_mnist(
        mnist,
        cue_type="pixel",
        train_cue_agreement=0.9,
        test_agreements=(shifted.SHIFTED_AGREEMENT,),
        data_seed=0,
    )


@pytest.mark.parametrize(("cue_type", "size"), [("pixel", 28), ("texture", 28), ("position", 40)])
def test_image_size_per_cue(cue_type, size):
    assert shifted.image_size(cue_type) == size


def test_image_size_unknown_cue():
    with pytest.raises(ValueError, match=r"cue_type='stripes'.*'pixel', 'texture', 'position'"):
        shifted.image_size("stripes")


@pytest.mark.parametrize(
    ("agreement", "key"), [(0.1, "q=0.1"), (1.0, "q=1"), (0.0, "q=0"), (0.25, "q=0.25"), (None, "clean")]
)
def test_test_key_format(agreement, key):
    assert shifted.test_key(agreement) == key


@pytest.mark.parametrize("cue_type", shifted.CUE_TYPES)
def test_split_shapes_per_cue(mnist, cue_type):
    dataset = build_small(mnist, cue_type)
    size = shifted.image_size(cue_type)
    expected_counts = {"train": 2000, "val": 500, "val_shifted": 500}
    for name, split in all_splits(dataset).items():
        count = expected_counts.get(name, 1000)
        assert tuple(split.images.shape) == (count, 1, size, size), name
        assert split.images.dtype == torch.float32, name
        assert tuple(split.labels.shape) == (count,), name
        assert split.labels.dtype == torch.int64, name
        assert tuple(split.cues.shape) == (count,), name
        assert split.cues.dtype == torch.int64, name
        assert len(split) == count, name
        assert float(split.images.min()) >= 0.0, name
        assert float(split.images.max()) <= 1.0, name


def test_test_split_keys(mnist):
    dataset = build_small(mnist)
    assert list(dataset.tests) == ["q=1", "q=0.1", "q=0", "clean"]


def test_full_split_sizes(full_pixel):
    assert len(full_pixel.train) == 55000
    assert len(full_pixel.val) == 5000
    assert len(full_pixel.tests["clean"]) == 10000


def test_full_label_counts(mnist, full_pixel):
    training_counts = torch.bincount(full_pixel.train.labels, minlength=10)
    training_counts += torch.bincount(full_pixel.val.labels, minlength=10)
    assert torch.equal(training_counts, torch.bincount(mnist.train_labels))
    assert int(training_counts[0]) == 5923
    assert torch.equal(full_pixel.tests["clean"].labels, mnist.test_labels)


def test_test_digits_original_order(mnist):
    dataset = build_small(mnist)
    assert torch.equal(dataset.tests["q=0.1"].labels, mnist.test_labels[:1000])


@pytest.mark.parametrize("cue_type", shifted.CUE_TYPES)
def test_same_seed_identical(mnist, cue_type):
    first = all_splits(build_small(mnist, cue_type, data_seed=3))
    second = all_splits(build_small(mnist, cue_type, data_seed=3))
    for name in first:
        assert torch.equal(first[name].images, second[name].images), name
        assert torch.equal(first[name].labels, second[name].labels), name
        assert torch.equal(first[name].cues, second[name].cues), name


def test_other_seed_differs(mnist):
    first = build_small(mnist, data_seed=3)
    second = build_small(mnist, data_seed=4)
    assert not torch.equal(first.train.labels, second.train.labels)
    assert not torch.equal(first.val.labels, second.val.labels)
    assert not torch.equal(first.tests["q=0.1"].cues, second.tests["q=0.1"].cues)


def test_global_rng_untouched(mnist):
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    build_small(mnist)
    assert torch.equal(torch.rand(5), expected)


def test_extra_agreement_keeps_splits(mnist):
    fewer = all_splits(build_small(mnist, "texture", test_agreements=(0.1,)))
    more = all_splits(build_small(mnist, "texture", test_agreements=(1.0, 0.1, 0.0, 0.5)))
    for name in fewer:
        assert torch.equal(fewer[name].images, more[name].images), name
        assert torch.equal(fewer[name].cues, more[name].cues), name


def test_train_agreement_one_exact(mnist):
    dataset = build_small(mnist, train_cue_agreement=1.0)
    assert dataset.train.cue_agreement() == 1.0
    assert dataset.val.cue_agreement() == 1.0


def test_train_agreement_measured(mnist):
    dataset = build_small(mnist, train_cue_agreement=0.7, train_size=20000)
    assert abs(dataset.train.cue_agreement() - 0.7) < 0.02


def test_shifted_agreement_measured(full_pixel):
    assert abs(full_pixel.tests["q=0.1"].cue_agreement() - 0.1) < 0.02
    assert abs(full_pixel.val_shifted.cue_agreement() - 0.1) < 0.03


def test_adversarial_agreement_zero(mnist):
    dataset = build_small(mnist)
    assert dataset.tests["q=0"].cue_agreement() == 0.0


def test_full_agreement_test_exact(mnist):
    dataset = build_small(mnist)
    assert dataset.tests["q=1"].cue_agreement() == 1.0


def test_clean_agreement_nan(mnist):
    dataset = build_small(mnist)
    assert math.isnan(dataset.tests["clean"].cue_agreement())


@pytest.mark.parametrize("cue_type", shifted.CUE_TYPES)
def test_clean_split_no_cue(mnist, cue_type):
    clean = build_small(mnist, cue_type).tests["clean"]
    assert bool((clean.cues == shifted.NO_CUE).all())


@pytest.mark.parametrize("cue_type", ["pixel", "texture"])
def test_clean_image_equals_digit(mnist, cue_type):
    clean = build_small(mnist, cue_type).tests["clean"]
    expected = mnist.test_images[:1000].to(torch.float32) / 255.0
    assert torch.equal(clean.images[:, 0], expected)


def test_clean_position_centred(mnist):
    clean = build_small(mnist, "position").tests["clean"].images[:, 0]  # (1000, 40, 40)
    expected = mnist.test_images[:1000].to(torch.float32) / 255.0
    assert torch.equal(clean[:, 6:34, 6:34], expected)
    outside = clean.clone()
    outside[:, 6:34, 6:34] = 0.0
    assert float(outside.abs().max()) == 0.0


def test_disagreeing_cues_uniform(mnist):
    train = build_small(mnist, train_cue_agreement=0.7, train_size=20000).train
    disagree = train.cues != train.labels
    offsets = (train.cues[disagree] - train.labels[disagree]) % 10  # (M,)
    counts = torch.bincount(offsets, minlength=10)
    mean_count = float(counts[1:].double().mean())
    assert int(counts[0]) == 0
    # About 667 per class with a binomial standard deviation of about 24, so 15 % is about 4 deviations.
    assert float(counts[1:].min()) > 0.85 * mean_count
    assert float(counts[1:].max()) < 1.15 * mean_count


def test_draw_disagreeing_never_label(mnist):
    labels = mnist.train_labels
    cues = shifted.draw_cue_classes(labels, 0.0, torch.Generator().manual_seed(0))
    assert not bool((cues == labels).any())


@pytest.mark.parametrize("cue_type", shifted.CUE_TYPES)
def test_cue_only_depends_on_cue(mnist, cue_type):
    train = build_small(mnist, cue_type, show_digit=False).train
    for cue_class in range(10):
        images = train.images[train.cues == cue_class]  # (M, 1, S, S)
        assert len(images) > 1, cue_class
        assert bool((images == images[0]).all()), cue_class


def test_cue_only_pixel_patch(mnist):
    train = build_small(mnist, "pixel", show_digit=False).train
    image = train.images[0, 0]  # (28, 28)
    cue_class = int(train.cues[0])
    left = 4 + 2 * cue_class
    assert int((image == 1.0).sum()) == 4
    assert int((image != 0.0).sum()) == 4
    assert float(image[0:2, left : left + 2].min()) == 1.0


def test_cue_only_texture_faint(mnist):
    train = build_small(mnist, "texture", show_digit=False).train
    amplitude = float(torch.tensor(shifted.TEXTURE_AMPLITUDE))  # rounded to float32 as the images are
    assert float(train.images.min()) >= 0.0
    assert float(train.images.max()) <= amplitude
    assert float(train.images.max()) > 0.9 * amplitude


def test_cue_only_position_box(mnist):
    train = build_small(mnist, "position", show_digit=False).train
    image = train.images[0, 0]  # (40, 40)
    dy, dx = shifted.POSITION_OFFSETS[int(train.cues[0])]
    assert int((image == 1.0).sum()) == 400
    assert float(image[dy + 4 : dy + 24, dx + 4 : dx + 24].min()) == 1.0


def test_cue_templates_distinct():
    digits = torch.zeros(10, 28, 28, dtype=torch.uint8)
    cues = torch.arange(10)
    for cue_type in shifted.CUE_TYPES:
        images = shifted.render(digits, cues, cue_type, show_digit=False).flatten(1)  # (10, S*S)
        assert len(torch.unique(images, dim=0)) == 10, cue_type


def test_pixel_patches_outside_digit(mnist, full_pixel):
    train = full_pixel.train
    digits = mnist.train_images[shifted.training_split_indices(0, 5000, None)[1]]
    assert torch.equal(train.images[:, 0, 2:], digits[:, 2:].to(torch.float32) / 255.0)


def test_train_val_disjoint():
    val_indices, train_indices = shifted.training_split_indices(0, 5000, None)
    assert len(set(val_indices.tolist()) & set(train_indices.tolist())) == 0
    assert len(set(val_indices.tolist()) | set(train_indices.tolist())) == 60000


def test_val_digits_from_indices(mnist, full_pixel):
    val_indices, _ = shifted.training_split_indices(0, 5000, None)
    digits = mnist.train_images[val_indices].to(torch.float32) / 255.0  # (5000, 28, 28)
    assert torch.equal(full_pixel.val.labels, mnist.train_labels[val_indices])
    # Rows 2 and below carry no pixel cue, so they show the digit unchanged.
    assert torch.equal(full_pixel.val.images[:, 0, 2:], digits[:, 2:])
    assert torch.equal(full_pixel.val_shifted.images[:, 0, 2:], digits[:, 2:])


def test_val_shifted_same_labels(full_pixel):
    assert torch.equal(full_pixel.val_shifted.labels, full_pixel.val.labels)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cue_type": "stripes"}, r"cue_type='stripes' is unknown"),
        ({"train_cue_agreement": 1.5}, r"train_cue_agreement=1\.5 is not a probability"),
        ({"train_cue_agreement": -0.1}, r"train_cue_agreement=-0\.1 is not a probability"),
        ({"train_cue_agreement": float("nan")}, r"train_cue_agreement=nan is not a probability"),
        ({"test_agreements": (0.1, 2.0)}, r"test_agreements entry=2\.0 is not a probability"),
        ({"test_agreements": 0.1}, r"test_agreements=0\.1 is not a sequence"),
        ({"test_agreements": (0.1, 0.1)}, r"repeats \['q=0\.1'\]"),
        ({"train_size": 70000, "val_size": 5000}, r"train_size=70000 exceeds the 55000 training digits left after val_size=5000"),
        ({"train_size": 0}, r"train_size=0 is invalid"),
        ({"val_size": 0}, r"val_size=0 is invalid"),
        ({"val_size": 60000}, r"val_size=60000 leaves none"),
        ({"test_size": 20000}, r"test_size=20000 exceeds the 10000 MNIST test digits"),
        ({"test_size": -1}, r"test_size=-1 is invalid"),
        ({"data_seed": -1}, r"data_seed=-1 is invalid"),
        ({"data_seed": 1.5}, r"data_seed=1\.5 is invalid"),
    ],
)
def test_build_bad_argument(mnist, overrides, message):
    with pytest.raises(ValueError, match=message):
        build_small(mnist, **overrides)


@pytest.mark.parametrize(
    ("digits", "cues", "message"),
    [
        (torch.zeros(2, 28, 28), torch.zeros(2, dtype=torch.int64), r"digits has dtype torch\.float32"),
        (torch.zeros(2, 28, 28, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64), r"cues has dtype torch\.int64 and shape \(3,\)"),
        (torch.zeros(2, 28, 28, dtype=torch.uint8), torch.tensor([0, 10]), r"cues contains 10"),
        (torch.zeros(2, 28, 28, dtype=torch.uint8), torch.tensor([0, -2]), r"cues contains -2"),
    ],
    ids=["float-digits", "cue-count", "cue-too-large", "cue-below-no-cue"],
)
def test_render_bad_argument(digits, cues, message):
    with pytest.raises(ValueError, match=message):
        shifted.render(digits, cues, "pixel")


@pytest.mark.parametrize(
    ("labels", "agreement", "message"),
    [
        (torch.tensor([1, 2]), 1.2, r"agreement=1\.2 is not a probability"),
        (torch.tensor([1, 12]), 0.5, r"labels range over \[1, 12\]"),
        (torch.tensor([1.0, 2.0]), 0.5, r"labels has dtype torch\.float32"),
    ],
    ids=["agreement", "label-range", "label-dtype"],
)
def test_draw_bad_argument(labels, agreement, message):
    with pytest.raises(ValueError, match=message):
        shifted.draw_cue_classes(labels, agreement, torch.Generator().manual_seed(0))
