"""Benchmark 3: the cost of the IFM term, step time of ``ifm`` over ``ce``.

Every contender runs ``ifm_core.training._train_epoch``, the inner loop of
a run, for the same number of steps on the same images: CE alone, and IFM
(weight 0.3, the default) with each estimator (jsd, dv, infonce) and each
critic (global, local). All start from the same network weights. The ratio
of each IFM variant's median block time to CE's is the cost of the term.

Target: at most 1.3 for the default global critic with the Jensen-Shannon
estimator. The other five ratios are reported without a target.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from collections.abc import Callable

import torch

from bench_training import CPU, in_memory_block, run_config
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
from ifm_core.critics import CRITICS
from ifm_core.data import ShiftedSplit
from ifm_core.estimators import ESTIMATORS
from ifm_core.training import load_data

DEFAULT_TARGET = 1.3
DEFAULT_VARIANT = ("global", "jsd")
VARIANTS = list(itertools.product(CRITICS, ESTIMATORS))  # (critic, estimator) pairs


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, default_repeats=9, profile=True)
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per timed block (default 5)")
    args = parser.parse_args()
    apply_common_arguments(args)
    if args.tiny:
        args.steps = 1
    if args.steps < 1:
        raise SystemExit(f"--steps={args.steps} is invalid; use a positive integer")
    return args


def ifm_cost_contenders(
    ce_config: RunConfig, split: ShiftedSplit, steps: int, device: torch.device = CPU
) -> dict[str, Callable[[], None]]:
    """Return a block of ``steps`` steps for CE and for every IFM critic and estimator, keyed by name."""
    contenders = {"ce": in_memory_block(ce_config, split, steps, device)}
    for critic, estimator in VARIANTS:
        config = dataclasses.replace(ce_config, method="ifm", critic=critic, estimator=estimator)
        contenders[variant_name(critic, estimator)] = in_memory_block(config, split, steps, device)
    return contenders


def variant_name(critic: str, estimator: str) -> str:
    return f"ifm {critic} {estimator}"


def print_ifm_costs(seconds: dict[str, list[float]], steps: int) -> None:
    """Print each IFM variant's step time and its ratio to CE, then one RESULT line per variant."""
    results = {
        (critic, estimator): compare(seconds[variant_name(critic, estimator)], seconds["ce"])
        for critic, estimator in VARIANTS
    }
    for (critic, estimator), result in results.items():
        print(
            f"  {critic:>6} {estimator:<7} ifm {result.slow_median * 1000 / steps:7.1f} ms/step, "
            f"ce {result.fast_median * 1000 / steps:6.1f} ms/step, ratio {result.ratio:5.2f} "
            f"(per round {format_spread(result.round_ratios)})"
        )
    for (critic, estimator), result in results.items():
        if (critic, estimator) == DEFAULT_VARIANT:
            print_result(f"IFM step cost, {critic} critic, {estimator}", result.ratio, DEFAULT_TARGET, False)
        else:
            print(f"RESULT (no target) IFM step cost, {critic} critic, {estimator}: {result.ratio:.3g}x")


def main() -> None:
    args = parse_arguments()
    print_header("cost of the IFM term: ifm step time over ce step time", args)
    ce_config = run_config(args.tiny)
    train_split = load_data(ce_config).train
    contenders = ifm_cost_contenders(ce_config, train_split, args.steps)
    seconds = time_interleaved(contenders, args.repeats)
    print(f"batch {ce_config.batch_size}, {args.steps} steps per block, {args.repeats} rounds")
    print_ifm_costs(seconds, args.steps)
    if args.profile:
        print_profile(f"{args.steps} CE steps", contenders["ce"])
        print_profile(f"{args.steps} IFM steps, default critic and estimator", contenders[variant_name(*DEFAULT_VARIANT)])


if __name__ == "__main__":
    main()
