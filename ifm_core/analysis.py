"""Mechanism analysis of trained runs: linear probes, MI per layer, information flow and t-SNE.

Everything here is fitted and scored on held-out training digits whose cue is
drawn independently of the label (``data.val_shifted``, q = 0.1), never on a
test split. On those images a probe can only read the cue from the cue
itself, so digit and cue information are measured separately.

Conv taps are large (conv1 has 16 x 14 x 14 = 3136 features), so every tap
is standardized and projected on at most ``REDUCED_DIM`` principal components
before a probe or a critic is fitted to it. A linear probe of the reduced tap
is also a linear probe of the full tap, so the reduction can only lose
information that a linear probe could read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.metrics import log_loss
from threadpoolctl import threadpool_limits

from .config import RunConfig
from .data import NO_CUE, ShiftedMNIST, ShiftedSplit, image_size, training_split_indices
from .estimators import ESTIMATORS, get_estimator
from .evaluation import extract_taps
from .methods import Method, build_method
from .mi import estimate_mutual_information, gaussian_pairs
from .mnist import load_mnist
from .models import NUM_CLASSES
from .records import is_complete, load_checkpoint, read_status
from .training import load_data

REDUCED_DIM = 256  # principal components kept per tap for probes and critics

# Inverse L2 strengths (scikit-learn's C) tried for every probe. The best one
# on a validation slice of the probe-training images is refitted on all of them.
PROBE_C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
PROBE_SELECTION_FRACTION = 0.2
PROBE_MAX_ITER = 500
MIN_PROBE_IMAGES = 20

TSNE_PCA_DIM = 50

# Both targets are taken as uniform over 10 classes, so H(target) = log 10.
# That is exact for cues drawn with q = 0.1, which are uniform and independent
# of the digit. The MNIST digit frequencies give 2.3012 nats, 0.0014 below log 10.
TARGET_ENTROPY_NATS = math.log(NUM_CLASSES)


@contextmanager
def limited_threads(count: int = 1) -> Iterator[None]:
    """Run the body with at most ``count`` torch, BLAS and OpenMP threads, then restore the previous limits.

    Probes and critics multiply matrices of a few thousand rows by at most
    257 columns, too small for threads to pay for their synchronization.
    When other processes keep the cores busy, waiting threads cost far
    more: on a 2-core machine shared with a training job, probing 5,000
    images took 350 s with 2 threads and 9 s with 1.
    """
    if count < 1:
        raise ValueError(f"count={count} is invalid; use at least 1 thread")
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with threadpool_limits(limits=count):
            yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class Reduction:
    """Per-feature standardization, then projection on leading principal components."""

    mean: torch.Tensor  # (D,)
    scale: torch.Tensor  # (D,)
    components: torch.Tensor | None  # (D, K), or None to keep all D standardized features

    def apply(self, rows: torch.Tensor) -> torch.Tensor:
        standardized = (rows.float() - self.mean) / self.scale  # (N, D)
        if self.components is None:
            return standardized
        return standardized @ self.components  # (N, K)


def fit_reduction(rows: torch.Tensor, *, max_dim: int = REDUCED_DIM, seed: int = 0) -> Reduction:
    """Fit a :class:`Reduction` of ``rows`` (N, D) to at most ``max_dim`` features.

    Features that are constant on ``rows`` (dead ReLUs) keep scale 1, so they
    stay at zero instead of being divided by zero. The principal components
    come from randomized SVD, seeded with ``seed``.
    """
    if max_dim < 1:
        raise ValueError(f"max_dim={max_dim} is invalid; use a positive number of components such as 256")
    rows = rows.float()
    N, D = rows.shape
    mean = rows.mean(dim=0)  # (D,)
    std = rows.std(dim=0) if N > 1 else torch.zeros(D)  # (D,)
    scale = torch.where(std > 1e-6, std, torch.ones_like(std))  # (D,)
    if D <= max_dim:
        return Reduction(mean, scale, None)

    standardized = (rows - mean) / scale  # (N, D), centred, so pca_lowrank need not centre again
    rank = min(max_dim, N, D)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, _, components = torch.pca_lowrank(standardized, q=rank, center=False)  # (D, rank)
    return Reduction(mean, scale, components)


def linear_probes(
    features: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    cues: torch.Tensor,
    *,
    seed: int = 0,
    train_fraction: float = 0.5,
    max_dim: int = REDUCED_DIM,
) -> pd.DataFrame:
    """Fit a multinomial logistic-regression probe for the digit and for the cue from every tap.

    ``features`` maps tap names to (N, D) activations of N held-out images,
    and ``labels`` and ``cues`` are their (N,) classes. A random
    ``train_fraction`` of the images (drawn with ``seed``) fits the
    reduction and the probe, and the rest scores it. Returns one row per
    tap and target with columns ``tap``, ``target`` ("digit" or "cue"),
    ``accuracy``, ``cross_entropy_nats`` (held-out), ``mi_nats`` and
    ``mi_bits``, ``probe_c`` (the chosen inverse L2 strength) and ``probe_dim``.

    ``mi_nats`` is the Barber-Agakov lower bound log 10 - cross_entropy_nats
    on I(tap; target), and ``mi_bits`` is the same bound divided by log 2.
    Both are clipped at 0, because MI is never negative, so the most they
    can reach is log2(10) = 3.32 bits. The unclipped bound follows from
    ``cross_entropy_nats``.
    """
    targets = {"digit": labels.cpu(), "cue": cues.cpu()}
    N = _check_probe_inputs(features, targets)
    train_rows, test_rows = _split_rows(N, train_fraction, seed)

    rows = []
    with limited_threads():
        for tap, values in features.items():
            values = values.detach().cpu()
            reduction = fit_reduction(values[train_rows], max_dim=max_dim, seed=seed)
            train_x = reduction.apply(values[train_rows]).double().numpy()  # (N_train, K)
            test_x = reduction.apply(values[test_rows]).double().numpy()  # (N_test, K)
            for target, classes in targets.items():
                train_y, test_y = classes[train_rows].numpy(), classes[test_rows].numpy()
                scores = _fit_probe(train_x, train_y, test_x, test_y)
                rows.append({"tap": tap, "target": target, **scores, "probe_dim": train_x.shape[1]})
    return pd.DataFrame(rows)


def _check_probe_inputs(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> int:
    if not features:
        raise ValueError("features is empty; pass a dict of tap name to (N, D) activations, e.g. from extract_taps")
    N = len(next(iter(targets.values())))
    if N < MIN_PROBE_IMAGES:
        raise ValueError(f"{N} images are too few to fit and score a probe; give at least {MIN_PROBE_IMAGES}")
    for name, classes in targets.items():
        if tuple(classes.shape) != (N,) or classes.dtype != torch.int64:
            raise ValueError(
                f"{name} has shape {tuple(classes.shape)} and dtype {classes.dtype}; expected int64 of shape ({N},)"
            )
        if bool((classes == NO_CUE).any()):
            raise ValueError(
                f"{name} contains NO_CUE ({NO_CUE}), images without a cue; probe a split with cues, "
                "such as data.val_shifted"
            )
        if bool(((classes < 0) | (classes >= NUM_CLASSES)).any()):
            raise ValueError(f"{name} contains classes outside 0..{NUM_CLASSES - 1}")
    for tap, values in features.items():
        if values.dim() != 2 or values.shape[0] != N:
            raise ValueError(
                f"tap {tap!r} has shape {tuple(values.shape)}; expected ({N}, features), one row per image"
            )
    return N


def _split_rows(N: int, train_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return disjoint (train, test) row indices from one seeded permutation."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction={train_fraction} is invalid; use a fraction strictly between 0 and 1")
    order = torch.randperm(N, generator=torch.Generator().manual_seed(seed))  # (N,)
    cut = min(max(round(train_fraction * N), 2), N - 2)
    return order[:cut], order[cut:]


def _fit_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> dict[str, float]:
    c = _select_probe_c(train_x, train_y)
    probe = LogisticRegression(C=c, max_iter=PROBE_MAX_ITER).fit(train_x, train_y)
    probabilities = _class_probabilities(probe, test_x)  # (N_test, 10)
    cross_entropy = log_loss(test_y, probabilities, labels=np.arange(NUM_CLASSES))
    mi_nats = max(0.0, TARGET_ENTROPY_NATS - cross_entropy)
    return {
        "accuracy": float((probabilities.argmax(axis=1) == test_y).mean()),
        "cross_entropy_nats": float(cross_entropy),
        "mi_nats": mi_nats,
        "mi_bits": mi_nats / math.log(2),
        "probe_c": c,
    }


def _select_probe_c(train_x: np.ndarray, train_y: np.ndarray) -> float:
    """Return the C of ``PROBE_C_GRID`` with the lowest cross-entropy on a validation slice.

    The grid runs from strong to weak regularization with warm starts, so
    each fit starts near its solution. The rows are already shuffled, so
    the last slice is a random validation set.
    """
    cut = len(train_y) - max(1, round(PROBE_SELECTION_FRACTION * len(train_y)))
    probe = LogisticRegression(max_iter=PROBE_MAX_ITER, warm_start=True)
    best_c, best_loss = PROBE_C_GRID[0], math.inf
    for c in PROBE_C_GRID:
        probe.set_params(C=c).fit(train_x[:cut], train_y[:cut])
        probabilities = _class_probabilities(probe, train_x[cut:])
        loss = log_loss(train_y[cut:], probabilities, labels=np.arange(NUM_CLASSES))
        if loss < best_loss:
            best_c, best_loss = c, loss
    return best_c


def _class_probabilities(probe: LogisticRegression, x: np.ndarray) -> np.ndarray:
    """Return (N, 10) class probabilities, with 0 for a class absent from the probe's training rows."""
    probabilities = np.zeros((x.shape[0], NUM_CLASSES))  # (N, 10)
    probabilities[:, probe.classes_] = probe.predict_proba(x)
    return probabilities


def information_flow(
    features: Mapping[str, torch.Tensor],
    *,
    estimator: str = "jsd",
    steps: int = 500,
    seed: int = 0,
    max_dim: int = REDUCED_DIM,
) -> pd.DataFrame:
    """Estimate I(h_{l-1}; h_l) for each adjacent pair of taps with a freshly trained critic.

    Taps pair up in the order of ``features``, which ``extract_taps`` gives
    in forward order. Each tap is reduced by :func:`fit_reduction` fitted on
    all its rows. The reduction looks at each tap alone and never at which rows
    pair up, so the half that :func:`estimate_mutual_information` scores stays
    held out as pairs.
    Returns columns ``lower``, ``upper``, ``pair``, ``estimator``, ``mi_nats``
    and ``mi_bits``. A JSD critic is scored with the Donsker-Varadhan bound.

    NOTE: with one seed, 5,000 images and 500 steps, the estimates moved by
    up to 0.27 nats when only the thread count changed, so compare methods
    over several seeds rather than single values.
    """
    get_estimator(estimator)
    names = list(features)
    if len(names) < 2:
        raise ValueError(f"information flow needs at least two taps, got {names}; pass every tap from extract_taps")

    rows = []
    with limited_threads():
        reduced = {name: _reduce_all_rows(values, max_dim, seed) for name, values in features.items()}
        for lower, upper in zip(names, names[1:]):
            nats = estimate_mutual_information(reduced[lower], reduced[upper], estimator, steps=steps, seed=seed)
            rows.append(_flow_row(lower, upper, estimator, nats))
    return pd.DataFrame(rows)


def _reduce_all_rows(values: torch.Tensor, max_dim: int, seed: int) -> torch.Tensor:
    values = values.detach().cpu()
    return fit_reduction(values, max_dim=max_dim, seed=seed).apply(values)  # (N, <=max_dim)


def _flow_row(lower: str, upper: str, estimator: str, nats: float) -> dict[str, object]:
    return {
        "lower": lower,
        "upper": upper,
        "pair": f"{lower} -> {upper}",
        "estimator": estimator,
        "mi_nats": nats,
        "mi_bits": nats / math.log(2),
    }


def estimator_validation(
    dims: Sequence[int] = (1, 4, 16),
    rhos: Sequence[float] = (0.25, 0.5, 0.75, 0.9),
    estimators: Sequence[str] = tuple(ESTIMATORS),
    *,
    n: int = 4000,
    steps: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """Compare each estimator's MI estimate with the true MI of correlated Gaussians.

    For every (dim, rho), ``n`` pairs with true MI -dim/2 log(1 - rho^2)
    are drawn once and shared by all estimators. Returns columns
    ``estimator``, ``dim``, ``rho``, ``true_mi_nats`` and ``estimate_nats``.
    InfoNCE estimates cannot exceed log 512 = 6.2 nats, the scoring batch.
    """
    for name in estimators:
        get_estimator(name)

    rows = []
    with limited_threads():
        for dim in dims:
            for rho_index, rho in enumerate(rhos):
                generator = _gaussian_generator(seed, dim, rho_index)
                a, b, true_mi = gaussian_pairs(n, dim, rho, generator)  # (n, dim) each
                for name in estimators:
                    estimate = estimate_mutual_information(a, b, name, steps=steps, seed=seed)
                    rows.append(
                        {"estimator": name, "dim": dim, "rho": rho, "true_mi_nats": true_mi, "estimate_nats": estimate}
                    )
    return pd.DataFrame(rows)


def _gaussian_generator(seed: int, dim: int, rho_index: int) -> torch.Generator:
    """Return a generator of its own for each grid cell, so changing the grid leaves other cells' pairs as they were."""
    state = np.random.SeedSequence([seed, dim, rho_index]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def tsne_embedding(
    features: torch.Tensor | np.ndarray, *, seed: int = 0, perplexity: float = 30.0, threads: int | None = 1
) -> np.ndarray:
    """Embed (N, D) features in 2-D with scikit-learn's t-SNE and return the (N, 2) coordinates.

    Features with more than ``TSNE_PCA_DIM`` dimensions are first projected
    on their leading principal components. With few points the perplexity
    is lowered to (N - 1) / 3, so that the 3 x perplexity nearest neighbours
    that the affinities use exist.

    ``threads`` caps the OpenMP and BLAS threads (None keeps the libraries'
    own counts). One thread is the default because on a 2-core machine
    shared with a training job, 5,000 points took about 40 s with 1 thread
    and 107 s with 2, and 3 points took 0.1 s against 30 s. On idle cores,
    more threads are faster.
    """
    x = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, float)
    if x.ndim != 2:
        raise ValueError(f"features has shape {x.shape}; expected (N, D), one row per point")
    N, D = x.shape
    if N < 2:
        raise ValueError(f"t-SNE needs at least 2 points to place relative to each other, got {N}; pass more rows")
    if perplexity <= 0:
        raise ValueError(f"perplexity={perplexity} is invalid; use a positive number such as 30")

    with limited_threads(threads) if threads is not None else nullcontext():
        if D > TSNE_PCA_DIM:
            x = PCA(n_components=min(TSNE_PCA_DIM, N), random_state=seed).fit_transform(x)  # (N, <=50)
        tsne = TSNE(perplexity=min(perplexity, (N - 1) / 3), init="pca", random_state=seed)
        return tsne.fit_transform(x)  # (N, 2)


def load_trained_method(folder: Path | str) -> tuple[RunConfig, Method]:
    """Rebuild a complete run's method from its ``weights_only`` checkpoint, on the CPU in eval mode.

    Building the network draws initial weights, so it runs under a forked
    RNG and leaves the caller's global random state as it was.
    """
    folder = Path(folder)
    if not is_complete(folder):
        raise ValueError(
            f"run folder {folder} has status {read_status(folder)!r}, not 'complete', so it has no "
            "usable checkpoint; finish the run with train() or pick a complete run"
        )
    checkpoint = load_checkpoint(folder)
    config = RunConfig(**checkpoint["config"])
    with torch.random.fork_rng(devices=[]):
        method = build_method(config, image_size(config.cue_type))
    method.load_state_dict(checkpoint["method"])
    method.eval()
    return config, method


def mechanism_summary(
    folder: Path | str,
    data: ShiftedMNIST | None = None,
    *,
    n_images: int = 5000,
    seed: int = 0,
    estimator: str = "jsd",
    steps: int = 500,
) -> dict[str, pd.DataFrame]:
    """Probe and measure the information flow of one trained run on held-out images.

    Takes the first ``n_images`` of ``data.val_shifted``. With ``data=None``
    the run's own splits are rebuilt. Returns ``{"probes": linear_probes(...),
    "flow": information_flow(...)}``, each with the leading columns ``run``
    (the folder name), ``method`` and ``seed`` so that runs can be concatenated.
    """
    config, method = load_trained_method(folder)
    if data is None:
        data = load_data(config)
    _check_held_out(config, data)
    probe_set = _first_images(data.val_shifted, n_images)

    features = extract_taps(method, probe_set.images)
    run = {"run": Path(folder).name, "method": config.method, "seed": config.seed}
    probes = linear_probes(features, probe_set.labels, probe_set.cues, seed=seed)
    flow = information_flow(features, estimator=estimator, steps=steps, seed=seed)
    return {"probes": _with_run_columns(probes, run), "flow": _with_run_columns(flow, run)}


def _check_held_out(config: RunConfig, data: ShiftedMNIST) -> None:
    """Raise unless ``data.val_shifted`` contains the digits that this run held out from training.

    Splits built with another data seed or other sizes would put the run's
    own training digits among the probe images.
    """
    if data.cue_type != config.cue_type:
        raise ValueError(
            f"data were built for cue_type={data.cue_type!r}, but the run used {config.cue_type!r}; "
            "pass load_data(config) or data=None"
        )
    val_indices, _ = training_split_indices(config.data_seed, config.val_size, config.train_size)
    expected_labels = load_mnist().train_labels[val_indices]  # (val_size,)
    if not torch.equal(data.val_shifted.labels.cpu(), expected_labels):
        raise ValueError(
            f"data.val_shifted does not contain the digits this run held out (data_seed={config.data_seed}, "
            f"val_size={config.val_size}); pass load_data(config) or data=None"
        )


def _first_images(split: ShiftedSplit, n_images: int) -> ShiftedSplit:
    if not 1 <= n_images <= len(split):
        raise ValueError(f"n_images={n_images} is invalid; the held-out split has {len(split)} images")
    return ShiftedSplit(split.images[:n_images].cpu(), split.labels[:n_images].cpu(), split.cues[:n_images].cpu())


def _with_run_columns(table: pd.DataFrame, run: Mapping[str, object]) -> pd.DataFrame:
    return table.assign(**run)[[*run, *table.columns]]
