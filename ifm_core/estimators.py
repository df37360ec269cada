"""Variational lower bounds on mutual information, computed from critic scores.

Every estimator takes a score matrix ``scores`` of shape ``(..., N, N)`` with
``scores[..., i, j] = T(a_i, b_j)``. The diagonal contains the positive pairs,
both views from the same image. Every off-diagonal entry is a negative pair,
views from two different images, so no positive is ever counted as a
negative. Leading dimensions are independent replicates (the spatial
positions of a local critic) and are averaged. Values are in nats.

- ``jsd``: the Jensen-Shannon bound of f-GAN (Nowozin et al. 2016) as used by
  Deep InfoMax (Hjelm et al. 2019). It is not itself an MI value in nats,
  but its optimal critic is the log density ratio, so ``dv_bound`` of a
  JSD-trained critic estimates MI.
- ``dv``: the Donsker-Varadhan bound of MINE (Belghazi et al. 2018).
- ``infonce``: the contrastive bound of van den Oord et al. (2018); it can
  never exceed log N for a batch of N.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Estimator = Callable[[torch.Tensor], torch.Tensor]


def _check_scores(scores: torch.Tensor) -> int:
    if scores.dim() < 2 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"scores must have shape (..., N, N), got {tuple(scores.shape)}")
    N = scores.shape[-1]
    if N < 2:
        raise ValueError(
            f"a batch of {N} image has no negative pairs, so no MI bound exists; "
            "use batches of at least 2 images"
        )
    return N


def _negative_mask(N: int, device: torch.device) -> torch.Tensor:
    return ~torch.eye(N, dtype=torch.bool, device=device)  # (N, N), True off the diagonal


def jsd_bound(scores: torch.Tensor) -> torch.Tensor:
    """Return E_pos[-softplus(-T)] - E_neg[softplus(T)]."""
    N = _check_scores(scores)
    positive = -F.softplus(-scores.diagonal(dim1=-2, dim2=-1)).mean()
    negatives = scores.masked_select(_negative_mask(N, scores.device))  # (... * N * (N-1),)
    negative = F.softplus(negatives).mean()
    return positive - negative


def dv_bound(scores: torch.Tensor) -> torch.Tensor:
    """Return E_pos[T] - log E_neg[exp T], with the log-mean-exp taken stably."""
    N = _check_scores(scores)
    positive = scores.diagonal(dim1=-2, dim2=-1).mean()

    # Filling the diagonal with -inf drops the positives from the log-sum-exp;
    # exp(-inf) = 0 also gives them zero gradient through this term.
    negatives = scores.masked_fill(~_negative_mask(N, scores.device), float("-inf"))
    replicates = negatives.reshape(-1, N * N)  # (R, N * N), one row per replicate
    log_mean_exp = torch.logsumexp(replicates, dim=1) - math.log(N * (N - 1))  # (R,)
    return positive - log_mean_exp.mean()


def infonce_bound(scores: torch.Tensor) -> torch.Tensor:
    """Return mean_i [T_ii - log mean_j exp T_ij], at most log N.

    The softmax over row i contains the one positive T_ii and the N - 1
    negatives T_ij (j != i). This is the standard form, and the log N bound
    is valid only with the positive included.
    """
    N = _check_scores(scores)
    positive = scores.diagonal(dim1=-2, dim2=-1)  # (..., N)
    log_mean_exp = torch.logsumexp(scores, dim=-1) - math.log(N)  # (..., N)
    return (positive - log_mean_exp).mean()


ESTIMATORS: dict[str, Estimator] = {
    "jsd": jsd_bound,
    "dv": dv_bound,
    "infonce": infonce_bound,
}


def get_estimator(name: str) -> Estimator:
    """Return the estimator called ``name``; raise ValueError listing the valid names."""
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; choose one of {sorted(ESTIMATORS)}") from None
