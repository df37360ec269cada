"""MI bounds: known values, the log N cap, stability and the positive/negative split."""

import math

import pytest
import torch

from ifm_core.estimators import ESTIMATORS, dv_bound, get_estimator, infonce_bound, jsd_bound
from ifm_core.mi import estimate_mutual_information, gaussian_pairs

NAMES = sorted(ESTIMATORS)


@pytest.mark.parametrize(
    ("dim", "rho", "tolerance"),
    [(2, 0.8, 0.15), (5, 0.5, 0.15)],
)
@pytest.mark.parametrize("name", NAMES)
def test_gaussian_mi_recovered(name, dim, rho, tolerance):
    generator = torch.Generator().manual_seed(1)
    a, b, true_mi = gaussian_pairs(6000, dim, rho, generator)
    estimate = estimate_mutual_information(a, b, name, steps=400, seed=2)
    assert abs(estimate - true_mi) < tolerance, f"{name}: estimate {estimate:.3f} nats, true {true_mi:.3f}"


@pytest.mark.parametrize("name", NAMES)
def test_independent_samples_near_zero(name):
    generator = torch.Generator().manual_seed(3)
    a = torch.randn(4000, 3, generator=generator)
    b = torch.randn(4000, 3, generator=generator)
    assert abs(estimate_mutual_information(a, b, name, steps=300)) < 0.1


@pytest.mark.parametrize("N", [2, 8, 64])
def test_infonce_capped_at_log_n(N):
    # The best possible critic puts +inf on the diagonal and -inf elsewhere;
    # float64 keeps rounding of the +-1e4 scores out of the comparison.
    scores = torch.full((N, N), -1e4, dtype=torch.float64)
    scores.fill_diagonal_(1e4)
    value = infonce_bound(scores).item()
    assert value <= math.log(N) + 1e-6
    assert value == pytest.approx(math.log(N), abs=1e-4)


def test_infonce_random_scores_below_log_n():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        scores = 50 * torch.randn(16, 16, generator=generator)
        assert infonce_bound(scores).item() <= math.log(16) + 1e-6


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("extreme", [1e4, -1e4])
def test_extreme_scores_finite(name, extreme):
    scores = torch.full((8, 8), -extreme)
    scores.fill_diagonal_(extreme)
    scores.requires_grad_(True)
    value = get_estimator(name)(scores)
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(scores.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_uniform_extreme_scores_finite(name):
    scores = torch.full((4, 4), 1e4, requires_grad=True)
    value = get_estimator(name)(scores)
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(scores.grad).all()


def test_jsd_negatives_exclude_diagonal():
    # d/dT_ii of the JSD bound is sigmoid(-T_ii)/N from the positive term alone;
    # any leak of the diagonal into the negatives would subtract sigmoid(T_ii)/(N(N-1)).
    N = 6
    scores = torch.randn(N, N, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    jsd_bound(scores).backward()
    diagonal = scores.detach().diagonal()
    assert torch.allclose(scores.grad.diagonal(), torch.sigmoid(-diagonal) / N)


def test_jsd_off_diagonal_gradient():
    N = 6
    scores = torch.randn(N, N, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    jsd_bound(scores).backward()
    off = ~torch.eye(N, dtype=torch.bool)
    expected = -torch.sigmoid(scores.detach()[off]) / (N * (N - 1))
    assert torch.allclose(scores.grad[off], expected)


def test_dv_negatives_exclude_diagonal():
    # Raising the positives must not change the negative term of DV.
    scores = torch.zeros(5, 5)
    raised = scores.clone()
    raised.fill_diagonal_(100.0)
    assert dv_bound(raised).item() - dv_bound(scores).item() == pytest.approx(100.0)


def test_dv_diagonal_gradient_positive_only():
    N = 5
    scores = torch.randn(N, N, generator=torch.Generator().manual_seed(4)).requires_grad_(True)
    dv_bound(scores).backward()
    assert torch.allclose(scores.grad.diagonal(), torch.full((N,), 1 / N))


@pytest.mark.parametrize("name", NAMES)
def test_single_image_batch_rejected(name):
    with pytest.raises(ValueError, match="no negative pairs"):
        get_estimator(name)(torch.zeros(1, 1))


@pytest.mark.parametrize("name", NAMES)
def test_non_square_scores_rejected(name):
    with pytest.raises(ValueError, match=r"\(\.\.\., N, N\)"):
        get_estimator(name)(torch.zeros(3, 4))


@pytest.mark.parametrize("name", NAMES)
def test_replicates_averaged(name):
    generator = torch.Generator().manual_seed(5)
    first = torch.randn(4, 4, generator=generator)
    second = torch.randn(4, 4, generator=generator)
    estimate = get_estimator(name)
    stacked = estimate(torch.stack([first, second])).item()
    assert stacked == pytest.approx((estimate(first).item() + estimate(second).item()) / 2, rel=1e-5)


def test_unknown_estimator_lists_choices():
    with pytest.raises(ValueError, match=r"unknown estimator 'mine'.*\['dv', 'infonce', 'jsd'\]"):
        get_estimator("mine")
