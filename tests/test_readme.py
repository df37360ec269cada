"""The README's code example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs():
    (example,) = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["loss"].isfinite()
    assert set(namespace["bounds"]) == {"conv1->conv2", "conv2->conv3", "conv3->fc"}
