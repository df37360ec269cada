"""Figures of the mechanism analysis. Every function returns a matplotlib Figure.

The tables come from :mod:`ifm_core.analysis`. Tables of several runs are
concatenated, and their ``method`` column groups the bars: each bar is the
mean over runs and each dot is one run, so the spread across seeds stays
visible without claiming an interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .data import NO_CUE
from .mi import EVAL_BATCH_SIZE
from .models import NUM_CLASSES

DIM_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
CLASS_COLOURS = colormaps["tab10"]
NO_CUE_COLOUR = "0.6"
BAR_GROUP_WIDTH = 0.8


def estimator_validation_figure(table: pd.DataFrame) -> Figure:
    """Plot each estimator's estimate against the true MI of correlated Gaussians, in nats.

    ``table`` has the columns of :func:`ifm_core.analysis.estimator_validation`.
    One line per estimator and dimension joins its correlations. A perfect
    estimator lies on the dashed identity line.
    """
    _require_columns(table, "table", ("estimator", "dim", "rho", "true_mi_nats", "estimate_nats"))
    figure = Figure(figsize=(6, 4.6), layout="constrained")
    ax = figure.subplots()
    estimators = list(dict.fromkeys(table["estimator"]))
    dims = sorted(table["dim"].unique())

    for colour_index, estimator in enumerate(estimators):
        for dim_index, dim in enumerate(dims):
            cell = table[(table["estimator"] == estimator) & (table["dim"] == dim)].sort_values("true_mi_nats")
            ax.plot(
                cell["true_mi_nats"],
                cell["estimate_nats"],
                marker=DIM_MARKERS[dim_index % len(DIM_MARKERS)],
                color=CLASS_COLOURS(colour_index),
                label=f"{estimator}, d = {dim}",
            )

    top = float(max(table["true_mi_nats"].max(), table["estimate_nats"].max()))
    ax.plot([0, top], [0, top], color="black", linestyle="--", linewidth=1, label="estimate = true MI")
    # The cap matters only where a true MI exceeds it, and drawing it otherwise squashes the data.
    if "infonce" in estimators and table["true_mi_nats"].max() >= math.log(EVAL_BATCH_SIZE):
        ax.axhline(math.log(EVAL_BATCH_SIZE), color="grey", linestyle=":", label=f"InfoNCE cap log {EVAL_BATCH_SIZE}")
    ax.set_xlabel("true MI of the Gaussian pairs (nats)")
    ax.set_ylabel("estimated MI on held-out pairs (nats)")
    ax.legend(fontsize=7, ncol=2)
    return figure


def mi_per_layer_figure(probes: pd.DataFrame, flow: pd.DataFrame) -> Figure:
    """Plot digit and cue information per tap and the information flow between adjacent taps, in bits.

    ``probes`` and ``flow`` are the concatenated tables of
    :func:`ifm_core.analysis.mechanism_summary` over runs, with a ``method``
    column. The digit and cue panels show Barber-Agakov lower bounds, which
    cannot exceed log2(10) bits.
    """
    _require_columns(probes, "probes", ("method", "tap", "target", "mi_bits"))
    _require_columns(flow, "flow", ("method", "pair", "mi_bits"))
    methods = list(dict.fromkeys([*probes["method"], *flow["method"]]))

    figure = Figure(figsize=(15, 4), layout="constrained")
    digit_ax, cue_ax, flow_ax = figure.subplots(1, 3)
    for ax, target in ((digit_ax, "digit"), (cue_ax, "cue")):
        rows = probes[probes["target"] == target]
        _grouped_bars(ax, rows, "tap", "mi_bits", methods)
        ax.axhline(math.log2(NUM_CLASSES), color="grey", linestyle="--", linewidth=0.8, label="log2(10), the maximum")
        ax.set_ylabel(f"I(tap; {target}) lower bound (bits)")
        ax.set_title(f"{target} information per tap")

    _grouped_bars(flow_ax, flow, "pair", "mi_bits", methods)
    flow_ax.set_ylabel("I(lower tap; upper tap) estimate (bits)")
    flow_ax.set_title("information flow between adjacent taps")
    _legend_below(figure, digit_ax)
    return figure


def probe_accuracy_figure(probes: pd.DataFrame) -> Figure:
    """Plot held-out linear-probe accuracy per tap for the digit and for the cue class.

    ``probes`` is the concatenated ``probes`` table of
    :func:`ifm_core.analysis.mechanism_summary` over runs, with a ``method`` column.
    """
    _require_columns(probes, "probes", ("method", "tap", "target", "accuracy"))
    methods = list(dict.fromkeys(probes["method"]))

    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    for ax, target in zip(axes, ("digit", "cue")):
        _grouped_bars(ax, probes[probes["target"] == target], "tap", "accuracy", methods)
        ax.axhline(1 / NUM_CLASSES, color="grey", linestyle="--", linewidth=0.8, label="chance")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{target} decoded from each tap")
    axes[0].set_ylabel("held-out probe accuracy (fraction correct)")
    _legend_below(figure, axes[0])
    return figure


def tsne_figure(
    embeddings: Mapping[str, np.ndarray | torch.Tensor],
    digits: np.ndarray | torch.Tensor,
    cues: np.ndarray | torch.Tensor,
) -> Figure:
    """Show t-SNE embeddings, one row per method, coloured by digit (left) and by cue class (right).

    ``embeddings`` maps a method name to its (N, 2) embedding of the same N
    images, whose digits and cue classes are ``digits`` and ``cues`` (N,).
    Images without a cue (NO_CUE) are grey.
    """
    if not embeddings:
        raise ValueError("embeddings is empty; pass a dict of method name to (N, 2) t-SNE embedding")
    digits, cues = _as_numpy(digits), _as_numpy(cues)
    all_points = {name: _as_numpy(embedding) for name, embedding in embeddings.items()}
    for name, points in all_points.items():
        if points.shape != (len(digits), 2) or len(cues) != len(digits):
            raise ValueError(
                f"embedding {name!r} has shape {points.shape}, digits {len(digits)} rows and cues {len(cues)} "
                f"rows; expected ({len(digits)}, 2) and one digit and one cue per point"
            )

    figure = Figure(figsize=(10, 4.6 * len(all_points)), layout="constrained")
    axes = figure.subplots(len(all_points), 2, squeeze=False)
    for (name, points), (digit_ax, cue_ax) in zip(all_points.items(), axes):
        _scatter_classes(digit_ax, points, digits)
        _scatter_classes(cue_ax, points, cues)
        digit_ax.set_title(f"{name}: coloured by digit")
        cue_ax.set_title(f"{name}: coloured by cue class")
        for ax in (digit_ax, cue_ax):
            ax.set_xlabel("t-SNE 1 (arbitrary units)")
            ax.set_ylabel("t-SNE 2 (arbitrary units)")
    figure.legend(handles=_class_legend(bool((cues == NO_CUE).any())), loc="outside right center", title="class")
    return figure


def _grouped_bars(ax: Axes, table: pd.DataFrame, category: str, value: str, methods: list[str]) -> None:
    """Draw one bar per category and method at the mean over runs, with each run as a dot."""
    categories = list(dict.fromkeys(table[category]))
    width = BAR_GROUP_WIDTH / max(len(methods), 1)
    positions = np.arange(len(categories))
    for index, method in enumerate(methods):
        rows = table[table["method"] == method]
        offset = (index - (len(methods) - 1) / 2) * width
        means = [rows.loc[rows[category] == name, value].mean() for name in categories]
        ax.bar(positions + offset, means, width=width, color=CLASS_COLOURS(index), alpha=0.75, label=method)
        for position, name in zip(positions, categories):
            runs = rows.loc[rows[category] == name, value]
            ax.scatter(np.full(len(runs), position + offset), runs, color="black", s=8, zorder=3)
    ax.set_xticks(positions, categories)
    ax.set_xlabel(category)


def _legend_below(figure: Figure, ax: Axes) -> None:
    """Put the legend of ``ax`` under the figure, where it covers no bar."""
    handles, labels = ax.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8)


def _scatter_classes(ax: Axes, points: np.ndarray, classes: np.ndarray) -> None:
    for class_index in np.unique(classes):
        mask = classes == class_index
        colour = NO_CUE_COLOUR if class_index == NO_CUE else CLASS_COLOURS(int(class_index))
        ax.scatter(points[mask, 0], points[mask, 1], s=3, color=colour, alpha=0.7, linewidths=0)


def _class_legend(include_no_cue: bool) -> list[Line2D]:
    handles = [
        Line2D([], [], marker="o", linestyle="", color=CLASS_COLOURS(index), label=str(index))
        for index in range(NUM_CLASSES)
    ]
    if include_no_cue:
        handles.append(Line2D([], [], marker="o", linestyle="", color=NO_CUE_COLOUR, label="no cue"))
    return handles


def _as_numpy(values: np.ndarray | torch.Tensor) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def _require_columns(table: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(
            f"{name} lacks the columns {missing}; pass the table from ifm_core.analysis "
            "(concatenate mechanism_summary outputs for a method column)"
        )
