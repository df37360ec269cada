"""Benchmark 5: the cost of analysing one trained run on 5,000 held-out images.

The script trains a short CE run (pixel cue, p = 1, 5,000 training digits,
1 epoch) so that the features have the structure of a trained network, and
then times each stage of ``ifm_core.analysis`` on the first 5,000 images of
``val_shifted``, the images that ``mechanism_summary`` analyses:

- taps: ``ifm_core.evaluation.extract_taps``, every tap of every image;
- probes: ``linear_probes``, digit and cue probes on each tap, with the
  L2 strength chosen from a grid;
- MI per layer: ``information_flow``, one critic trained per adjacent pair
  of taps (500 steps each, the default);
- t-SNE: ``tsne_embedding`` of the ``fc`` tap.

Each stage runs once on 200 images to warm up (not with --tiny), then ``--repeats`` times on
5,000 (default 1, because the stages take tens of seconds). To set the cost
against something measured in the same process, the script also times 20
training steps and estimates from them the training time of one default
run (3 epochs of 20,000 digits). There is no target.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable

from bench_training import in_memory_block
from harness import add_common_arguments, apply_common_arguments, print_header, time_interleaved
from ifm_core.analysis import information_flow, linear_probes, tsne_embedding
from ifm_core.config import RunConfig
from ifm_core.data import ShiftedMNIST, ShiftedSplit
from ifm_core.evaluation import extract_taps
from ifm_core.methods import Method
from ifm_core.training import load_data, train

WARMUP_IMAGES = 200
TSNE_TAP = "fc"
STEPS_TIMED = 20


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, default_repeats=1)
    parser.add_argument("--images", type=int, default=5000, help="held-out images analysed (default 5000)")
    parser.add_argument("--mi-steps", type=int, default=500, help="training steps of each MI critic (default 500)")
    args = parser.parse_args()
    apply_common_arguments(args)
    if args.tiny:
        args.images, args.mi_steps = 300, 20
    if not WARMUP_IMAGES <= args.images <= 5000:
        raise SystemExit(f"--images={args.images} is invalid; use {WARMUP_IMAGES} to 5000 (the validation digits)")
    return args


def short_run_config(tiny: bool) -> RunConfig:
    if tiny:
        return RunConfig(method="ce", train_size=600, val_size=1000, test_size=500, epochs=1, batch_size=32)
    # A small test set and one test q keep the run's own evaluation short.
    return RunConfig(method="ce", train_size=5000, test_size=1000, test_agreements=(0.1,), epochs=1)


def trained_method(config: RunConfig, folder: str) -> tuple[Method, ShiftedMNIST]:
    """Train the short run and return its method and its data."""
    data = load_data(config)
    result = train(config, data, results_root=folder, progress=False)
    return result.method, data


def stages(method: Method, split: ShiftedSplit, count: int, mi_steps: int) -> dict[str, Callable[[], object]]:
    """Return the analysis stages on the first ``count`` images of ``split``, keyed by name."""
    images, labels, cues = split.images[:count], split.labels[:count], split.cues[:count]
    features = extract_taps(method, images)  # tap name -> (count, D), computed once for the later stages
    return {
        "taps": lambda: extract_taps(method, images),
        "probes": lambda: linear_probes(features, labels, cues),
        "MI per layer": lambda: information_flow(features, steps=mi_steps),
        "t-SNE": lambda: tsne_embedding(features[TSNE_TAP]),
    }


def default_run_training_seconds(split: ShiftedSplit, repeats: int) -> float:
    """Estimate a default run's training time from ``STEPS_TIMED`` steps timed in this process."""
    default = RunConfig()
    block = in_memory_block(default, split, STEPS_TIMED)
    seconds_per_step = statistics.median(time_interleaved({"steps": block}, repeats)["steps"]) / STEPS_TIMED
    steps_per_run = default.epochs * (default.effective_train_size // default.batch_size)
    return seconds_per_step * steps_per_run


def main() -> None:
    args = parse_arguments()
    print_header("analysis cost: probes, MI per layer and t-SNE of one run", args)
    config = short_run_config(args.tiny)
    with tempfile.TemporaryDirectory() as folder:
        method, data = trained_method(config, folder)

    if not args.tiny:
        for stage in stages(method, data.val_shifted, WARMUP_IMAGES, min(args.mi_steps, 20)).values():
            stage()  # warm-up on a few images: imports, lazy initialization, allocator
    seconds = time_interleaved(stages(method, data.val_shifted, args.images, args.mi_steps), args.repeats, warmup=0)

    medians = {name: statistics.median(times) for name, times in seconds.items()}
    total = sum(medians.values())
    print(f"{args.images} held-out images of {config.run_name()}, {args.repeats} repetitions")
    for name, median in medians.items():
        print(f"  {name:<13} median {median:7.2f} s ({median / total:.0%})")
    training = default_run_training_seconds(data.train, args.repeats)
    print(f"RESULT (no target) analysis of {args.images} images: {total:.1f} s")
    print(
        f"RESULT (no target) analysis over the estimated training time of one default run "
        f"({training:.0f} s): {total / training:.2g}x"
    )


if __name__ == "__main__":
    main()
