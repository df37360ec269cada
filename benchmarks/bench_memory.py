"""Benchmark 4: peak resident memory of one default run.

The script starts two child processes one after the other and reads their
peak resident set size (RSS) with ``resource.getrusage(RUSAGE_CHILDREN)``:

1. a child that only imports torch and ``ifm_core``, the fixed cost of any
   run;
2. a child that builds the data and trains one run with ``RunConfig()``
   defaults through ``ifm_core.training.train``, writing its record to a
   temporary folder.

``ru_maxrss`` of RUSAGE_CHILDREN is the largest peak of any child waited
for so far, so the import-only child runs first. The training child also
prints where its time went.

Target: the default run peaks under 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import add_common_arguments, apply_common_arguments, print_header, print_result

TARGET_GIB = 2.0
CHILD_IMPORTS = "import torch, ifm_core.training"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, default_repeats=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    apply_common_arguments(args)
    return args


def run_config(tiny: bool):
    """Return the default config, or a small one for --tiny."""
    from ifm_core.config import RunConfig

    if tiny:
        return RunConfig(train_size=600, val_size=500, test_size=500, epochs=1, batch_size=32)
    return RunConfig()


def train_as_child(args: argparse.Namespace) -> None:
    """Train one run in this process and print a JSON line with its timings."""
    from ifm_core.training import load_data, train

    config = run_config(args.tiny)
    started = time.perf_counter()
    data = load_data(config)
    data_seconds = time.perf_counter() - started
    splits = [data.train, data.val, data.val_shifted, *data.tests.values()]
    with tempfile.TemporaryDirectory() as folder:
        result = train(config, data, results_root=Path(folder), progress=False)
    metrics = result.metrics
    train_seconds = config.epochs * (len(data.train) // config.batch_size) * config.batch_size
    train_seconds /= metrics["train_images_per_second"]
    summary = {
        "config": config.run_name(),
        "data_seconds": data_seconds,
        "train_seconds": train_seconds,
        "other_seconds": metrics["wall_seconds"] - train_seconds,
        "image_megabytes": sum(split.images.nbytes for split in splits) / 2**20,
        "image_count": sum(len(split) for split in splits),
    }
    print(json.dumps(summary), flush=True)


def child_command(args: argparse.Namespace, extra: list[str]) -> list[str]:
    threads = [] if args.threads is None else ["--threads", str(args.threads)]
    return [sys.executable, *extra, *threads]


def peak_child_gib() -> float:
    """Return the largest peak RSS of any finished child, in GiB (ru_maxrss is in KiB on Linux)."""
    kibibytes = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if sys.platform == "darwin":  # macOS reports bytes
        kibibytes /= 1024
    return kibibytes / 2**20


def main() -> None:
    args = parse_arguments()
    if args.child:
        train_as_child(args)
        return

    print_header("peak resident memory of one default run", args)
    subprocess.run([sys.executable, "-c", CHILD_IMPORTS], check=True)
    import_gib = peak_child_gib()

    command = child_command(args, [__file__, "--child"] + (["--tiny"] if args.tiny else []))
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    run_gib = peak_child_gib()
    summary = json.loads(completed.stdout.strip().splitlines()[-1])

    print(f"run {summary['config']} in a child process")
    print(f"  peak RSS after importing torch and ifm_core: {import_gib:.3f} GiB")
    print(f"  peak RSS of the run: {run_gib:.3f} GiB")
    print(
        f"  the run's {summary['image_count']} float32 images take {summary['image_megabytes']:.0f} MiB; "
        f"time: data {summary['data_seconds']:.1f} s, training {summary['train_seconds']:.1f} s, "
        f"validation, tests and record {summary['other_seconds']:.1f} s"
    )
    print_result("peak RSS of a default run", run_gib, TARGET_GIB, higher_is_better=False, unit=" GiB")


if __name__ == "__main__":
    main()
