"""Training methods behind one contract.

A method owns the network and any extra trainable parts (the IFM critics).
``losses(images, labels)`` returns a dict of named scalar losses whose
``"total"`` entry is what the optimizer minimizes. The training loop logs
every entry, so it never needs to know which method it runs. ``predict`` returns logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import METHODS, RunConfig
from .data import SHIFTED_AGREEMENT
from .losses import InformationFlowLoss, spectral_decoupling
from .models import INPUT_TAP, SmallCNN


class Method(nn.Module):
    """Cross-entropy training of a :class:`SmallCNN`; subclasses add terms."""

    def __init__(self, model: SmallCNN) -> None:
        super().__init__()
        self.model = model

    def losses(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits, _ = self.model(images)
        ce = F.cross_entropy(logits, labels)
        return {"total": ce, "ce": ce}

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        logits, _ = self.model(images)
        return logits


class InformationFlowMethod(Method):
    """Cross-entropy plus ``weight`` times the IFM loss over the network's taps."""

    def __init__(
        self,
        model: SmallCNN,
        image_size: int,
        weight: float,
        estimator: str = "jsd",
        critic: str = "global",
        include_input: bool = False,
    ) -> None:
        super().__init__(model)
        self.weight = weight
        self.include_input = include_input
        shapes = model.tap_shapes(image_size)
        if include_input:
            shapes = {INPUT_TAP: (1, image_size, image_size), **shapes}
        self.ifm = InformationFlowLoss(shapes, estimator=estimator, critic=critic)

    def losses(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits, taps = self.model(images)
        ce = F.cross_entropy(logits, labels)

        # With weight 0 the critics would get no gradient, so skip them: the
        # run then matches a cross-entropy run of the same seed exactly.
        if self.weight == 0:
            return {"total": ce, "ce": ce}

        if self.include_input:
            taps = {INPUT_TAP: images, **taps}
        ifm, bounds = self.ifm(taps)
        terms = {"total": ce + self.weight * ifm, "ce": ce, "ifm": ifm}
        terms.update({f"mi[{name}]": bound for name, bound in bounds.items()})
        return terms


class SpectralDecouplingMethod(Method):
    """Cross-entropy plus ``weight`` times the mean squared logit."""

    def __init__(self, model: SmallCNN, weight: float) -> None:
        super().__init__(model)
        self.weight = weight

    def losses(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits, _ = self.model(images)
        ce = F.cross_entropy(logits, labels)
        sd = spectral_decoupling(logits)
        return {"total": ce + self.weight * sd, "ce": ce, "sd": sd}


@dataclass(frozen=True)
class TrainingData:
    """The training images a method uses, as changes to the configured data."""

    train_cue_agreement: float
    show_digit: bool = True


def training_data(config: RunConfig) -> TrainingData:
    """Return the training images a method trains on.

    ``oracle`` trains with the cue drawn independently of the label, so only
    the digit predicts it (the ceiling). ``cue_only`` gets the cue without
    the digit (the floor). Every other method keeps the configured data.
    """
    if config.method == "oracle":
        return TrainingData(train_cue_agreement=SHIFTED_AGREEMENT)
    if config.method == "cue_only":
        return TrainingData(train_cue_agreement=config.train_cue_agreement, show_digit=False)
    return TrainingData(train_cue_agreement=config.train_cue_agreement)


def build_method(config: RunConfig, image_size: int) -> Method:
    """Build the network and the method named by ``config.method``.

    The network is built first, so for one seed every method starts from
    the same initial weights; critics draw their weights afterwards.
    """
    model = SmallCNN()
    if config.method == "ifm":
        return InformationFlowMethod(
            model,
            image_size,
            weight=config.ifm_weight,
            estimator=config.estimator,
            critic=config.critic,
            include_input=config.include_input,
        )
    if config.method == "sd":
        return SpectralDecouplingMethod(model, weight=config.sd_weight)
    if config.method in ("ce", "oracle", "cue_only"):
        return Method(model)
    raise ValueError(f"unknown method {config.method!r}; choose one of {list(METHODS)}")

