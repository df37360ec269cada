"""Mechanism analysis: probes, information flow, t-SNE and figures, on built features and one tiny real run."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from ifm_core.analysis import (
    estimator_validation,
    information_flow,
    limited_threads,
    linear_probes,
    load_trained_method,
    mechanism_summary,
    tsne_embedding,
)
from ifm_core.analysis_plots import (
    estimator_validation_figure,
    mi_per_layer_figure,
    probe_accuracy_figure,
    tsne_figure,
)
from ifm_core.config import RunConfig
from ifm_core.data import NO_CUE
from ifm_core.evaluation import predict_labels
from ifm_core.models import TAP_NAMES
from ifm_core.plots import save_figure
from ifm_core.training import train

MAX_BITS = math.log2(10)
TINY_RUN = RunConfig(method="ce", train_size=2000, val_size=1000, test_size=500, epochs=1, test_agreements=[0.5])


def class_features(classes: torch.Tensor, width: int, generator: torch.Generator) -> torch.Tensor:
    """Return (N, width) features from which ``classes`` is linearly decodable: a class direction plus noise."""
    directions = torch.randn(10, width, generator=generator)  # (10, width)
    noise = 0.3 * torch.randn(len(classes), width, generator=generator)  # (N, width)
    return 3 * directions[classes] + noise


@pytest.fixture(scope="module")
def built_probes():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (800,), generator=generator)
    cues = torch.randint(0, 10, (800,), generator=generator)
    features = {
        "digit_tap": class_features(labels, 20, generator),
        "cue_tap": class_features(cues, 20, generator),
        # Wider than max_dim, so this tap goes through the PCA reduction.
        "wide_digit_tap": class_features(labels, 300, generator),
    }
    table = linear_probes(features, labels, cues, seed=0, max_dim=32)
    return table.set_index(["tap", "target"])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train(TINY_RUN, results_root=tmp_path_factory.mktemp("runs"), progress=False)


@pytest.fixture(scope="module")
def tiny_summary(tiny_run):
    return mechanism_summary(tiny_run.folder, tiny_run.data, n_images=1000, seed=0, steps=100)


def test_probes_read_digit_tap(built_probes):
    assert built_probes.loc[("digit_tap", "digit"), "accuracy"] > 0.95
    assert built_probes.loc[("digit_tap", "cue"), "accuracy"] < 0.3


def test_probes_read_cue_tap(built_probes):
    assert built_probes.loc[("cue_tap", "cue"), "accuracy"] > 0.95
    assert built_probes.loc[("cue_tap", "digit"), "accuracy"] < 0.3


def test_probes_after_pca_reduction(built_probes):
    assert built_probes.loc[("wide_digit_tap", "digit"), "probe_dim"] == 32
    assert built_probes.loc[("wide_digit_tap", "digit"), "accuracy"] > 0.95


def test_probe_bits_within_range(built_probes):
    assert (built_probes["mi_bits"] >= 0).all()
    assert (built_probes["mi_bits"] <= MAX_BITS + 1e-9).all()


def test_probe_bits_near_maximum_when_decodable(built_probes):
    assert built_probes.loc[("digit_tap", "digit"), "mi_bits"] > MAX_BITS - 0.3
    assert built_probes.loc[("cue_tap", "cue"), "mi_bits"] > MAX_BITS - 0.3


def test_probe_bits_near_zero_when_not_decodable(built_probes):
    assert built_probes.loc[("digit_tap", "cue"), "mi_bits"] < 0.3


def test_probes_reject_missing_cues():
    labels = torch.arange(40) % 10
    cues = torch.full((40,), NO_CUE)
    with pytest.raises(ValueError, match="NO_CUE"):
        linear_probes({"fc": torch.randn(40, 5)}, labels, cues, seed=0)


def test_flow_higher_for_correlated_pair():
    generator = torch.Generator().manual_seed(0)
    lower = torch.randn(2000, 4, generator=generator)  # (N, 4)
    correlated = 0.9 * lower + math.sqrt(1 - 0.9**2) * torch.randn(2000, 4, generator=generator)  # (N, 4)
    independent = torch.randn(2000, 4, generator=generator)  # (N, 4)
    flow = information_flow({"a": lower, "b": correlated, "c": independent}, steps=200, seed=0)
    by_pair = flow.set_index("pair")["mi_nats"]
    assert by_pair["a -> b"] > 1.0, by_pair.to_dict()
    assert by_pair["b -> c"] < 0.3, by_pair.to_dict()
    assert np.allclose(flow["mi_bits"], flow["mi_nats"] / math.log(2))


def test_estimator_validation_table():
    table = estimator_validation(dims=(2,), rhos=(0.5,), estimators=("jsd", "infonce"), n=1000, steps=100, seed=0)
    assert list(table["estimator"]) == ["jsd", "infonce"]
    assert table["true_mi_nats"].tolist() == pytest.approx([-math.log(1 - 0.25)] * 2)
    assert np.isfinite(table["estimate_nats"]).all()


def test_estimator_validation_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown estimator"):
        estimator_validation(estimators=("mine",))


@pytest.mark.parametrize("N", [2, 3, 5, 50])
def test_tsne_few_points(N):
    features = torch.randn(N, 100, generator=torch.Generator().manual_seed(N))
    embedding = tsne_embedding(features, seed=0)
    assert embedding.shape == (N, 2)
    assert np.isfinite(embedding).all()


def test_tsne_rejects_single_point():
    with pytest.raises(ValueError, match="at least 2 points"):
        tsne_embedding(torch.randn(1, 10), seed=0)


def test_limited_threads_restores_count():
    before = torch.get_num_threads()
    with limited_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_loaded_method_predicts_like_trained(tiny_run):
    config, method = load_trained_method(tiny_run.folder)
    images = tiny_run.data.val_shifted.images[:200]
    assert config == TINY_RUN
    assert torch.equal(predict_labels(method, images), predict_labels(tiny_run.method, images))


def test_load_rejects_incomplete_run(tmp_path):
    with pytest.raises(ValueError, match="not 'complete'"):
        load_trained_method(tmp_path)


def test_summary_finite_for_every_tap(tiny_summary):
    probes, flow = tiny_summary["probes"], tiny_summary["flow"]
    assert set(probes["tap"]) == set(TAP_NAMES)
    assert len(probes) == 2 * len(TAP_NAMES)
    assert list(flow["pair"]) == ["conv1 -> conv2", "conv2 -> conv3", "conv3 -> fc"]
    for column in ("accuracy", "cross_entropy_nats", "mi_bits"):
        assert np.isfinite(probes[column]).all(), column
    assert np.isfinite(flow["mi_nats"]).all()


def test_summary_labels_rows_with_run(tiny_run, tiny_summary):
    for table in tiny_summary.values():
        assert list(table.columns[:3]) == ["run", "method", "seed"]
        assert (table["run"] == tiny_run.folder.name).all()
        assert (table["method"] == "ce").all()


def test_summary_rejects_other_held_out_digits(tiny_run):
    data = tiny_run.data
    shuffled = replace(data.val_shifted, labels=data.val_shifted.labels.roll(1))
    with pytest.raises(ValueError, match="held out"):
        mechanism_summary(tiny_run.folder, replace(data, val_shifted=shuffled), n_images=100)


def test_figures_build_and_save(tiny_summary, tmp_path):
    # A copy relabelled as "ifm" gives every figure a second method to draw.
    probes = pd.concat([tiny_summary["probes"], tiny_summary["probes"].assign(method="ifm")])
    flow = pd.concat([tiny_summary["flow"], tiny_summary["flow"].assign(method="ifm")])
    validation = pd.DataFrame(
        {
            "estimator": ["jsd", "jsd", "infonce", "infonce"],
            "dim": [2, 2, 2, 2],
            "rho": [0.5, 0.9, 0.5, 0.9],
            "true_mi_nats": [0.29, 1.66, 0.29, 1.66],
            "estimate_nats": [0.25, 1.5, 0.27, 1.6],
        }
    )
    generator = torch.Generator().manual_seed(0)
    embeddings = {"ce": torch.randn(50, 2, generator=generator), "ifm": torch.randn(50, 2, generator=generator)}
    figures = {
        "validation": estimator_validation_figure(validation),
        "mi_per_layer": mi_per_layer_figure(probes, flow),
        "probe_accuracy": probe_accuracy_figure(probes),
        "tsne": tsne_figure(embeddings, torch.arange(50) % 10, torch.arange(50) % 10),
    }
    for name, figure in figures.items():
        for path in save_figure(figure, tmp_path, name):
            assert path.stat().st_size > 0, path


def test_tsne_figure_rejects_mismatched_rows():
    with pytest.raises(ValueError, match="expected \\(10, 2\\)"):
        tsne_figure({"ce": np.zeros((9, 2))}, np.zeros(10, int), np.zeros(10, int))
