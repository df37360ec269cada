"""Set-up files stay in step with each other."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r): r for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    lines = (ROOT / "environment.yml").read_text().splitlines()
    pip_section = lines[lines.index("  - pip:") + 1 :]
    listed = {_name(line.strip()[2:]): line.strip()[2:] for line in pip_section if line.strip().startswith("- ")}
    assert listed == declared


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
