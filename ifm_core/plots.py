"""Figures for single runs. Every function returns a matplotlib Figure.

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot, so
the package never touches the backend and a notebook shows each figure once,
as the value of its cell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .atomic import write_atomic
from .data import NO_CUE, ShiftedSplit

FIGURE_FORMATS = ("png", "pdf")


def save_figure(figure: Figure, folder: Path, name: str, dpi: int = 150) -> list[Path]:
    """Write ``figure`` as PNG (for the report) and PDF (a vector copy); return the paths."""
    paths = []
    for extension in FIGURE_FORMATS:
        path = Path(folder) / f"{name}.{extension}"
        # Without a creation date the PDF bytes depend only on the figure, so reruns leave git clean.
        metadata = {"CreationDate": None} if extension == "pdf" else None
        write_atomic(
            path,
            lambda tmp, ext=extension, meta=metadata: figure.savefig(
                tmp, format=ext, dpi=dpi, bbox_inches="tight", metadata=meta
            ),
        )
        paths.append(path)
    return paths


def sample_grid(splits: Mapping[str, ShiftedSplit], per_split: int = 10) -> Figure:
    """Show the first ``per_split`` images of each split, one row per split, with digit and cue class."""
    figure = Figure(figsize=(1.2 * per_split, 1.45 * len(splits)), layout="constrained")
    axes = figure.subplots(len(splits), per_split, squeeze=False)
    for row, (title, split) in zip(axes, splits.items()):
        for column, ax in enumerate(row):
            image = split.images[column, 0].cpu().numpy()  # (S, S)
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            cue = int(split.cues[column])
            cue_text = "none" if cue == NO_CUE else str(cue)
            ax.set_title(f"y={int(split.labels[column])} cue={cue_text}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(title, fontsize=8)
    return figure


def training_curves(history: Sequence[Mapping[str, float]], title: str = "") -> Figure:
    """Plot training loss terms and validation accuracy against epoch."""
    epochs = [row["epoch"] for row in history]
    loss_names = [name for name in history[0] if name.startswith("train_")]

    figure = Figure(figsize=(10, 3.6), layout="constrained")
    loss_ax, accuracy_ax = figure.subplots(1, 2)
    for name in loss_names:
        loss_ax.plot(epochs, [row[name] for row in history], marker="o", label=name.removeprefix("train_"))
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("mean training loss term (nats)")
    loss_ax.legend(fontsize=7)

    accuracy_ax.plot(epochs, [row["val_accuracy"] for row in history], marker="o", label="validation, q = p")
    accuracy_ax.plot(
        epochs, [row["val_shifted_accuracy"] for row in history], marker="o", label="validation, q = 0.1"
    )
    accuracy_ax.set_xlabel("epoch")
    accuracy_ax.set_ylabel("accuracy")
    accuracy_ax.set_ylim(0, 1.02)
    accuracy_ax.legend(fontsize=8)
    figure.suptitle(title)
    return figure


def accuracy_versus_agreement(curves: Mapping[str, Mapping[float, float]], train_agreement: float) -> Figure:
    """Plot test accuracy against test cue agreement q, one line per entry of ``curves``."""
    figure = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = figure.subplots()
    for label, curve in curves.items():
        qs = np.array(sorted(curve))
        ax.plot(qs, [curve[q] for q in qs], marker="o", label=label)
    ax.axvline(train_agreement, color="grey", linestyle=":", label=f"training p = {train_agreement:g}")
    ax.axhline(0.1, color="grey", linestyle="--", linewidth=0.8, label="chance")
    ax.set_xlabel("test cue agreement q (1 = as in training, 0.1 = cue independent of label)")
    ax.set_ylabel("test accuracy")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return figure
