"""Benchmark 1: building every shiftedMNIST split, vectorized against per-sample.

Contenders, timed in alternating rounds in one process:

- ``ifm_core.data.build_shifted_mnist``, which draws all cues of a split
  with a few tensor operations;
- ``baselines.PerSampleShiftedMNIST`` for each split, read through a
  DataLoader, which draws the cue of one image per ``__getitem__`` call.

Both build the splits of a run that uses all 60,000 MNIST training digits
and tests at q = 0.1: training (55,000), validation (5,000, drawn twice: at
q = p and shifted) and test (10,000, drawn twice: q = 0.1 and clean). That
is 85,000 images, and every one of the 70,000 digits carries a cue in at
least one split. The script checks that both contenders yield the same
images before it reports a ratio. A third contender only converts as many
uint8 digits to float32, which bounds what any float32 generator can reach.

Targets: the vectorized build takes under 1 s and is at least 50 times
faster than the per-sample pipeline.
"""

from __future__ import annotations

import argparse

import torch

from baselines import per_sample_splits, read_all
from harness import (
    add_common_arguments,
    apply_common_arguments,
    compare,
    format_spread,
    print_header,
    print_profile,
    print_result,
    time_interleaved,
)
from ifm_core.data import CUE_TYPES, ShiftedMNIST, build_shifted_mnist
from ifm_core.mnist import load_mnist

SPEEDUP_TARGET = 50.0
SECONDS_TARGET = 1.0
TEST_AGREEMENTS = (0.1,)
LOADER_BATCH_SIZE = 1000  # the test batch size of the PyTorch MNIST example


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, default_repeats=5, profile=True)
    parser.add_argument(
        "--cue-types",
        nargs="+",
        choices=CUE_TYPES,
        default=list(CUE_TYPES),
        help="cue types to benchmark (default: all three; the targets apply to each)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="DataLoader worker processes of the per-sample pipeline (default 0, the DataLoader default)",
    )
    args = parser.parse_args()
    apply_common_arguments(args)
    if args.tiny:
        args.cue_types = args.cue_types[:1]
    return args


def split_sizes(tiny: bool) -> dict[str, int | None]:
    """Return the build sizes: every MNIST digit, or a few thousand for --tiny."""
    if tiny:
        return {"train_size": 2000, "val_size": 500, "test_size": 1000}
    return {"train_size": None, "val_size": 5000, "test_size": None}


def check_same_images(ours: ShiftedMNIST, theirs: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Exit with a message unless both pipelines produced the same images and labels."""
    our_splits = {"train": ours.train, "val": ours.val, "val_shifted": ours.val_shifted, **ours.tests}
    if set(our_splits) != set(theirs):
        raise SystemExit(f"the pipelines built different splits: {sorted(our_splits)} and {sorted(theirs)}")
    for name, split in our_splits.items():
        images, labels = theirs[name]
        if not torch.equal(split.labels, labels):
            raise SystemExit(f"split {name}: the pipelines disagree on the labels, so the timing is not comparable")
        if not torch.equal(split.images, images):
            difference = (split.images - images).abs().max().item()
            raise SystemExit(f"split {name}: the images differ by up to {difference:g}, so the timing is not comparable")


def benchmark_cue_type(mnist, cue_type: str, args: argparse.Namespace) -> None:
    settings = dict(
        cue_type=cue_type,
        train_cue_agreement=1.0,
        test_agreements=TEST_AGREEMENTS,
        data_seed=0,
        **split_sizes(args.tiny),
    )

    def vectorized() -> ShiftedMNIST:
        return build_shifted_mnist(mnist, **settings)

    def per_sample() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        # Building the Dataset objects is part of the pipeline, so it is timed too.
        datasets = per_sample_splits(mnist, **settings)
        return {name: read_all(dataset, LOADER_BATCH_SIZE, args.workers) for name, dataset in datasets.items()}

    ours = vectorized()
    check_same_images(ours, per_sample())
    image_count = len(ours.train) + len(ours.val) + len(ours.val_shifted) + sum(map(len, ours.tests.values()))
    all_digits = torch.cat([mnist.train_images, mnist.test_images])  # (70000, 28, 28) uint8
    digits = all_digits[torch.arange(image_count) % len(all_digits)]  # (image_count, 28, 28), some twice

    def conversion_only() -> torch.Tensor:
        # The minimum work of any float32 generator: write every digit once as float32.
        return digits.to(torch.float32)

    seconds = time_interleaved(
        {"per-sample": per_sample, "vectorized": vectorized, "conversion only": conversion_only}, args.repeats
    )
    result = compare(seconds["per-sample"], seconds["vectorized"])
    floor = compare(seconds["per-sample"], seconds["conversion only"])
    print(f"cue {cue_type}: {image_count} images, identical in both pipelines")
    print(f"  vectorized build_shifted_mnist: median {result.fast_median:.3f} s over {args.repeats} rounds")
    print(
        f"  per-sample Dataset + DataLoader (batch {LOADER_BATCH_SIZE}, {args.workers} workers): "
        f"median {result.slow_median:.3f} s"
    )
    print(
        f"  uint8 to float32 conversion of {len(digits)} digits: median {floor.fast_median:.3f} s, "
        f"{floor.ratio:.3g}x faster than per-sample, a bound for any generator of float32 images"
    )
    print(f"  per-round ratios: {format_spread(result.round_ratios)}")
    print_result(f"generation speedup, {cue_type} cue", result.ratio, SPEEDUP_TARGET, higher_is_better=True)
    print_result(f"generation time, {cue_type} cue", result.fast_median, SECONDS_TARGET, False, unit=" s")
    if args.profile:
        print_profile(f"build_shifted_mnist, {cue_type} cue", vectorized)
    print(flush=True)


def main() -> None:
    args = parse_arguments()
    print_header("shiftedMNIST generation: vectorized against a per-sample Dataset", args)
    mnist = load_mnist()
    for cue_type in args.cue_types:
        benchmark_cue_type(mnist, cue_type, args)


if __name__ == "__main__":
    main()
