"""Evaluation speed by chunk size and memory format, with a check that the logits agree.

Contenders, each classifying the 10,000 test images of a default run at
q = 0.1 with ``ifm_core.evaluation.predict_labels`` (inference mode):

- chunks of ``EVAL_BATCH_SIZE`` images, the package default;
- chunks of 2048 images;
- chunks of ``EVAL_BATCH_SIZE`` with a channels-last copy of the network,
  which lets the CPU max-pooling kernel read contiguous channels.

The script prints whether each contender's logits equal the default's bit
for bit, or else the largest difference. There is no target; the figures
back the choice of ``EVAL_BATCH_SIZE`` and show what channels-last would
gain.
"""

from __future__ import annotations

import argparse
import copy

import torch

from harness import (
    add_common_arguments,
    apply_common_arguments,
    compare,
    format_spread,
    print_header,
    time_interleaved,
)
from ifm_core.config import RunConfig
from ifm_core.data import SHIFTED_AGREEMENT, image_size, test_key
from ifm_core.evaluation import EVAL_BATCH_SIZE, predict_labels
from ifm_core.methods import Method, build_method
from ifm_core.training import load_data

LARGE_CHUNK = 2048


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, default_repeats=5)
    args = parser.parse_args()
    apply_common_arguments(args)
    return args


def logits(method: Method, images: torch.Tensor, chunk_size: int) -> torch.Tensor:
    method.eval()
    with torch.inference_mode():
        return torch.cat([method.predict(chunk) for chunk in images.split(chunk_size)])  # (N, 10)


def describe_agreement(reference: torch.Tensor, other: torch.Tensor) -> str:
    if torch.equal(reference, other):
        return "logits identical to the default"
    difference = (reference - other).abs().max().item()
    same_labels = torch.equal(reference.argmax(dim=1), other.argmax(dim=1))
    return f"logits differ by up to {difference:.3g}; predicted labels {'identical' if same_labels else 'differ'}"


def main() -> None:
    args = parse_arguments()
    print_header("evaluation: chunk size and memory format", args)
    sizes = dict(train_size=600, val_size=500, test_size=1000) if args.tiny else {}
    config = RunConfig(method="ce", test_agreements=(SHIFTED_AGREEMENT,), **sizes)
    images = load_data(config).tests[test_key(SHIFTED_AGREEMENT)].images  # (N, 1, 28, 28)

    torch.manual_seed(config.seed)
    method = build_method(config, image_size(config.cue_type))
    channels_last = copy.deepcopy(method).to(memory_format=torch.channels_last)
    reference = logits(method, images, EVAL_BATCH_SIZE)
    print(f"{len(images)} images, {args.repeats} rounds")
    print(f"  chunks of {LARGE_CHUNK}: {describe_agreement(reference, logits(method, images, LARGE_CHUNK))}")
    print(f"  channels-last: {describe_agreement(reference, logits(channels_last, images, EVAL_BATCH_SIZE))}")

    default_name = f"chunks of {EVAL_BATCH_SIZE}"
    seconds = time_interleaved(
        {
            default_name: lambda: predict_labels(method, images, EVAL_BATCH_SIZE),
            f"chunks of {LARGE_CHUNK}": lambda: predict_labels(method, images, LARGE_CHUNK),
            "channels-last": lambda: predict_labels(channels_last, images, EVAL_BATCH_SIZE),
        },
        args.repeats,
    )
    for name, times in seconds.items():
        result = compare(times, seconds[default_name])
        print(
            f"  {name:<16} median {result.slow_median:6.2f} s, time over the default {result.ratio:.3g} "
            f"(per round {format_spread(result.round_ratios)})"
        )
    large = compare(seconds[f"chunks of {LARGE_CHUNK}"], seconds[default_name])
    fast = compare(seconds[default_name], seconds["channels-last"])
    print(f"RESULT (no target) evaluation, chunks of {EVAL_BATCH_SIZE} over {LARGE_CHUNK}: {large.ratio:.3g}x faster")
    print(f"RESULT (no target) evaluation, channels-last over the default: {fast.ratio:.3g}x faster")


if __name__ == "__main__":
    main()
