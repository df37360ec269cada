"""The study's tables: weight selection, paired comparisons, verdict inputs and stated limits.

The analysis notebook calls these on the tidy run table; each returns a
DataFrame that the notebook saves under ``<study>/tables`` for the report.
"""

from __future__ import annotations

import pandas as pd

from .analysis import load_trained_method, mechanism_summary, tsne_embedding
from .data import SHIFTED_AGREEMENT, test_key
from .evaluation import extract_taps
from .progress import progress_bar
from .report import seed_count
from .results import SELECTION_RULES, SUMMARY_METRICS, complete, paired_difference, select_weight
from .training import load_data


def selection_table(runs: pd.DataFrame, ifm_top: int = 2) -> pd.DataFrame:
    """Return the ``ifm_top`` best IFM weights and the best SD weight per cue type, under every rule."""
    frames = []
    for rule in SELECTION_RULES:
        frames.append(select_weight(runs, "ifm", rule, top=ifm_top).assign(method="ifm"))
        frames.append(select_weight(runs, "sd", rule, top=1).assign(method="sd"))
    return pd.concat(frames, ignore_index=True)[["rule", "cue_type", "method", "rank", "variant", "weight", "validation_score"]]


def chosen_variants(selection: pd.DataFrame, rule: str = "validation", method: str = "ifm") -> dict[str, str]:
    """Return the top-ranked variant of ``method`` per cue type under ``rule``."""
    rows = selection[(selection["rule"] == rule) & (selection["method"] == method) & (selection["rank"] == 1)]
    return dict(zip(rows["cue_type"], rows["variant"]))


def paired_table(runs: pd.DataFrame, selection: pd.DataFrame, metrics=SUMMARY_METRICS) -> pd.DataFrame:
    """Compare every selected variant with CE, per rule, cue type and metric, paired by seed."""
    frames = []
    for row in selection.itertuples():
        cue_runs = runs[runs["cue_type"] == row.cue_type]
        for metric in metrics:
            difference = paired_difference(cue_runs, row.variant, "ce", metric)
            frames.append(difference.assign(rule=row.rule, rank=row.rank))
    return pd.concat(frames, ignore_index=True)


def stated_limits(runs: pd.DataFrame, mechanism_seeds: int, selection: pd.DataFrame | None = None) -> pd.DataFrame:
    """List what the evidence does not cover, with the study's own sizes and choices filled in."""
    done = complete(runs)
    seeds = done.groupby(["cue_type", "variant"])["seed"].nunique()
    counts = seed_count(seeds.min()) if seeds.min() == seeds.max() else f"{seeds.min()} to {seeds.max()} seeds"
    first = done.iloc[0]
    train_size = "all" if pd.isna(first["train_size"]) else f"{int(first['train_size']):,}"
    limits = [
        f"Each configuration has {counts}. Intervals from so few seeds are wide, and a difference "
        "whose interval includes zero is not evidence of no effect.",
        f"Every run trains a small CNN (three conv blocks) for {int(first['epochs'])} epochs on {train_size} "
        "training digits. Longer training, larger networks or other optimizers may change the balance between "
        "cue and shape.",
        "The original work does not publish its exact taps, critic or loss weight. This study uses the "
        "Jensen-Shannon bound with global dot-product critics between adjacent taps; other estimators, local "
        "critics and the input tap are run only in the full profile.",
        f"Mechanism measurements (probes, MI per layer) cover {mechanism_seeds} seeds per variant, and the t-SNE "
        "shows one seed; t-SNE layouts are qualitative.",
        "Barber-Agakov values are lower bounds set by a linear probe: a non-linear read-out could find more "
        "information. Critic-based flow estimates are lower bounds that also depend on critic capacity and "
        "training steps.",
        "Both cues are synthetic and tied to MNIST; the study does not test natural images.",
    ]
    if selection is not None:
        largest = done.loc[done["method"] == "ifm", "weight"].max()
        edge = selection[(selection["method"] == "ifm") & (selection["rank"] == 1) & (selection["weight"] == largest)]
        for row in edge.itertuples():
            limits.append(
                f"Under the {row.rule} rule the best IFM weight on the {row.cue_type} cue is {largest:g}, the "
                "largest weight tried, so a larger weight might do better still."
            )
    return pd.DataFrame({"limit": limits})


def mechanism_tables(
    runs: pd.DataFrame,
    variants_by_cue: dict[str, list[str]],
    *,
    seeds: int,
    n_images: int,
    steps: int,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe and measure the information flow of the first ``seeds`` complete runs of each variant.

    Each run is probed on up to ``n_images`` of its own held-out images.

    Returns the concatenated probe and flow tables, each with the columns
    ``cue_type`` and ``variant`` added so variants can be compared per seed.
    """
    done = complete(runs)
    chosen = [
        run
        for cue_type, variants in variants_by_cue.items()
        for variant in variants
        for run in done[(done["cue_type"] == cue_type) & (done["variant"] == variant)]
        .sort_values("seed")
        .head(seeds)
        .itertuples()
    ]
    probes, flows = [], []
    bar = progress_bar(len(chosen), "mechanism", enabled=progress, unit="run")
    with bar:
        for run in chosen:
            # A profile's held-out split may be smaller than n_images; use all of it then.
            images = min(n_images, int(run.val_size))
            tables = mechanism_summary(run.folder, n_images=images, steps=steps, seed=int(run.seed))
            probes.append(tables["probes"].assign(cue_type=run.cue_type, variant=run.variant))
            flows.append(tables["flow"].assign(cue_type=run.cue_type, variant=run.variant))
            bar.update(1)
    return pd.concat(probes, ignore_index=True), pd.concat(flows, ignore_index=True)


def tsne_of_shifted_test(folder: str, *, n_points: int, seed: int = 0) -> pd.DataFrame:
    """Embed the penultimate (fc) features of a run's first ``n_points`` shifted test images with t-SNE.

    Returns columns x, y, digit and cue, one row per image. The test split
    only draws the picture here; it chooses nothing.
    """
    config, method = load_trained_method(folder)
    shifted = load_data(config).tests[test_key(SHIFTED_AGREEMENT)]
    images = shifted.images[:n_points]  # (n, 1, S, S)
    features = extract_taps(method, images)["fc"]  # (n, hidden)
    embedding = tsne_embedding(features, seed=seed)  # (n, 2)
    return pd.DataFrame(
        {
            "x": embedding[:, 0],
            "y": embedding[:, 1],
            "digit": shifted.labels[:n_points].numpy(),
            "cue": shifted.cues[:n_points].numpy(),
        }
    )
