"""Verdicts on the claims under test, derived from the study's tables, and HTML rendering.

Each verdict is computed from confidence intervals, never written by hand.
"supported" needs the effect in every cue type with its 95% interval
excluding zero. "partly" needs it in some cue types, or comes with a caveat.
"not supported" means no cue type shows it.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
from nbconvert import HTMLExporter
from nbconvert.preprocessors import CoalesceStreamsPreprocessor

from .atomic import write_atomic
from .results import complete, mean_ci, paired_difference

SUPPORTED = "supported"
PARTLY = "partly"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive: fewer than 2 seeds"

REPORT_TITLE = "IFM reproduction study: report"

# A drop of at least this much accuracy between the training distribution
# and the shifted test counts as relying on the cue.
SHORTCUT_DROP = 0.2
# Held-out probe accuracy for the digit above which CE's penultimate
# features still carry the shape (chance is 0.1).
PROBE_UNDERUSED_ACCURACY = 0.5


@dataclass(frozen=True)
class Verdict:
    claim: str
    verdict: str
    evidence: str


def _grade(effects: list[bool | None]) -> str:
    """Grade per-cue results, where None marks a cue type without a confidence interval."""
    known = [value for value in effects if value is not None]
    if not known:
        return INCONCLUSIVE
    if len(known) == len(effects) and all(known):
        return SUPPORTED
    return PARTLY if any(known) else NOT_SUPPORTED


def _above(low: float, threshold: float = 0.0) -> bool | None:
    """Return whether an interval's lower end exceeds ``threshold``; None when there is no interval."""
    return None if math.isnan(low) else bool(low > threshold)


def seed_count(count: int) -> str:
    """Write a number of seeds with the right plural, e.g. "1 seed", "5 seeds"."""
    return f"{count} seed" if count == 1 else f"{count} seeds"


def _p_value_text(p_value: float) -> str:
    if math.isnan(p_value):
        return "no paired t-test from one seed"
    return f"paired t-test p = {p_value:.3g}"


def _interval(mean: float, low: float, high: float) -> str:
    if math.isnan(low):
        return f"{mean:+.3f} (no interval from one seed)"
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def shortcut_verdict(runs: pd.DataFrame, probes: pd.DataFrame | None = None) -> Verdict:
    """Claim 1: cross-entropy learns the easy cue and neglects the correlated shape feature.

    Holds in a cue type when CE's accuracy drops by more than ``SHORTCUT_DROP``
    from in-distribution to shifted test (the whole interval above it) and
    the oracle beats CE on the shifted test (paired interval above zero). If
    a linear probe still reads the digit from CE's penultimate features with
    accuracy above ``PROBE_UNDERUSED_ACCURACY``, the feature is underused
    rather than discarded, and the verdict can be at most "partly".
    """
    done = complete(runs)
    ce = done[done["variant"] == "ce"]
    effects: list[bool | None] = []
    lines = []
    oracle_gap = paired_difference(runs, "oracle", "ce", "shifted_accuracy").set_index("cue_type")
    for cue_type, group in ce.groupby("cue_type"):
        drop = mean_ci(group["in_distribution_accuracy"] - group["shifted_accuracy"])
        gap = oracle_gap.loc[cue_type] if cue_type in oracle_gap.index else None
        gap_shown = _above(gap["ci_low"]) if gap is not None else False
        drop_shown = _above(drop[1], SHORTCUT_DROP)
        effects.append(None if None in (drop_shown, gap_shown) else drop_shown and gap_shown)
        gap_text = _interval(gap["difference"], gap["ci_low"], gap["ci_high"]) if gap is not None else "n/a"
        if drop_shown is None:
            drop_text = "not testable against"
        else:
            drop_text = "above" if drop_shown else "not above"
        lines.append(
            f"{cue_type}: CE accuracy drop from q = p to q = 0.1 {_interval(*drop)}, "
            f"{drop_text} the {SHORTCUT_DROP:g} threshold; oracle minus CE on the shifted test {gap_text}"
        )
    verdict = _grade(effects)

    # The probe caveat is reported whatever the grade, and it caps the grade at "partly".
    if probes is not None:
        digit = probes[(probes["variant"] == "ce") & (probes["target"] == "digit") & (probes["tap"] == "fc")]
        by_cue = digit.groupby("cue_type")["accuracy"].mean()
        if not by_cue.empty and (by_cue > PROBE_UNDERUSED_ACCURACY).any():
            verdict = PARTLY if verdict == SUPPORTED else verdict
            accuracies = ", ".join(f"{cue_type} {accuracy:.3f}" for cue_type, accuracy in by_cue.items())
            lines.append(
                f"a linear probe still reads the digit from CE's penultimate features (held-out accuracy "
                f"{accuracies}), so the shape feature is underused, not discarded"
            )
    return Verdict("1. Cross-entropy learns only the most discriminative feature", verdict, "; ".join(lines))


def feature_verdict(probes: pd.DataFrame, ifm_variant_by_cue: dict[str, str], tap: str = "fc") -> Verdict:
    """Claim 2: IFM keeps the correlated feature: more digit information at ``tap`` than CE, paired by seed."""
    effects: list[bool | None] = []
    lines = []
    for cue_type, variant in sorted(ifm_variant_by_cue.items()):
        digit = _paired_probe_difference(probes, cue_type, variant, tap, "digit")
        if digit.empty:
            lines.append(f"{cue_type}: no paired probe results")
            effects.append(False)
            continue
        mean, low, high = mean_ci(digit)
        effects.append(_above(low))

        # The cue information is not part of the verdict, but it shows what
        # IFM changes instead when the digit information stays put.
        cue = mean_ci(_paired_probe_difference(probes, cue_type, variant, tap, "cue"))
        lines.append(
            f"{cue_type}: I({tap}; digit) of {variant} minus CE {_interval(mean, low, high)} bits "
            f"over {seed_count(len(digit))} (I({tap}; cue) {_interval(*cue)} bits)"
        )
    return Verdict("2. IFM keeps the correlated (digit shape) feature", _grade(effects), "; ".join(lines))


def _paired_probe_difference(probes: pd.DataFrame, cue_type: str, variant: str, tap: str, target: str) -> pd.Series:
    """Return the per-seed difference in probe MI (bits) between ``variant`` and CE."""
    rows = probes[(probes["cue_type"] == cue_type) & (probes["tap"] == tap) & (probes["target"] == target)]
    treated = rows[rows["variant"] == variant].set_index("seed")["mi_bits"]
    baseline = rows[rows["variant"] == "ce"].set_index("seed")["mi_bits"]
    return (treated - baseline).dropna()


def shift_verdict(runs: pd.DataFrame, ifm_variant_by_cue: dict[str, str]) -> Verdict:
    """Claim 3: IFM, its weight chosen on validation data, beats CE on the shifted test (paired by seed)."""
    effects: list[bool | None] = []
    lines = []
    for cue_type, variant in sorted(ifm_variant_by_cue.items()):
        differences = paired_difference(runs[runs["cue_type"] == cue_type], variant, "ce", "shifted_accuracy")
        if differences.empty:
            lines.append(f"{cue_type}: no paired runs")
            effects.append(False)
            continue
        row = differences.iloc[0]
        effects.append(_above(row["ci_low"]))
        lines.append(
            f"{cue_type}: shifted accuracy of {variant} minus CE "
            f"{_interval(row['difference'], row['ci_low'], row['ci_high'])} over {seed_count(row['n_pairs'])} "
            f"({_p_value_text(row['p_value'])})"
        )
    return Verdict("3. IFM classifies better than CE under shift", _grade(effects), "; ".join(lines))


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    """Return the verdicts as a table with columns claim, verdict and evidence."""
    return pd.DataFrame([vars(verdict) for verdict in verdicts])


def render_html(notebook_path: Path, html_path: Path) -> Path:
    """Render an executed notebook to one self-contained HTML file, without code cells.

    Images are embedded as base64 by nbconvert; streams are merged and
    carriage returns resolved, so progress output leaves one final line.
    """
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook, _ = CoalesceStreamsPreprocessor().preprocess(notebook, {})
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": REPORT_TITLE}})
    write_atomic(Path(html_path), lambda tmp: tmp.write_text(body, encoding="utf-8"))
    return Path(html_path)


def main() -> None:
    parser = argparse.ArgumentParser(description="Render an executed report notebook to self-contained HTML.")
    parser.add_argument("notebook", type=Path, help="executed notebook, e.g. the output of 05_report")
    parser.add_argument("html", type=Path, help="HTML file to write")
    arguments = parser.parse_args()
    print(f"wrote {render_html(arguments.notebook, arguments.html)}")


if __name__ == "__main__":
    main()


def interval_table(
    summary: pd.DataFrame,
    metrics: dict[str, str],
    variants: list[str] | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> pd.DataFrame:
    """Format a ``summarize`` table as "mean [low, high]" strings, one column per metric.

    ``metrics`` maps metric names to column titles; ``variants`` picks and
    orders the rows (default: all). Interval ends are clipped to ``bounds``,
    the range of an accuracy, because a t interval from few seeds can pass 1.
    """
    rows = summary
    if variants is not None:
        order = {variant: index for index, variant in enumerate(variants)}
        rows = summary[summary["variant"].isin(variants)]
        rows = rows.assign(order=rows["variant"].map(order)).sort_values(["cue_type", "order"])
    table = rows[["cue_type", "variant", "n", "n_failed"]].copy()
    for metric, title in metrics.items():
        table[title] = [
            f"{mean:.3f} [{max(low, bounds[0]):.3f}, {min(high, bounds[1]):.3f}]" if not math.isnan(low) else f"{mean:.3f}"
            for mean, low, high in zip(rows[metric], rows[f"{metric}_ci_low"], rows[f"{metric}_ci_high"])
        ]
    return table.set_index(["cue_type", "variant"])


def notebook_durations(folder: Path) -> pd.DataFrame:
    """Return the wall time papermill recorded for each executed notebook in ``folder``."""
    rows = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        metadata = nbformat.read(path, as_version=4).metadata.get("papermill", {})
        rows.append(
            {
                "notebook": path.name,
                "started": metadata.get("start_time"),
                "seconds": metadata.get("duration"),
                "parameters": metadata.get("parameters"),
            }
        )
    return pd.DataFrame(rows)


def under_oracle_selection(verdict: Verdict) -> Verdict:
    """Relabel a verdict whose IFM weight was chosen on shifted validation data, an oracle rule."""
    return Verdict(
        f"{verdict.claim} (weight chosen on shifted validation data, an oracle)",
        verdict.verdict,
        verdict.evidence,
    )


def mechanism_reading(probes: pd.DataFrame, ifm_variant_by_cue: dict[str, str], tap: str = "fc") -> str:
    """Say in one sentence per cue type how IFM changed digit and cue information at ``tap``, from paired intervals."""
    sentences = []
    for cue_type, variant in sorted(ifm_variant_by_cue.items()):
        digit = mean_ci(_paired_probe_difference(probes, cue_type, variant, tap, "digit"))
        cue = mean_ci(_paired_probe_difference(probes, cue_type, variant, tap, "cue"))
        if math.isnan(digit[1]) or math.isnan(cue[1]):
            sentences.append(f"On the {cue_type} cue, {variant} has fewer than 2 paired seeds, so no reading is given.")
            continue
        digit_change = _direction(digit)
        cue_change = _direction(cue)
        sentences.append(
            f"On the {cue_type} cue, {variant} {digit_change} the digit information of the {tap} layer "
            f"({_interval(*digit)} bits against CE) and {cue_change} its cue information ({_interval(*cue)} bits)."
        )
    return " ".join(sentences)


def _direction(interval: tuple[float, float, float]) -> str:
    _, low, high = interval
    if low > 0:
        return "raised"
    if high < 0:
        return "lowered"
    return "did not measurably change"
