"""Time one default run and the quick study on a GPU.

Meant for a machine with a CUDA (or Apple MPS) GPU; it takes a few minutes
there. It measures, in this order:

1. one default run (``RunConfig()`` defaults) per precision in
   ``--precisions``: data build, training throughput and wall time, after
   an untimed small run that initializes the device (skipped by --tiny);
2. the ``quick`` study profile of ``ifm_core.sweep``, run one after another
   through ``run_sweep``;
3. training throughput of the in-memory loop against the DataLoader loop
   of ``bench_training.py``, on the device;
4. the IFM step cost of ``bench_ifm_cost.py``, on the device.

Without a GPU the script exits with status 1 and a message. ``--device
cpu`` runs it on the CPU instead, as a smoke test of the script itself.
Run records go to a temporary folder that is deleted at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from bench_ifm_cost import ifm_cost_contenders, print_ifm_costs
from bench_training import (
    SPEEDUP_TARGET,
    dataloader_block,
    in_memory_block,
    per_sample_training_set,
)
from harness import (
    add_common_arguments,
    apply_common_arguments,
    compare,
    format_spread,
    print_header,
    print_result,
    time_interleaved,
)
from ifm_core.config import PRECISIONS, ConfigError, RunConfig
from ifm_core.sweep import get_profile, run_sweep
from ifm_core.training import _to_device, load_data, resolve_device, train

NO_GPU_MESSAGE = (
    "no GPU found: torch.cuda.is_available() and torch.backends.mps.is_available() are both False. "
    "Run this script on a machine with a GPU, or pass --device cpu for a smoke run on the CPU."
)
TINY_SIZES = dict(train_size=600, val_size=500, test_size=500, epochs=1, batch_size=32)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, default_repeats=5)
    parser.add_argument(
        "--device",
        default="auto",
        help="device to time on: auto (default; a GPU or exit), cuda, cuda:N, mps, or cpu for a smoke run",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=PRECISIONS,
        default=list(PRECISIONS),
        help="precisions of the default run (default: fp32 and bf16); the study and comparisons use the first",
    )
    args = parser.parse_args()
    apply_common_arguments(args)
    return args


def select_device(name: str) -> torch.device:
    """Resolve ``name`` to a device; exit with a message when no GPU is there and cpu was not asked for."""
    try:
        device = resolve_device(name)
    except ConfigError as error:
        raise SystemExit(f"{error}. {NO_GPU_MESSAGE}") from None
    if device.type == "cpu" and name != "cpu":
        raise SystemExit(NO_GPU_MESSAGE)
    return device


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        return (
            f"GPU: {properties.name}, {properties.total_memory / 2**30:.0f} GiB, "
            f"CUDA {torch.version.cuda}, bf16 supported: {torch.cuda.is_bf16_supported()}"
        )
    return f"device: {device}"


def bf16_unsupported(device: torch.device) -> bool:
    return device.type == "cuda" and not torch.cuda.is_bf16_supported()


def default_config(args: argparse.Namespace, precision: str) -> RunConfig:
    sizes = TINY_SIZES if args.tiny else {}
    return RunConfig(device=args.device, precision=precision, **sizes)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_default_runs(args: argparse.Namespace, device: torch.device, folder: Path) -> None:
    """Time one default run per precision after an untimed warm-up run.

    The warm-up creates the CUDA context and loads the kernels, which would
    otherwise count against the first precision. --tiny skips it.
    """
    if not args.tiny:
        warmup = RunConfig(device=args.device, method="ifm", **TINY_SIZES)
        train(warmup, results_root=folder / "warmup", progress=False)

    for precision in args.precisions:
        if precision == "bf16" and bf16_unsupported(device):
            print(f"default run, bf16: skipped, {torch.cuda.get_device_name(device)} does not support bf16")
            continue
        config = default_config(args, precision)
        started = time.perf_counter()
        data = load_data(config)
        data_seconds = time.perf_counter() - started
        result = train(config, data, results_root=folder / precision, progress=False)
        synchronize(device)
        total_seconds = time.perf_counter() - started
        metrics = result.metrics
        print(
            f"default run, {precision}: {total_seconds:.1f} s in all (data {data_seconds:.1f} s, "
            f"run {metrics['wall_seconds']:.1f} s), training {metrics['train_images_per_second']:.0f} images/s, "
            f"in-distribution accuracy {metrics['in_distribution_accuracy']:.4f}, "
            f"shifted accuracy {metrics['shifted_accuracy']:.4f}",
            flush=True,
        )


def time_quick_study(args: argparse.Namespace, folder: Path) -> None:
    """Run the quick profile's configs on the device, one after another, and print the time."""
    configs = [
        dataclasses.replace(config, device=args.device, precision=args.precisions[0])
        for config in get_profile("quick").configs()
    ]
    if args.tiny:
        configs = [dataclasses.replace(configs[0], **TINY_SIZES)]
    started = time.perf_counter()
    outcome = run_sweep(configs, folder / "quick", workers=1, progress=False)
    seconds = time.perf_counter() - started
    print(
        f"quick study ({len(configs)} runs, {args.precisions[0]}): {seconds:.1f} s, "
        f"{seconds / len(configs):.1f} s per run, {len(outcome.failed)} failed",
        flush=True,
    )
    for name, error in outcome.failed.items():
        print(f"  failed run {name}: {error}")


def compare_throughput(args: argparse.Namespace, device: torch.device) -> None:
    """Time the in-memory loop against the DataLoader loop on the device."""
    config = default_config(args, args.precisions[0])
    config = dataclasses.replace(config, method="ce", epochs=1)
    steps = 2 if args.tiny else 20
    split = _to_device(load_data(config).train, device)
    # The PyTorch MNIST example reads with one worker into pinned memory on CUDA.
    on_cuda = device.type == "cuda"
    loader = DataLoader(
        per_sample_training_set(config),
        batch_size=config.batch_size,
        shuffle=True,
        num_workers=1 if on_cuda else 0,
        pin_memory=on_cuda,
    )
    seconds = time_interleaved(
        {
            "in-memory": in_memory_block(config, split, steps, device),
            "DataLoader": dataloader_block(config, loader, steps, device),
        },
        args.repeats,
    )
    result = compare(seconds["DataLoader"], seconds["in-memory"])
    images = steps * config.batch_size
    for name, times in seconds.items():
        print(f"  {name:<11} {images / statistics.median(times):8.0f} images/s")
    print(f"  per-round ratios: {format_spread(result.round_ratios)}")
    print_result(f"training throughput on {device.type}, in-memory over DataLoader", result.ratio, SPEEDUP_TARGET, True)


def compare_ifm_cost(args: argparse.Namespace, device: torch.device) -> None:
    config = dataclasses.replace(default_config(args, args.precisions[0]), method="ce", epochs=1)
    steps = 1 if args.tiny else 10
    split = _to_device(load_data(config).train, device)
    seconds = time_interleaved(ifm_cost_contenders(config, split, steps, device), args.repeats)
    print_ifm_costs(seconds, steps)


def main() -> None:
    args = parse_arguments()
    device = select_device(args.device)
    print_header("one default run and the quick study on a GPU", args)
    print(describe_device(device), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        time_default_runs(args, device, Path(folder))
        time_quick_study(args, Path(folder))
    print("training throughput on the device:")
    compare_throughput(args, device)
    print(f"IFM step cost on the device ({args.precisions[0]}):")
    compare_ifm_cost(args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
