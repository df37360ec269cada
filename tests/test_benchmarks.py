"""Smoke runs of the benchmark scripts on tiny sizes; no test checks a time."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = [
    "bench_generation.py",
    "bench_training.py",
    "bench_ifm_cost.py",
    "bench_memory.py",
    "bench_analysis.py",
    "bench_evaluation.py",
]
TIMEOUT_S = 600


def run_script(name: str, *arguments: str, results_dir: Path) -> subprocess.CompletedProcess:
    # IFM_RESULTS_DIR keeps any record a script might write out of results/.
    environment = {**os.environ, "IFM_RESULTS_DIR": str(results_dir)}
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=environment,
        cwd=BENCHMARKS.parent,
    )


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_tiny_run(name, tmp_path):
    # One thread keeps the smoke runs short when other processes share the cores.
    completed = run_script(name, "--tiny", "--threads", "1", results_dir=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "RESULT" in completed.stdout, completed.stdout


def test_training_benchmark_default_threads(tmp_path):
    # With more than one torch thread the script adds a single-threaded contender.
    completed = run_script("bench_training.py", "--tiny", results_dir=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "RESULT" in completed.stdout, completed.stdout


def test_gpu_run_on_cpu_smoke(tmp_path):
    completed = run_script("gpu_run.py", "--tiny", "--device", "cpu", "--threads", "1", results_dir=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "quick study" in completed.stdout, completed.stdout


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(), reason="a GPU is present")
def test_gpu_run_without_gpu_exits(tmp_path):
    completed = run_script("gpu_run.py", "--tiny", results_dir=tmp_path)
    assert completed.returncode == 1
    assert "no GPU found" in completed.stderr
