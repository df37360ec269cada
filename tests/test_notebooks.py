"""Notebooks executed by papermill with small parameters into a temporary folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SMALL_TRAIN = ["-p", "epochs", "1", "-p", "train_size", "2000", "-p", "val_size", "500", "-p", "test_size", "500"]


def run_papermill(notebook: str, output: Path, parameters: list[str], results: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "papermill", str(NOTEBOOKS / notebook), str(output), *parameters]
    environment = {**os.environ, "IFM_RESULTS_DIR": str(results)}
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)


def test_train_notebook_writes_record(tmp_path):
    results = tmp_path / "results"
    completed = run_papermill("02_train.ipynb", tmp_path / "out.ipynb", [*SMALL_TRAIN, "-p", "ifm_weight", "0.2"], results)
    assert completed.returncode == 0, completed.stderr[-3000:]

    (run,) = (results / "runs").iterdir()
    assert run.name.startswith("ifm-w0.2-pixel-")
    assert json.loads((run / "status.json").read_text())["status"] == "complete"


def test_train_notebook_output_has_figures(tmp_path):
    completed = run_papermill("02_train.ipynb", tmp_path / "out.ipynb", SMALL_TRAIN, tmp_path / "results")
    assert completed.returncode == 0, completed.stderr[-3000:]

    notebook = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == 3
    streams = "".join(output.get("text", "") for output in outputs if output["output_type"] == "stream")
    assert "\r" not in streams


@pytest.mark.parametrize(
    ("name", "value"),
    [("ifm_weight", "-1"), ("cue_type", "stripes"), ("train_cue_agreement", "1.5"), ("include_input", "maybe")],
)
def test_train_notebook_rejects_bad_parameter(tmp_path, name, value):
    results = tmp_path / "results"
    completed = run_papermill("02_train.ipynb", tmp_path / "out.ipynb", ["-p", name, value], results)
    assert completed.returncode != 0
    assert "ConfigError" in completed.stderr
    assert name in completed.stderr
    assert not results.exists()


def test_study_notebooks_render_report(tmp_path):
    # The whole chain of `make study PROFILE=quick`, in a temporary results folder.
    results = tmp_path / "results"
    study = results / "studies" / "quick"
    (study / "notebooks").mkdir(parents=True)
    for notebook in ("01_data.ipynb", "03_sweep.ipynb", "04_analysis.ipynb", "05_report.ipynb"):
        completed = run_papermill(notebook, study / "notebooks" / notebook, ["-p", "profile", "quick"], results)
        assert completed.returncode == 0, f"{notebook}: {completed.stderr[-3000:]}"

    from ifm_core.report import render_html

    html = render_html(study / "notebooks" / "05_report.ipynb", tmp_path / "report.html").read_text()
    for figure in ("fig1", "fig2", "fig3", "fig4", "fig5a", "fig5", "fig6"):
        assert (study / "figures" / f"{figure}_{FIGURE_NAMES[figure]}.png").is_file(), figure
    assert html.count("data:image/png;base64") >= 7
    assert "Verdicts" in html
    assert "\r" not in html
    assert (study / "runs.csv").is_file()


FIGURE_NAMES = {
    "fig1": "cue_samples",
    "fig2": "accuracy_vs_shift",
    "fig3": "weight_sensitivity",
    "fig4": "tsne_pixel",
    "fig5a": "estimator_validation",
    "fig5": "mi_per_layer_pixel",
    "fig6": "training_curves",
}
