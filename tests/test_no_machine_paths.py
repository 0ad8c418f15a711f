"""No file the repository ships shows the machine it was made on: no absolute home, work or temp paths.

Checks the notebooks' stored outputs, the bundled results in ``data/results/`` and
the package data's provenance files (the figures, tables and logs the book shows).
"""

import json
import re
from pathlib import Path

import pytest

from invnb.paths import DATA_DIR, RESULTS_DIR, SOURCE_ROOT

# absolute paths that name a machine's folders (POSIX and Windows)
MACHINE_PATH = re.compile(r"(?<![\w.])(/work/|/root/|/home/\w|/tmp/|/Users/\w|/var/folders/|[A-Z]:\\{1,2}Users\\)")
TEXT_SUFFIXES = {".json", ".csv", ".md", ".log", ".txt", ".tsv"}


def _shipped_text_files() -> list[Path]:
    files = [p for p in RESULTS_DIR.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES]
    files += [p for p in DATA_DIR.iterdir() if p.suffix in TEXT_SUFFIXES]
    return sorted(files)


def _outputs_text(path: Path) -> str:
    nb = json.loads(path.read_text())
    return json.dumps([c.get("outputs", []) for c in nb["cells"] if c["cell_type"] == "code"])


def test_pattern_finds_machine_paths():
    for text in ("saved to /work/main/runs/x.json", "from /root/.cache/torch", "C:\\Users\\me", "C:\\\\Users\\\\me", "/tmp/abc"):
        assert MACHINE_PATH.search(text), text
    for text in ("runs/04_explorer/items", "data/results/bench_vdsr", "https://example.org/tmp/x"):
        assert not MACHINE_PATH.search(text), text


@pytest.mark.parametrize("path", sorted((SOURCE_ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebook_outputs_name_no_machine_path(path):
    found = MACHINE_PATH.findall(_outputs_text(path))
    assert not found, f"{path.name} stores outputs with machine paths {found}: print names or repository-relative paths"


def test_bundled_files_name_no_machine_path():
    files = _shipped_text_files()
    assert files, f"no bundled result files under {RESULTS_DIR.relative_to(SOURCE_ROOT)}"
    bad = {p.relative_to(SOURCE_ROOT).as_posix(): sorted(set(MACHINE_PATH.findall(p.read_text(errors="replace"))))
           for p in files}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"machine paths in shipped files: {bad}"
