"""environment.yml (conda) stays equivalent to pyproject.toml."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import REPO as ROOT

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _pip_section(env: dict) -> list[str]:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "one pip section"
    return sections[0]


def _normalise(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def test_pip_list_is_pyprojects_dependencies_with_book_and_test_extras():
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    # in order, each requirement once (the test extra repeats papermill/ipykernel of the book extra,
    # so that `pip install -e .[test]` alone can run every test)
    expected = list(dict.fromkeys(_normalise(r) for r in [*project["dependencies"], *extras["book"], *extras["test"]]))
    pip = [r for r in _pip_section(_environment()) if not r.startswith("-e ")]
    assert [_normalise(r) for r in pip] == expected, (
        "environment.yml's pip list differs from pyproject.toml's dependencies + [book] + [test]; "
        "update environment.yml"
    )


def test_environment_installs_invnb_itself_with_the_same_extras_and_python():
    env = _environment()
    assert env["name"] == "invnb"
    assert "pip" in env["dependencies"]
    assert _pip_section(env)[-1] == "-e .[book,test]"
    assert set(_pyproject()["project"]["optional-dependencies"]) == {"book", "test", "dask"}
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    requires = _pyproject()["project"]["requires-python"]
    assert python == ["python" + requires], (python, requires)


def test_dask_extra_is_part_of_the_test_install():
    extras = _pyproject()["project"]["optional-dependencies"]
    assert extras["dask"] and set(extras["dask"]) <= set(extras["test"])


# import name -> distribution name, where they differ
_DIST_OF = {"yaml": "pyyaml", "PIL": "pillow", "skimage": "scikit-image", "resize_right": "resize-right",
            "distributed": "dask", "tomli": None}


def test_test_extra_installs_every_third_party_module_the_tests_import():
    """`pip install -e .[test]` must be enough to collect every test file (issue 16)."""
    import ast
    import sys

    root = ROOT
    local = {p.stem for p in (root / "tests").rglob("*.py")} | {p.stem for p in (root / "scripts").glob("*.py")}
    local |= {p.stem for p in (root / "book" / "_ext").glob("*.py")}  # the book's Sphinx extensions
    local |= {"invnb", "conftest", "cases"}
    project = _pyproject()["project"]
    reqs = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    installed = {re.split(r"[\s<>=!\[;~]", r, maxsplit=1)[0].lower() for r in reqs}
    missing = set()
    for f in (root / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in local or top == "__future__":
                    continue
                dist = _DIST_OF.get(top, top)
                if dist is not None and dist.lower() not in installed:
                    missing.add(f"{top} ({f.name})")
    assert not missing, f"tests import modules the [test] extra does not install: {sorted(missing)}"
