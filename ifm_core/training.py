"""The training loop: one run from a configuration to a complete record."""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .config import ConfigError, RunConfig
from .data import (
    ADVERSARIAL_AGREEMENT,
    SHIFTED_AGREEMENT,
    ShiftedMNIST,
    ShiftedSplit,
    build_shifted_mnist,
    image_size,
    test_key,
)
from .evaluation import accuracy
from .methods import Method, build_method, training_data
from .mnist import load_mnist
from .progress import progress_bar
from .records import RunRecord, run_dir

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message names the step and the term."""


@dataclass
class RunResult:
    """The outcome of a finished run: its record folder, metrics, history and trained method."""

    folder: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    method: Method
    data: ShiftedMNIST


def resolve_device(name: str) -> torch.device:
    """Turn a device name into a torch.device, failing early when it is not available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} is not available on this machine; use device='cpu' or 'auto'")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device='mps' is not available on this machine; use device='cpu' or 'auto'")
    return torch.device(name)


def evaluation_agreements(config: RunConfig) -> tuple[float, ...]:
    """Return every q a run is tested at: the configured list plus p, the shifted and the adversarial q."""
    extra = (config.train_cue_agreement, SHIFTED_AGREEMENT, ADVERSARIAL_AGREEMENT)
    return tuple(sorted(set(config.test_agreements) | set(extra)))


def data_settings(config: RunConfig) -> dict[str, Any]:
    """Return the keyword arguments of ``build_shifted_mnist`` for a run of ``config``.

    Two configs with equal settings train and test on the same images.
    """
    changes = training_data(config)
    return {
        "cue_type": config.cue_type,
        "train_cue_agreement": changes.train_cue_agreement,
        "test_agreements": evaluation_agreements(config),
        "data_seed": config.data_seed,
        "train_size": config.train_size,
        "val_size": config.val_size,
        "test_size": config.test_size,
        "show_digit": changes.show_digit,
    }


def load_data(config: RunConfig) -> ShiftedMNIST:
    """Build the shiftedMNIST splits a run of ``config`` trains and tests on."""
    return build_shifted_mnist(load_mnist(), **data_settings(config))


def _check_data(config: RunConfig, data: ShiftedMNIST) -> None:
    """Raise ConfigError unless ``data`` fits ``config``.

    ``data`` must have the config's cue type, at least one batch of training
    images and every test split the run is evaluated on.
    """
    if data.cue_type != config.cue_type:
        raise ConfigError(
            f"data were built for cue_type={data.cue_type!r}, but config has {config.cue_type!r}; "
            "pass data=None or data built by load_data(config)"
        )
    if len(data.train) < config.batch_size:
        raise ConfigError(
            f"data has {len(data.train)} training images, fewer than batch_size={config.batch_size}; "
            "lower batch_size or pass data=None to build the data from the config"
        )
    needed = [test_key(q) for q in evaluation_agreements(config)] + [test_key(None)]
    missing = [key for key in needed if key not in data.tests]
    if missing:
        raise ConfigError(
            f"data lacks the test splits {missing} that config is evaluated on; "
            "pass data=None or data built by load_data(config)"
        )


def train(
    config: RunConfig,
    data: ShiftedMNIST | None = None,
    *,
    results_root: Path | None = None,
    progress: bool = True,
) -> RunResult:
    """Train one run of ``config`` and write its record; return the result.

    ``data`` lets a caller reuse splits already built for this config's
    data settings. On any error the record is marked failed and the error
    is raised again.
    """
    device = resolve_device(config.device)
    if data is None:
        data = load_data(config)
    _check_data(config, data)

    # Every check of the inputs comes before this line, so a bad input leaves no run folder.
    record = RunRecord(run_dir(config, results_root), config)
    record.start(str(device))
    try:
        return _train(config, data, device, record, progress)
    except BaseException as error:
        record.fail(error)
        raise


def _train(
    config: RunConfig, data: ShiftedMNIST, device: torch.device, record: RunRecord, progress: bool
) -> RunResult:
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    # NOTE: the channels-last memory format made a CPU step about 1.4x faster
    # (BENCHMARKS.md) but changes results by rounding, so it waits for a rerun of the study.
    method = build_method(config, image_size(config.cue_type)).to(device)
    optimizer = torch.optim.Adam(method.parameters(), lr=config.learning_rate)
    batch_order = torch.Generator().manual_seed(config.seed)

    # Move every split to the device once; batches are then views, not copies from the host.
    train_split = _to_device(data.train, device)
    val = _to_device(data.val, device)
    val_shifted = _to_device(data.val_shifted, device)

    steps_per_epoch = len(train_split) // config.batch_size
    bar = progress_bar(config.epochs * steps_per_epoch, config.run_name(), enabled=progress)
    step = 0
    train_seconds = 0.0
    with bar:
        for epoch in range(1, config.epochs + 1):
            epoch_started = time.perf_counter()
            sums = _train_epoch(config, method, optimizer, train_split, batch_order, device, bar, step)
            step += steps_per_epoch
            train_seconds += time.perf_counter() - epoch_started

            row = {"epoch": epoch, "step": step}
            row.update({f"train_{name}": total / steps_per_epoch for name, total in sums.items()})
            row["val_accuracy"] = accuracy(method, val)
            row["val_shifted_accuracy"] = accuracy(method, val_shifted)
            row["seconds"] = time.perf_counter() - started
            record.add_epoch(row)
            if progress:
                print(_format_row(row), flush=True)

    metrics = _test_metrics(config, method, data, device)
    metrics["val_accuracy"] = record.history[-1]["val_accuracy"]
    metrics["val_shifted_accuracy"] = record.history[-1]["val_shifted_accuracy"]
    metrics["train_images_per_second"] = config.epochs * steps_per_epoch * config.batch_size / train_seconds
    metrics["wall_seconds"] = time.perf_counter() - started
    record.finish(metrics, _checkpoint(config, method, optimizer, step))
    logger.info("run %s complete in %.1f s", config.run_name(), metrics["wall_seconds"])
    return RunResult(record.folder, metrics, record.history, method, data)


def _train_epoch(
    config: RunConfig,
    method: Method,
    optimizer: torch.optim.Optimizer,
    split: ShiftedSplit,
    batch_order: torch.Generator,
    device: torch.device,
    bar: tqdm,
    first_step: int,
) -> dict[str, float]:
    """Run one epoch and return the sum of every loss term over its steps."""
    method.train()
    order = torch.randperm(len(split), generator=batch_order).to(device)  # (N,)
    steps = len(split) // config.batch_size

    # Sums stay on the device until the epoch ends, so a step syncs only for
    # the finiteness check of the total.
    sums: dict[str, torch.Tensor] = {}
    for index in range(steps):
        batch = order[index * config.batch_size : (index + 1) * config.batch_size]  # (B,)
        with _autocast(config, device):
            losses = method.losses(split.images[batch], split.labels[batch])
        if not torch.isfinite(losses["total"]):
            raise NonFiniteLossError(_non_finite_message(config, losses, first_step + index + 1))

        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()

        for name, value in losses.items():
            detached = value.detach().float()
            sums[name] = sums[name] + detached if name in sums else detached
        bar.update(1)
    return {name: total.item() for name, total in sums.items()}


def _non_finite_message(config: RunConfig, losses: dict[str, torch.Tensor], step: int) -> str:
    bad = [name for name, value in losses.items() if name != "total" and not torch.isfinite(value)]
    parts = [f"{name}={losses[name].item()}" for name in bad]
    if not parts:
        # Every term is finite, so a weight times its term overflowed the dtype.
        weights = {"ifm": config.ifm_weight, "sd": config.sd_weight}
        for name, weight in weights.items():
            product = weight * losses[name] if name in losses else None
            if product is not None and not torch.isfinite(product):
                parts.append(f"{name}_weight * {name} = {weight:g} * {losses[name].item():.4g} = {product.item()}")
    terms = ", ".join(parts) or f"total={losses['total'].item()}"
    return (
        f"loss became non-finite at step {step} ({terms}); lower learning_rate or the loss weight, "
        "or try another estimator"
    )


def _autocast(config: RunConfig, device: torch.device):
    if config.precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def _test_metrics(config: RunConfig, method: Method, data: ShiftedMNIST, device: torch.device) -> dict[str, Any]:
    by_key = {key: accuracy(method, _to_device(split, device)) for key, split in data.tests.items()}
    by_q = {f"{q:g}": by_key[test_key(q)] for q in evaluation_agreements(config)}
    return {
        "in_distribution_accuracy": by_key[test_key(config.train_cue_agreement)],
        "shifted_accuracy": by_key[test_key(SHIFTED_AGREEMENT)],
        "adversarial_accuracy": by_key[test_key(ADVERSARIAL_AGREEMENT)],
        "clean_accuracy": by_key[test_key(None)],
        "accuracy_by_q": by_q,
    }


def _checkpoint(config: RunConfig, method: Method, optimizer: torch.optim.Optimizer, step: int) -> dict[str, Any]:
    """Collect the state to save: tensors and plain values only, so ``weights_only`` loading works."""
    return {
        "config": config.to_dict(),
        "method": {name: tensor.detach().cpu() for name, tensor in method.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "step": step,
    }


def _to_device(split: ShiftedSplit, device: torch.device) -> ShiftedSplit:
    if split.images.device == device:
        return split
    return replace(split, images=split.images.to(device), labels=split.labels.to(device), cues=split.cues.to(device))


def _format_row(row: dict[str, float]) -> str:
    parts = [f"epoch {row['epoch']:>3}"]
    parts += [f"{name} {value:.4f}" for name, value in row.items() if name.startswith("train_")]
    parts += [f"val {row['val_accuracy']:.4f}", f"val_shifted {row['val_shifted_accuracy']:.4f}"]
    parts.append(f"{row['seconds']:.0f}s")
    return " | ".join(parts)
