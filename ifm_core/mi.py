"""Mutual information between two sets of paired samples, from a freshly trained critic.

The critic is fitted on one half of the pairs and the bound is evaluated on
the other half, so the estimate is not inflated by a critic that memorised
its training pairs. The result is in nats. A JSD-trained critic is scored
with the Donsker-Varadhan bound, because the JSD bound itself is not an MI
value while its optimal critic is the log density ratio.
"""

from __future__ import annotations

import math

import torch

from .critics import GlobalCritic
from .estimators import dv_bound, get_estimator

EVAL_BATCH_SIZE = 512


def gaussian_pairs(
    n: int, dim: int, rho: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Draw ``n`` pairs (a, b) with corr(a_k, b_k) = rho per dimension; also return the true MI in nats.

    a ~ N(0, I) and b = rho a + sqrt(1 - rho^2) e, so I(a; b) = -dim/2 log(1 - rho^2).
    """
    if not -1 < rho < 1:
        raise ValueError(f"rho={rho} must lie strictly between -1 and 1")
    a = torch.randn(n, dim, generator=generator)  # (n, dim)
    noise = torch.randn(n, dim, generator=generator)  # (n, dim)
    b = rho * a + math.sqrt(1 - rho**2) * noise  # (n, dim)
    return a, b, -dim / 2 * math.log(1 - rho**2)


def estimate_mutual_information(
    a: torch.Tensor,
    b: torch.Tensor,
    estimator: str = "jsd",
    *,
    steps: int = 500,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> float:
    """Estimate I(a; b) in nats from paired rows of ``a`` (N, ...) and ``b`` (N, ...).

    Rows are shuffled with ``seed``; the first half trains the critic and
    the second half is scored in batches of up to ``EVAL_BATCH_SIZE``.
    InfoNCE estimates are therefore capped at log(EVAL_BATCH_SIZE).
    """
    N = a.shape[0]
    if b.shape[0] != N:
        raise ValueError(f"a and b must pair up row by row, got {N} and {b.shape[0]} rows")
    if N < 8:
        raise ValueError(f"{N} pairs are too few to fit and score a critic; give at least 8")

    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(N, generator=generator)
    a, b = a[order].float(), b[order].float()
    half = N // 2
    critic = _fit_critic(a[:half], b[:half], estimator, steps, min(batch_size, half), learning_rate, generator)
    return _score(critic, a[half:], b[half:], estimator)


def _fit_critic(
    a: torch.Tensor,
    b: torch.Tensor,
    estimator: str,
    steps: int,
    batch_size: int,
    learning_rate: float,
    generator: torch.Generator,
) -> GlobalCritic:
    bound = get_estimator(estimator)
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
        critic = GlobalCritic(tuple(a.shape[1:]), tuple(b.shape[1:]))
    optimizer = torch.optim.Adam(critic.parameters(), lr=learning_rate)
    for _ in range(steps):
        batch = torch.randperm(a.shape[0], generator=generator)[:batch_size]  # (B,) distinct rows
        loss = -bound(critic(a[batch], b[batch]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return critic


def _score(critic: GlobalCritic, a: torch.Tensor, b: torch.Tensor, estimator: str) -> float:
    bound = dv_bound if estimator == "jsd" else get_estimator(estimator)
    values, weights = [], []
    with torch.inference_mode():
        for a_chunk, b_chunk in zip(a.split(EVAL_BATCH_SIZE), b.split(EVAL_BATCH_SIZE)):
            if a_chunk.shape[0] < 2:
                continue
            values.append(bound(critic(a_chunk, b_chunk)).item())
            weights.append(a_chunk.shape[0])
    return float(sum(v * w for v, w in zip(values, weights)) / sum(weights))
