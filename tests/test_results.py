"""Aggregation checked against committed run records whose values were chosen by hand.

tests/data/golden_runs contains ten records on the pixel cue: ce (3 seeds),
ifm w=0.3 (3 seeds), ifm w=1 (2 seeds), sd w=0.1 (1 complete seed and 1
failed run). Expected numbers below are worked out by hand: for n = 3 the
95% Student-t half-width is t(0.975, 2) * sd / sqrt(3) with t = 4.302653.
"""

import math
from pathlib import Path

import pandas as pd
import pytest

from ifm_core.report import INCONCLUSIVE, NOT_SUPPORTED, PARTLY, SUPPORTED, feature_verdict, shift_verdict
from ifm_core.results import (
    accuracy_by_agreement,
    failures,
    load_runs,
    paired_difference,
    select_weight,
    summarize,
)

GOLDEN = Path(__file__).parent / "data" / "golden_runs"


@pytest.fixture(scope="module")
def runs():
    return load_runs(GOLDEN)


@pytest.fixture(scope="module")
def summary(runs):
    return summarize(runs).set_index("variant")


def test_every_record_read(runs):
    assert len(runs) == 10


def test_variants_named(runs):
    assert set(runs["variant"]) == {"ce", "ifm w=0.3", "ifm w=1", "sd w=0.1"}


def test_ce_shifted_mean(summary):
    assert summary.loc["ce", "shifted_accuracy"] == pytest.approx(0.32)


def test_ce_shifted_interval(summary):
    half = 4.302653 * 0.02 / 3**0.5
    assert summary.loc["ce", "shifted_accuracy_ci_low"] == pytest.approx(0.32 - half, abs=1e-6)
    assert summary.loc["ce", "shifted_accuracy_ci_high"] == pytest.approx(0.32 + half, abs=1e-6)


def test_failed_run_counted(summary):
    assert summary.loc["sd w=0.1", "n"] == 1
    assert summary.loc["sd w=0.1", "n_failed"] == 1


def test_failed_run_listed(runs):
    (error,) = failures(runs)["error"]
    assert error.startswith("NonFiniteLossError")


def test_single_seed_interval_missing(summary):
    assert summary.loc["sd w=0.1", "shifted_accuracy"] == pytest.approx(0.33)
    assert math.isnan(summary.loc["sd w=0.1", "shifted_accuracy_ci_low"])


def test_paired_difference(runs):
    (row,) = paired_difference(runs, "ifm w=0.3", "ce").to_dict("records")
    half = 4.302653 * 0.01 / 3**0.5
    assert row["n_pairs"] == 3
    assert row["difference"] == pytest.approx(0.05)
    assert row["ci_low"] == pytest.approx(0.05 - half, abs=1e-6)
    assert row["ci_high"] == pytest.approx(0.05 + half, abs=1e-6)


def test_paired_difference_drops_unpaired(runs):
    (row,) = paired_difference(runs, "ifm w=1", "ce").to_dict("records")
    assert row["n_pairs"] == 2
    assert row["difference"] == pytest.approx(0.155)


def test_validation_rule_picks_smaller_weight(runs):
    (row,) = select_weight(runs, "ifm", "validation").to_dict("records")
    assert row["weight"] == 0.3


def test_oracle_rule_picks_larger_weight(runs):
    (row,) = select_weight(runs, "ifm", "oracle_validation").to_dict("records")
    assert row["weight"] == 1.0


def test_top_two_weights_ranked(runs):
    chosen = select_weight(runs, "ifm", "validation", top=2)
    assert list(chosen["weight"]) == [0.3, 1.0]
    assert list(chosen["rank"]) == [1, 2]


def test_unknown_rule_rejected(runs):
    with pytest.raises(ValueError, match="unknown selection rule 'test'"):
        select_weight(runs, "ifm", "test")


def test_accuracy_by_agreement_long(runs):
    long = accuracy_by_agreement(runs)
    assert len(long) == 9 * 4
    assert sorted(long["q"].unique()) == [0.0, 0.1, 0.5, 1.0]


def test_empty_folder_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run folders"):
        load_runs(tmp_path)


def test_shift_verdict_supported(runs):
    assert shift_verdict(runs, {"pixel": "ifm w=0.3"}).verdict == SUPPORTED


def test_shift_verdict_single_seed_inconclusive(runs):
    assert shift_verdict(runs, {"pixel": "sd w=0.1"}).verdict == INCONCLUSIVE


def _probes(differences_by_cue):
    rows = []
    for cue_type, differences in differences_by_cue.items():
        for seed, difference in enumerate(differences):
            rows.append({"cue_type": cue_type, "variant": "ce", "seed": seed, "tap": "fc", "target": "digit", "mi_bits": 1.0})
            rows.append(
                {"cue_type": cue_type, "variant": "ifm w=1", "seed": seed, "tap": "fc", "target": "digit", "mi_bits": 1.0 + difference}
            )
    return pd.DataFrame(rows)


def test_feature_verdict_partly():
    probes = _probes({"pixel": [0.2, 0.3, 0.25], "texture": [0.1, -0.1, 0.0]})
    assert feature_verdict(probes, {"pixel": "ifm w=1", "texture": "ifm w=1"}).verdict == PARTLY


def test_feature_verdict_not_supported():
    probes = _probes({"pixel": [-0.2, -0.3, -0.25]})
    assert feature_verdict(probes, {"pixel": "ifm w=1"}).verdict == NOT_SUPPORTED
