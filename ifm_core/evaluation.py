"""Accuracy and feature extraction in large batches under inference mode."""

from __future__ import annotations

import torch

from .data import ShiftedSplit
from .methods import Method

# Larger batches were slower on a 2-core CPU (cache pressure); see BENCHMARKS.md.
EVAL_BATCH_SIZE = 256


def predict_labels(method: Method, images: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    """Return the predicted class of every image, (N,) int64 on the images' device."""
    was_training = method.training
    method.eval()
    with torch.inference_mode():
        predictions = [method.predict(chunk).argmax(dim=1) for chunk in images.split(batch_size)]
    method.train(was_training)
    return torch.cat(predictions)


def accuracy(method: Method, split: ShiftedSplit, batch_size: int = EVAL_BATCH_SIZE) -> float:
    """Return the fraction of ``split`` that ``method`` classifies correctly."""
    predictions = predict_labels(method, split.images, batch_size)
    return (predictions == split.labels).float().mean().item()


def extract_taps(
    method: Method, images: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE
) -> dict[str, torch.Tensor]:
    """Return every tap of the network for ``images``, flattened to (N, features) on the CPU."""
    was_training = method.training
    method.eval()
    chunks: dict[str, list[torch.Tensor]] = {}
    with torch.inference_mode():
        for chunk in images.split(batch_size):
            _, taps = method.model(chunk)
            for name, tap in taps.items():
                chunks.setdefault(name, []).append(tap.flatten(1).float().cpu())
    method.train(was_training)
    return {name: torch.cat(parts) for name, parts in chunks.items()}
