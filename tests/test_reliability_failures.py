"""Non-finite losses stop a run with the step and the term, and tables report failed runs."""

from __future__ import annotations

import math
import shutil

import pytest

from ifm_core import losses
from ifm_core.config import RunConfig
from ifm_core.records import read_status
from ifm_core.results import failures, load_runs, summarize
from ifm_core.sweep import run_sweep
from ifm_core.training import NonFiniteLossError, train

TINY = dict(train_size=256, val_size=128, test_size=128, epochs=1, batch_size=64, test_agreements=[0.5])
GOOD = RunConfig(method="ce", **TINY)
# 1e39 times an IFM term of about 1.4 overflows float32 on the first step.
OVERFLOW = RunConfig(method="ifm", ifm_weight=1e39, **TINY)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_overflow_raises_at_step_one(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"at step 1 \("):
        train(OVERFLOW, results_root=tmp_path, progress=False)


def test_overflow_names_ifm_term(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"ifm_weight \* ifm = 1e\+39 \* [0-9.]+ = inf"):
        train(OVERFLOW, results_root=tmp_path, progress=False)


def test_nan_ifm_term_named(tmp_path, monkeypatch):
    forward = losses.InformationFlowLoss.forward
    calls = []

    def nan_on_third_step(self, taps):
        loss, bounds = forward(self, taps)
        calls.append(None)
        return (loss * math.nan if len(calls) == 3 else loss), bounds

    monkeypatch.setattr(losses.InformationFlowLoss, "forward", nan_on_third_step)
    config = RunConfig(method="ifm", **TINY)
    with pytest.raises(NonFiniteLossError, match=r"at step 3 \(ifm=nan\)"):
        train(config, results_root=tmp_path, progress=False)
    (folder,) = tmp_path.iterdir()
    assert read_status(folder) == "failed"


def test_non_finite_run_marked_failed(tmp_path):
    with pytest.raises(NonFiniteLossError):
        train(OVERFLOW, results_root=tmp_path, progress=False)
    (folder,) = tmp_path.iterdir()
    assert read_status(folder) == "failed"
    assert not (folder / "metrics.json").exists()
    assert not (folder / "checkpoint.pt").exists()


@pytest.fixture(scope="module")
def mixed_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    outcome = run_sweep([GOOD, OVERFLOW], root, workers=1, progress=False)
    return root, outcome


def test_sweep_continues_after_failure(mixed_root):
    _, outcome = mixed_root
    assert outcome.trained == [GOOD.run_name()]


def test_sweep_lists_failure(mixed_root):
    _, outcome = mixed_root
    assert "NonFiniteLossError" in outcome.failed[OVERFLOW.run_name()]


def test_table_keeps_failed_run(mixed_root):
    root, _ = mixed_root
    runs = load_runs(root).set_index("run_name")
    assert runs.loc[OVERFLOW.run_name(), "status"] == "failed"


def test_failures_report_error(mixed_root):
    root, _ = mixed_root
    table = failures(load_runs(root)).set_index("run_name")
    assert "at step 1" in table.loc[OVERFLOW.run_name(), "error"]


def test_summary_counts_failed(mixed_root):
    root, _ = mixed_root
    summary = summarize(load_runs(root)).set_index("variant")
    assert summary.loc["ifm w=1e+39", "n"] == 0
    assert summary.loc["ifm w=1e+39", "n_failed"] == 1
    assert summary.loc["ce", "n"] == 1


def test_summary_counts_unreadable(mixed_root, tmp_path):
    # SIGKILL between creating a run folder and writing config.json leaves an
    # empty folder, and the summary must still count it.
    root, _ = mixed_root
    copy = tmp_path / "runs"
    shutil.copytree(root, copy)
    (copy / "ce-pixel-p1-s9-d9-0000000000").mkdir()
    summary = summarize(load_runs(copy))
    assert summary["n_failed"].sum() == 2


def test_failed_run_has_no_metrics(mixed_root):
    root, _ = mixed_root
    runs = load_runs(root).set_index("run_name")
    assert math.isnan(runs.loc[OVERFLOW.run_name(), "in_distribution_accuracy"])

