"""Locations of the data cache and the results folder.

Both resolve from the package's own location, not the working directory,
because JupyterLab runs a notebook from ``notebooks/`` while papermill runs
it from the caller's directory, and both must write to the same place.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_VARIABLE = "IFM_DATA_DIR"
RESULTS_DIR_VARIABLE = "IFM_RESULTS_DIR"


def repository_root() -> Path:
    """Return the checkout that contains this package.

    An editable install (``pip install -e .``, what the Makefile does) keeps
    the package inside the checkout. For a plain install, the working
    directory takes the place of the checkout.
    """
    candidate = Path(__file__).resolve().parent.parent
    if (candidate / "pyproject.toml").is_file():
        return candidate
    return Path.cwd()


def data_dir() -> Path:
    """Return the MNIST cache folder: ``$IFM_DATA_DIR`` or ``<repository>/data``."""
    configured = os.environ.get(DATA_DIR_VARIABLE)
    return Path(configured).expanduser() if configured else repository_root() / "data"


def results_dir() -> Path:
    """Return the results folder: ``$IFM_RESULTS_DIR`` or ``<repository>/results``."""
    configured = os.environ.get(RESULTS_DIR_VARIABLE)
    return Path(configured).expanduser() if configured else repository_root() / "results"
