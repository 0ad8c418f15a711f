"""The package's layout rules: the layers hold, no private name crosses modules, modules stay small,
scripts stay thin and no test loads one (the layers themselves: ``lint-imports``, run by ``make test``)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "invnb"
MAX_LINES = 520  # "about 500"


def _python_files(*roots):
    return sorted(p for root in roots for p in (REPO / root).rglob("*.py"))


def test_top_level_holds_only_the_package_face_and_paths():
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py", "paths.py"]


def test_every_subpackage_says_what_it_holds():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 30, f"{init.relative_to(REPO)} needs a docstring saying what the subpackage holds"


def test_no_module_is_over_about_500_lines():
    long = {str(p.relative_to(REPO)): n for p in _python_files("invnb")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_private_name_is_imported_from_another_module():
    """A helper that two modules share lives in ``invnb._utils`` (or is public): nobody imports ``_name``."""
    found = []
    for p in _python_files("invnb", "tests", "scripts", "benchmarks"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("invnb"):
                found += [f"{p.relative_to(REPO)}:{node.lineno} {a.name}" for a in node.names if a.name.startswith("_")]
    assert not found, found


def test_no_test_loads_a_script():
    """Tests test the package; scripts are thin command lines over it."""
    me = Path(__file__).resolve()
    found = []
    for p in _python_files("tests"):
        if p.resolve() == me:
            continue
        text = p.read_text()
        if "spec_from_file_location" in text or "import_module(\"scripts" in text or \
                ("sys.path.insert" in text and "scripts" in text):
            found.append(str(p.relative_to(REPO)))
    assert not found, found


def test_algorithm_modules_never_import_matplotlib():
    """Plotting lives in invnb.plot (and the book's helpers); computation returns arrays and tensors."""
    allowed = ("plot", "book")
    found = []
    for p in _python_files("invnb"):
        if p.relative_to(PACKAGE).parts[0] in allowed:
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{p.relative_to(REPO)}:{node.lineno}" for n in names if n.split(".")[0] == "matplotlib"]
    assert not found, found


def test_the_layers_contract_holds():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.fail(f"{lint} is missing: install the test extra (pip install -e '.[test]')")
    proc = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
