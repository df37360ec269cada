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
