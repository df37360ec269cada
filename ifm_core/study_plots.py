"""Figures of a whole study, drawn from the tidy tables of ``ifm_core.results``.

Every panel shows the mean over seeds with its 95% confidence interval as a
band or error bar. Like ``ifm_core.plots``, functions return a Figure and
never touch the pyplot state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .results import mean_ci

CHANCE = 0.1


def _reduce(frame: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    rows = []
    for keys, group in frame.groupby(list(by), sort=True):
        mean, low, high = mean_ci(group[value].dropna())
        rows.append({**dict(zip(by, keys)), "mean": mean, "low": low, "high": high, "n": len(group)})
    return pd.DataFrame(rows)


def _band(ax, x, reduced: pd.DataFrame, label: str, **style) -> None:
    line = ax.plot(x, reduced["mean"], marker="o", markersize=3, label=label, **style)[0]
    if reduced["low"].notna().any():
        ax.fill_between(x, reduced["low"], reduced["high"], color=line.get_color(), alpha=0.15, linewidth=0)


def accuracy_versus_shift(by_q: pd.DataFrame, variants: Sequence[str], train_agreement: float = 1.0) -> Figure:
    """Plot test accuracy against test cue agreement q, one panel per cue type, one line per variant."""
    cue_types = sorted(by_q["cue_type"].unique())
    figure = Figure(figsize=(5.2 * len(cue_types), 4.0), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(cue_types), sharey=True))
    for ax, cue_type in zip(axes, cue_types):
        for variant in variants:
            selected = by_q[(by_q["cue_type"] == cue_type) & (by_q["variant"] == variant)]
            if selected.empty:
                continue
            reduced = _reduce(selected, ["q"], "accuracy")
            _band(ax, reduced["q"], reduced, variant)
        ax.axvline(train_agreement, color="grey", linestyle=":", linewidth=1)
        ax.axhline(CHANCE, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(f"{cue_type} cue")
        ax.set_xlabel("test cue agreement q (p = 1 in training; 0.1 = independent)")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("test accuracy (mean, 95% CI over seeds)")
    axes[-1].legend(fontsize=7, loc="lower right")
    return figure


def weight_sensitivity(runs: pd.DataFrame, method: str = "ifm", baseline: str = "ce") -> Figure:
    """Plot shifted-test and in-distribution accuracy against the loss weight, with the baseline as a band."""
    metrics = {"shifted_accuracy": "shifted test (q = 0.1)", "in_distribution_accuracy": "in distribution (q = p)"}
    cue_types = sorted(runs["cue_type"].unique())
    figure = Figure(figsize=(5.2 * len(cue_types), 4.0), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(cue_types), sharey=True))
    for ax, cue_type in zip(axes, cue_types):
        cue_runs = runs[runs["cue_type"] == cue_type]
        weighted = cue_runs[(cue_runs["method"] == method) & cue_runs["variant"].str.fullmatch(rf"{method} w=\S+")]
        for metric, label in metrics.items():
            reduced = _reduce(weighted, ["weight"], metric)
            _band(ax, reduced["weight"], reduced, f"{method}: {label}")
            mean, low, high = mean_ci(cue_runs.loc[cue_runs["variant"] == baseline, metric].dropna())
            ax.axhline(mean, linestyle="--", linewidth=1, color=ax.lines[-1].get_color(), label=f"{baseline}: {label}")
            if not np.isnan(low):
                ax.axhspan(low, high, color=ax.lines[-1].get_color(), alpha=0.08)
        ax.set_xscale("log")
        weights = sorted(weighted["weight"].unique())
        ax.set_xticks(weights, [f"{weight:g}" for weight in weights])
        ax.minorticks_off()
        ax.set_title(f"{cue_type} cue")
        ax.set_xlabel(f"{method} loss weight (log scale)")
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("test accuracy (mean, 95% CI over seeds)")
    axes[-1].legend(fontsize=7, loc="lower right")
    return figure


def training_curves_by_variant(histories: pd.DataFrame, variants: Sequence[str]) -> Figure:
    """Plot validation accuracy (q = p and q = 0.1) against epoch, one panel per cue type and validation set."""
    cue_types = sorted(histories["cue_type"].unique())
    columns = {"val_accuracy": "validation, q = p", "val_shifted_accuracy": "validation, q = 0.1"}
    figure = Figure(figsize=(4.6 * len(columns), 3.6 * len(cue_types)), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(cue_types), len(columns), sharex=True, sharey=True))
    for row, cue_type in zip(axes, cue_types):
        for ax, (column, label) in zip(row, columns.items()):
            for variant in variants:
                selected = histories[(histories["cue_type"] == cue_type) & (histories["variant"] == variant)]
                if not selected.empty:
                    reduced = _reduce(selected, ["epoch"], column)
                    _band(ax, reduced["epoch"], reduced, variant)
            ax.set_title(f"{cue_type} cue, {label}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_ylim(0, 1.02)
        row[0].set_ylabel("accuracy")
    axes[0, -1].legend(fontsize=7)
    return figure


def cue_samples(splits_by_cue: dict[str, dict[str, object]], per_split: int = 8) -> Figure:
    """Show, for each cue type, training images (q = p) above shifted test images (q = 0.1)."""
    rows = [(cue, name, split) for cue, splits in splits_by_cue.items() for name, split in splits.items()]
    figure = Figure(figsize=(1.1 * per_split, 1.25 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), per_split, squeeze=False)
    for ax_row, (cue, name, split) in zip(axes, rows):
        for column, ax in enumerate(ax_row):
            ax.imshow(split.images[column, 0].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"y={int(split.labels[column])} c={int(split.cues[column])}", fontsize=6)
            ax.set_xticks([])
            ax.set_yticks([])
        ax_row[0].set_ylabel(f"{cue}\n{name}", fontsize=7)
    return figure
