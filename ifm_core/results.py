"""Aggregation of run records into one tidy table, and the statistics every table reads.

``load_runs`` is the single reader of run folders: each row is one run with
its configuration, status and metrics. Runs that failed or never finished
stay in the table with their status, so summaries can count them instead of
dropping them silently.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .atomic import write_atomic, write_json_atomic
from .records import STATUS_COMPLETE, environment, read_status, runs_dir

SUMMARY_METRICS = (
    "in_distribution_accuracy",
    "shifted_accuracy",
    "adversarial_accuracy",
    "clean_accuracy",
)
GROUP = ("cue_type", "variant")
PAIR_KEYS = ("cue_type", "seed", "data_seed")

# The validation metric each model-selection rule reads. The test split is
# never used to choose anything.
SELECTION_RULES = {
    "validation": "val_accuracy",  # validation drawn like training (q = p)
    "oracle_validation": "val_shifted_accuracy",  # drawn like the shifted test (q = 0.1): an oracle
}


def variant_name(config: dict) -> str:
    """Label a run by its method, weight and any non-default IFM option, e.g. ``ifm w=0.3 dv``."""
    method = config["method"]
    if method == "ifm":
        options = [f"w={config['ifm_weight']:g}"]
        options += [config["estimator"]] if config["estimator"] != "jsd" else []
        options += [f"{config['critic']} critic"] if config["critic"] != "global" else []
        options += ["with input"] if config.get("include_input") else []
        return " ".join(["ifm", *options])
    if method == "sd":
        return f"sd w={config['sd_weight']:g}"
    return method


def load_runs(root: Path | None = None) -> pd.DataFrame:
    """Read every run folder under ``root`` (default ``results/runs``) into one row each."""
    rows = [_read_run(folder) for folder in sorted(runs_dir(root).glob("*")) if folder.is_dir()]
    if not rows:
        raise FileNotFoundError(f"no run folders under {runs_dir(root)}; run a sweep first")
    return pd.DataFrame(rows)


def _read_run(folder: Path) -> dict:
    row: dict = {"run_name": folder.name, "folder": str(folder)}
    try:
        config = json.loads((folder / "config.json").read_text())["config"]
    except (OSError, ValueError, KeyError) as error:
        return {**row, "status": "unreadable", "error": f"config.json: {error}"}
    row.update({key: value for key, value in config.items() if key not in ("test_agreements", "tags")})
    row["variant"] = variant_name(config)
    row["weight"] = {"ifm": config["ifm_weight"], "sd": config["sd_weight"]}.get(config["method"], math.nan)

    status_text = (folder / "status.json").read_text() if (folder / "status.json").exists() else "{}"
    row["status"] = read_status(folder) or "unreadable"
    row["error"] = json.loads(status_text).get("error") if row["status"] != "unreadable" else None
    if row["status"] == STATUS_COMPLETE:
        metrics = json.loads((folder / "metrics.json").read_text())
        by_q = metrics.pop("accuracy_by_q")
        row.update(metrics)
        row.update({f"accuracy_q={q}": value for q, value in by_q.items()})
    return row


def complete(runs: pd.DataFrame) -> pd.DataFrame:
    """Return the complete runs only."""
    return runs[runs["status"] == STATUS_COMPLETE]


def failures(runs: pd.DataFrame) -> pd.DataFrame:
    """Return the runs that failed or never finished, with their errors."""
    return runs.loc[runs["status"] != STATUS_COMPLETE, ["run_name", "status", "error"]]


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Return the mean and the two ends of its Student-t confidence interval (nan ends for n < 2)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if values.size else math.nan
    if values.size < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf((1 + confidence) / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return mean, mean - half, mean + half


def summarize(runs: pd.DataFrame, metrics: Sequence[str] = SUMMARY_METRICS, by: Sequence[str] = GROUP) -> pd.DataFrame:
    """Return mean and 95% CI of each metric per group, with counts of complete and failed runs."""
    rows = []
    # dropna=False keeps runs whose config.json is unreadable (NaN group keys)
    # as a group of their own, so their failures are counted, not dropped.
    for keys, group in runs.groupby(list(by), sort=True, dropna=False):
        done = complete(group)
        row = dict(zip(by, keys if isinstance(keys, tuple) else (keys,)))
        row["n"] = len(done)
        row["n_failed"] = len(group) - len(done)
        for metric in metrics:
            mean, low, high = mean_ci(done[metric].dropna()) if metric in done else (math.nan,) * 3
            row.update({metric: mean, f"{metric}_ci_low": low, f"{metric}_ci_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


def paired_difference(
    runs: pd.DataFrame, treatment: str, baseline: str = "ce", metric: str = "shifted_accuracy"
) -> pd.DataFrame:
    """Return, per cue type, treatment minus baseline paired on seed and data seed.

    Columns: mean difference, its 95% CI, the number of pairs and the
    two-sided paired t-test p-value.
    """
    done = complete(runs)
    left = done[done["variant"] == treatment].set_index(list(PAIR_KEYS))[metric]
    right = done[done["variant"] == baseline].set_index(list(PAIR_KEYS))[metric]
    differences = (left - right).dropna()
    rows = []
    for cue_type, values in differences.groupby(level="cue_type"):
        mean, low, high = mean_ci(values)
        p_value = stats.ttest_1samp(values, 0.0).pvalue if len(values) > 1 else math.nan
        rows.append(
            {
                "cue_type": cue_type,
                "treatment": treatment,
                "baseline": baseline,
                "metric": metric,
                "n_pairs": len(values),
                "difference": mean,
                "ci_low": low,
                "ci_high": high,
                "p_value": float(p_value),
            }
        )
    return pd.DataFrame(rows)


def select_weight(runs: pd.DataFrame, method: str, rule: str, top: int = 1) -> pd.DataFrame:
    """Choose ``method``'s best ``top`` weights per cue type by mean validation accuracy over seeds.

    ``rule`` names the validation set (see ``SELECTION_RULES``). Ties go to
    the smaller weight, the weaker intervention.
    """
    if rule not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {rule!r}; choose one of {list(SELECTION_RULES)}")
    metric = SELECTION_RULES[rule]
    done = complete(runs)
    candidates = done[(done["method"] == method) & done["variant"].str.fullmatch(rf"{method} w=[0-9.e+-]+")]
    means = candidates.groupby(["cue_type", "weight", "variant"], as_index=False)[metric].mean()
    ranked = means.sort_values(["cue_type", metric, "weight"], ascending=[True, False, True])
    chosen = ranked.groupby("cue_type").head(top).copy()
    chosen["rule"] = rule
    chosen["rank"] = chosen.groupby("cue_type").cumcount() + 1
    return chosen.rename(columns={metric: "validation_score"}).reset_index(drop=True)


def accuracy_by_agreement(runs: pd.DataFrame) -> pd.DataFrame:
    """Return a long table: one row per run and test agreement q, with that accuracy."""
    done = complete(runs)
    columns = [column for column in done.columns if column.startswith("accuracy_q=")]
    long = done.melt(id_vars=["run_name", *GROUP, "seed"], value_vars=columns, var_name="q", value_name="accuracy")
    long["q"] = long["q"].str.removeprefix("accuracy_q=").astype(float)
    return long.dropna(subset=["accuracy"])


def write_study_table(study_folder: Path, sweep_info: dict) -> pd.DataFrame:
    """Write ``runs.csv`` (one row per run) and ``sweep.json`` (how the sweep ran) into ``study_folder``.

    ``sweep.json`` also stores the summed wall time of all complete runs,
    which stays meaningful when a sweep was resumed across sessions.
    """
    study_folder = Path(study_folder)
    runs = load_runs(study_folder / "runs")
    table = runs.drop(columns=["folder"])
    write_atomic(study_folder / "runs.csv", lambda tmp: table.to_csv(tmp, index=False))
    info = {
        **sweep_info,
        "runs": len(runs),
        "complete": int((runs["status"] == STATUS_COMPLETE).sum()),
        "summed_run_seconds": float(complete(runs)["wall_seconds"].sum()),
        "environment": environment(),
        "cpu_count": os.cpu_count(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json_atomic(study_folder / "sweep.json", info)
    return runs


def load_histories(runs: pd.DataFrame) -> pd.DataFrame:
    """Return a long table of per-epoch history rows for the complete runs in ``runs``."""
    frames = []
    for run in complete(runs).itertuples():
        history = pd.DataFrame(json.loads((Path(run.folder) / "history.json").read_text()))
        frames.append(history.assign(run_name=run.run_name, cue_type=run.cue_type, variant=run.variant, seed=run.seed))
    return pd.concat(frames, ignore_index=True)


def read_runs_table(study_folder: Path) -> pd.DataFrame:
    """Read the ``runs.csv`` that :func:`write_study_table` wrote; no run folders are needed."""
    path = Path(study_folder) / "runs.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run notebooks/03_sweep.ipynb for this profile first")
    return pd.read_csv(path)
