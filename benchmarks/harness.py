"""Timing and reporting helpers shared by the benchmark scripts.

Every benchmark compares contenders inside one process: each round times
every contender once, in an order rotated from round to round, and the
figures are medians over rounds. Load from other processes then slows all
contenders alike, so the ratio of medians stays meaningful even when the
absolute times do not.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import torch
from threadpoolctl import threadpool_info, threadpool_limits


def add_common_arguments(parser: argparse.ArgumentParser, default_repeats: int, profile: bool = False) -> None:
    """Add --tiny, --repeats and --threads to a benchmark's argument parser, and --profile if ``profile``."""
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="run a smoke test on small sizes with 2 repetitions; its figures mean nothing",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=default_repeats,
        help=f"timed repetitions of each contender after warm-up (default {default_repeats})",
    )
    if profile:
        parser.add_argument(
            "--profile",
            action="store_true",
            help="after timing, run the fast contender once under torch.profiler and print its costliest operators",
        )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help=(
            "threads for torch and for the BLAS and OpenMP pools of NumPy and scikit-learn "
            "(default: each library's own choice, one per core)"
        ),
    )


def apply_common_arguments(args: argparse.Namespace) -> None:
    """Set the thread counts and shrink the repetitions for --tiny."""
    if args.repeats < 1:
        raise SystemExit(f"--repeats={args.repeats} is invalid; use a positive integer")
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads={args.threads} is invalid; use a positive integer")
        torch.set_num_threads(args.threads)
        # NumPy's OpenBLAS and scikit-learn's OpenMP code keep their own pools.
        threadpool_limits(args.threads)
    if args.tiny:
        args.repeats = min(args.repeats, 2)


def machine_description() -> str:
    """Describe the machine and software that a figure was measured on."""
    try:
        usable_cores = len(os.sched_getaffinity(0))
    except AttributeError:  # sched_getaffinity exists only on Linux
        usable_cores = os.cpu_count()
    lines = [
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"numpy {_version('numpy')}, scikit-learn {_version('scikit-learn')}",
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} logical cores "
        f"({usable_cores} usable by this process), processor {_processor_name()}",
        f"torch threads: {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op; "
        f"other thread pools: {_thread_pools()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        f"CUDA available: {torch.cuda.is_available()}",
    ]
    if hasattr(os, "getloadavg"):
        # A load average well above the core count means other processes
        # share the cores, so absolute times are inflated.
        one_minute, five_minutes, fifteen_minutes = os.getloadavg()
        lines.append(f"load average at start: {one_minute:.2f} {five_minutes:.2f} {fifteen_minutes:.2f}")
    return "\n".join(lines)


def print_header(title: str, args: argparse.Namespace) -> None:
    """Print the benchmark's title, its command line and the machine."""
    print(f"== {title}")
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    print(machine_description())
    if args.tiny:
        print("--tiny: smoke run on small sizes; the figures below are not measurements")
    print(flush=True)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _thread_pools() -> str:
    """List the BLAS and OpenMP pools that threadpoolctl finds, with their thread counts."""
    pools = [f"{pool['internal_api']} {pool['num_threads']}" for pool in threadpool_info()]
    return ", ".join(pools) or "none found"


def _processor_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def time_interleaved(
    contenders: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Time each contender ``repeats`` times in rotated order; return seconds per call.

    Each contender first runs ``warmup`` untimed calls, which fill caches,
    load lazily initialized kernels and let the allocator reach its steady
    state.
    """
    names = list(contenders)
    for name in names:
        for _ in range(warmup):
            contenders[name]()

    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            contenders[name]()
            seconds[name].append(time.perf_counter() - started)
    return seconds


@dataclass(frozen=True)
class Comparison:
    """The medians of a slow and a fast contender and the spread of their per-round ratios."""

    slow_median: float
    fast_median: float
    round_ratios: list[float]  # slow / fast, one per round

    @property
    def ratio(self) -> float:
        """Return the median slow time over the median fast time."""
        return self.slow_median / self.fast_median


def compare(slow: list[float], fast: list[float]) -> Comparison:
    """Summarize two lists of times taken in the same rounds."""
    return Comparison(
        slow_median=statistics.median(slow),
        fast_median=statistics.median(fast),
        round_ratios=[s / f for s, f in zip(slow, fast)],
    )


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    """Return "met" or "missed" for ``value`` against ``target``."""
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "missed"


def print_result(label: str, value: float, target: float, higher_is_better: bool, unit: str = "x") -> None:
    """Print one figure against its target on a line starting with RESULT, for easy grepping."""
    relation = ">=" if higher_is_better else "<="
    print(
        f"RESULT {label}: {value:.3g}{unit} (target {relation} {target:g}{unit}, "
        f"{verdict(value, target, higher_is_better)})",
        flush=True,
    )


def format_spread(values: list[float]) -> str:
    """Format the range of per-round ratios, which shows how noisy the rounds were."""
    return f"{min(values):.3g} to {max(values):.3g}"


def print_profile(title: str, function: Callable[[], object], rows: int = 12) -> None:
    """Run ``function`` once under torch.profiler and print the operators with the most self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        function()
    print(f"profile of {title}, top {rows} operators by self CPU time:")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows), flush=True)
