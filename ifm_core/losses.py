"""The information flow maximization (IFM) loss and the spectral decoupling penalty."""

from __future__ import annotations

import torch
from torch import nn

from .critics import build_critic
from .estimators import get_estimator


class InformationFlowLoss(nn.Module):
    """L_IFM = -(1/L) * sum_l I_hat(h_{l-1}; h_l) over adjacent taps.

    One critic per adjacent pair of taps. The critics are trained by the
    same optimizer as the network and, like it, minimize L_IFM, that is,
    maximize the bound. ``forward`` returns the loss and each pair's bound
    (nats for ``dv`` and ``infonce``; see :mod:`ifm_core.estimators` for ``jsd``).
    """

    def __init__(
        self,
        tap_shapes: dict[str, tuple[int, ...]],
        estimator: str = "jsd",
        critic: str = "global",
    ) -> None:
        super().__init__()
        if len(tap_shapes) < 2:
            raise ValueError(f"the IFM loss needs at least two taps, got {list(tap_shapes)}")
        self.estimate = get_estimator(estimator)
        names = list(tap_shapes)
        self.pairs = list(zip(names[:-1], names[1:]))
        self.critics = nn.ModuleDict(
            {
                pair_name(lower, upper): build_critic(critic, tap_shapes[lower], tap_shapes[upper])
                for lower, upper in self.pairs
            }
        )

    def forward(self, taps: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        bounds = {}
        for lower, upper in self.pairs:
            name = pair_name(lower, upper)
            scores = self.critics[name](taps[lower], taps[upper])  # (B, B) or (P, B, B)
            bounds[name] = self.estimate(scores)
        loss = -torch.stack(list(bounds.values())).mean()
        return loss, bounds


def pair_name(lower: str, upper: str) -> str:
    """Name the adjacent-tap pair (lower, upper), e.g. ``conv1->conv2``."""
    return f"{lower}->{upper}"


def spectral_decoupling(logits: torch.Tensor) -> torch.Tensor:
    """Return the mean squared logit, the penalty of Pezeshki et al. (2021)."""
    return logits.pow(2).mean()
