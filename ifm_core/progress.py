"""Progress bars that read well in a terminal, a live notebook and a saved notebook.

In a terminal the bar is plain tqdm. In a Jupyter kernel the bar is a text
display updated in place, so the saved notebook and its HTML keep only the
final line: no widget state and no carriage-return residue.
"""

from __future__ import annotations

from tqdm import tqdm


class _DisplayLine:
    """A file-like target for tqdm that shows the latest line in one updatable display."""

    def __init__(self) -> None:
        from IPython.display import display

        self._handle = display({"text/plain": ""}, raw=True, display_id=True)

    def write(self, text: str) -> None:
        line = text.strip("\r\n")
        if line:
            self._handle.update({"text/plain": line}, raw=True)

    def flush(self) -> None:
        """Do nothing; every write is shown at once."""


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def progress_bar(total: int, description: str, enabled: bool = True, unit: str = "step") -> tqdm:
    """Return a tqdm bar over ``total`` units that suits where the code runs."""
    options = {"total": total, "desc": description, "disable": not enabled, "unit": unit, "mininterval": 1.0}
    if enabled and _in_kernel():
        return tqdm(file=_DisplayLine(), ascii=True, ncols=100, **options)
    return tqdm(**options)
