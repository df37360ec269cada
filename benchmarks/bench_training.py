"""Benchmark 2: training throughput of the in-memory loop against a DataLoader loop.

Both contenders train the same ``SmallCNN`` with cross-entropy, Adam and
batch size 128 on the training split of a default run (pixel cue, p = 1,
20,000 digits). Each timed block is a fixed number of optimizer steps.

- in-memory: ``ifm_core.training._train_epoch`` itself, the inner loop of
  every run, over a slice of the prebuilt training images;
- DataLoader: the loop of the PyTorch MNIST example (``model.train()``,
  ``for data, target in loader``, ``.to(device)``, ``zero_grad``, forward,
  loss, ``backward``, ``step``, ``loss.item()`` every 10 batches) over the
  per-sample Dataset of ``baselines.py`` with ``shuffle=True``.

Two more contenders explain the ratio: the DataLoader alone (the same
batches, no training) and, when torch uses more than one thread, the
in-memory loop with one thread.

Target: the in-memory loop reaches at least 2 times the images per second
of the DataLoader loop.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from baselines import PerSampleShiftedMNIST, per_sample_splits
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
from ifm_core.config import RunConfig
from ifm_core.data import ShiftedSplit, image_size
from ifm_core.methods import Method, build_method
from ifm_core.mnist import load_mnist
from ifm_core.training import _train_epoch, load_data

SPEEDUP_TARGET = 2.0
CPU = torch.device("cpu")
LOG_INTERVAL = 10  # the PyTorch MNIST example's default --log-interval


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, default_repeats=9, profile=True)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per timed block (default 20)")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="DataLoader worker processes (default 0, as the PyTorch MNIST example on a CPU)",
    )
    args = parser.parse_args()
    apply_common_arguments(args)
    if args.tiny:
        args.steps = 2
    if args.steps < 1:
        raise SystemExit(f"--steps={args.steps} is invalid; use a positive integer")
    return args


def run_config(tiny: bool) -> RunConfig:
    """Return the config both loops train with: a default CE run, or a small one for --tiny."""
    if tiny:
        return RunConfig(
            method="ce", batch_size=32, train_size=600, val_size=500, test_size=500, test_agreements=(0.1,)
        )
    return RunConfig(method="ce")


def fresh_method(config: RunConfig, device: torch.device) -> tuple[Method, torch.optim.Optimizer]:
    """Build the method with the run's seed, so every contender starts from the same weights."""
    torch.manual_seed(config.seed)
    method = build_method(config, image_size(config.cue_type)).to(device)
    return method, torch.optim.Adam(method.parameters(), lr=config.learning_rate)


def in_memory_block(
    config: RunConfig, split: ShiftedSplit, steps: int, device: torch.device = CPU
) -> Callable[[], None]:
    """Return a block of ``steps`` steps of the run's own loop, each block on the next slice of the split.

    ``split`` must already be on ``device``, as a run moves it there once.
    The block ends by reading the loss sums, so it waits for the device.
    """
    method, optimizer = fresh_method(config, device)
    batch_order = torch.Generator().manual_seed(config.seed)
    block_images = steps * config.batch_size
    slices = max(1, len(split) // block_images)
    bar = tqdm(disable=True)
    block_numbers = itertools.count()

    def block() -> None:
        start = (next(block_numbers) % slices) * block_images
        part = ShiftedSplit(
            images=split.images[start : start + block_images],  # (steps * B, 1, S, S), a view
            labels=split.labels[start : start + block_images],
            cues=split.cues[start : start + block_images],
        )
        _train_epoch(config, method, optimizer, part, batch_order, device, bar, 0)

    return block


def endless_batches(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield batches forever, starting a new shuffled epoch whenever one ends, as a multi-epoch run does."""
    while True:
        yield from loader


def dataloader_block(
    config: RunConfig, loader: DataLoader, steps: int, device: torch.device = CPU
) -> Callable[[], None]:
    """Return a block of ``steps`` steps of the PyTorch MNIST example's training loop."""
    method, optimizer = fresh_method(config, device)
    model = method.model
    batches = endless_batches(loader)
    batch_numbers = itertools.count()

    def block() -> None:
        model.train()
        for _ in range(steps):
            data, target = next(batches)
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output, _ = model(data)
            loss = F.cross_entropy(output, target)
            loss.backward()
            optimizer.step()
            if next(batch_numbers) % LOG_INTERVAL == 0:
                loss.item()  # the example prints this value
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # so the block's time covers its GPU work

    return block


def loader_only_block(loader: DataLoader, steps: int) -> Callable[[], None]:
    """Return a block that only draws ``steps`` batches: the data share of the DataLoader loop."""
    batches = endless_batches(loader)

    def block() -> None:
        for _ in range(steps):
            next(batches)

    return block


def with_threads(threads: int, block: Callable[[], None]) -> Callable[[], None]:
    """Wrap ``block`` so it runs with ``threads`` torch threads and restores the count afterwards."""

    def wrapped() -> None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            block()
        finally:
            torch.set_num_threads(previous)

    return wrapped


def per_sample_training_set(config: RunConfig) -> PerSampleShiftedMNIST:
    """Return the per-sample Dataset of the same training digits and cues as ``load_data(config).train``."""
    datasets = per_sample_splits(
        load_mnist(),
        cue_type=config.cue_type,
        train_cue_agreement=config.train_cue_agreement,
        test_agreements=(),
        data_seed=config.data_seed,
        train_size=config.train_size,
        val_size=config.val_size,
        test_size=config.test_size,
    )
    return datasets["train"]


def print_report(config: RunConfig, seconds: dict[str, list[float]], args: argparse.Namespace) -> None:
    images = args.steps * config.batch_size
    print(
        f"batch {config.batch_size}, {args.steps} steps per block, {args.repeats} rounds, "
        f"DataLoader workers {args.workers}"
    )
    for name, times in seconds.items():
        median = statistics.median(times)
        print(f"  {name:<22} median {median * 1000 / args.steps:7.1f} ms/step  {images / median:8.0f} images/s")

    result = compare(seconds["DataLoader"], seconds["in-memory"])
    data_share = statistics.median(seconds["DataLoader alone"]) / result.slow_median
    print(f"  per-round ratios: {format_spread(result.round_ratios)}")
    print(f"  drawing batches takes {data_share:.0%} of a DataLoader loop step")
    print_result("training throughput, in-memory over DataLoader", result.ratio, SPEEDUP_TARGET, True)
    if "in-memory, 1 thread" in seconds:
        single = compare(seconds["in-memory"], seconds["in-memory, 1 thread"])
        print(
            f"RESULT (no target) in-memory loop, 1 thread over {torch.get_num_threads()} threads: "
            f"{single.ratio:.3g}x (per round {format_spread(single.round_ratios)})"
        )


def main() -> None:
    args = parse_arguments()
    print_header("training throughput: in-memory loop against a DataLoader loop", args)
    config = run_config(args.tiny)
    train_split = load_data(config).train
    loader = DataLoader(
        per_sample_training_set(config), batch_size=config.batch_size, shuffle=True, num_workers=args.workers
    )
    print(f"training split of {config.run_name()}: {len(train_split)} images")

    contenders = {
        "in-memory": in_memory_block(config, train_split, args.steps),
        "DataLoader": dataloader_block(config, loader, args.steps),
        "DataLoader alone": loader_only_block(loader, args.steps),
    }
    if torch.get_num_threads() > 1:
        # Other processes on the same cores can make every extra thread a
        # loss, so the script shows the single-threaded loop next to it.
        contenders["in-memory, 1 thread"] = with_threads(1, in_memory_block(config, train_split, args.steps))
    print_report(config, time_interleaved(contenders, args.repeats), args)
    if args.profile:
        print_profile(f"{args.steps} steps of the in-memory loop", contenders["in-memory"])
        print_profile(f"{args.steps} steps of the DataLoader loop", contenders["DataLoader"])


if __name__ == "__main__":
    main()
