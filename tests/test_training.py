"""Short real training runs on slices of MNIST, and the records they write."""

import json

import pytest
import torch

from ifm_core.config import RunConfig
from ifm_core.records import is_complete, load_checkpoint, read_status
from ifm_core.training import NonFiniteLossError, load_data, train

SMALL = dict(train_size=3000, val_size=1000, test_size=1000, epochs=2, batch_size=64, test_agreements=[0.5])


@pytest.fixture(scope="module")
def ce_run(tmp_path_factory):
    config = RunConfig(method="ce", **SMALL)
    return train(config, results_root=tmp_path_factory.mktemp("runs"), progress=False)


def test_short_run_beats_chance(ce_run):
    assert ce_run.metrics["in_distribution_accuracy"] > 0.6


def test_cross_entropy_relies_on_pixel_cue(ce_run):
    # The phenomenon under study: with p = 1 the easy cue carries the prediction.
    assert ce_run.metrics["shifted_accuracy"] < ce_run.metrics["in_distribution_accuracy"] - 0.2


def test_metrics_cover_required_sets(ce_run):
    metrics = ce_run.metrics
    for name in ("in_distribution_accuracy", "shifted_accuracy", "adversarial_accuracy", "clean_accuracy"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert set(metrics["accuracy_by_q"]) == {"0", "0.1", "0.5", "1"}


def test_record_complete(ce_run):
    folder = ce_run.folder
    assert is_complete(folder)
    for name in ("config.json", "history.json", "metrics.json", "checkpoint.pt"):
        assert (folder / name).is_file(), name
    assert not list(folder.glob("*.tmp"))


def test_record_history_per_epoch(ce_run):
    history = json.loads((ce_run.folder / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]


def test_record_config_round_trips(ce_run):
    saved = json.loads((ce_run.folder / "config.json").read_text())
    assert RunConfig(**saved["config"]) == RunConfig(method="ce", **SMALL)


def test_checkpoint_loads_weights_only(ce_run):
    state = load_checkpoint(ce_run.folder)
    assert state["step"] == 2 * (3000 // 64)
    assert all(isinstance(value, torch.Tensor) for value in state["method"].values())


def test_ifm_weight_zero_matches_ce(ce_run, tmp_path):
    config = RunConfig(method="ifm", ifm_weight=0.0, **SMALL)
    result = train(config, results_root=tmp_path, progress=False)
    assert result.metrics["accuracy_by_q"] == ce_run.metrics["accuracy_by_q"]


@pytest.mark.parametrize("method", ["ifm", "sd", "oracle", "cue_only"])
def test_every_method_trains(method, tmp_path):
    config = RunConfig(method=method, **{**SMALL, "epochs": 1})
    result = train(config, results_root=tmp_path, progress=False)
    assert is_complete(result.folder)
    assert result.history[0]["train_total"] > 0


def test_oracle_trains_on_independent_cue():
    data = load_data(RunConfig(method="oracle", **SMALL))
    assert abs(data.train.cue_agreement() - 0.1) < 0.03


def test_cue_only_near_q(tmp_path):
    # Without the digit, accuracy can only follow the cue: about q at test agreement q.
    config = RunConfig(method="cue_only", **SMALL)
    result = train(config, results_root=tmp_path, progress=False)
    assert result.metrics["in_distribution_accuracy"] > 0.95
    assert result.metrics["adversarial_accuracy"] < 0.05


def test_non_finite_loss_marks_failed(tmp_path):
    config = RunConfig(method="ce", **{**SMALL, "learning_rate": 1e30, "epochs": 3})
    with pytest.raises(NonFiniteLossError, match=r"step \d+ \(.*ce="):
        train(config, results_root=tmp_path, progress=False)
    (folder,) = tmp_path.iterdir()
    assert read_status(folder) == "failed"
    assert not (folder / "metrics.json").exists()


def test_unavailable_device_rejected(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="device='cuda'"):
        train(RunConfig(device="cuda", **SMALL), results_root=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())
