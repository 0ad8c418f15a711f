"""What a reader sees: one repository setting, set-up cells in step with it, no test markers or plumbing.

The same checks on a small built book (the project's ``_config.yml`` and
extensions, a notebook with an nbval marker and a hidden result-store cell)
are in ``test_book_html.py``.
"""

import re
import sys

import nbformat
import pytest
from conftest import REPO as ROOT

from invnb.book.setup_cell import SETUP_END, repository_url, with_setup

sys.path.insert(0, str(ROOT / "book" / "_ext"))
import reader_view  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PLUMBING = re.compile(r"ResultStore\.for_config|run_items\(|distributed\.Client|LocalCluster")


def test_strip_nbval_keeps_the_code():
    code = "# NBVAL_CHECK_OUTPUT\nx = 1\n    # NBVAL_SKIP\nprint(x)  # NBVAL is not a marker here\n"
    assert reader_view.strip_nbval(code) == "x = 1\nprint(x)  # NBVAL is not a marker here\n"


def test_repository_setting_switches_every_button():
    off = reader_view.repository_options("")
    assert not off["use_repository_button"] and not off["use_issues_button"] and off["launch_buttons"] == {}
    on = reader_view.repository_options("https://github.com/o/r", "main")
    assert on["use_repository_button"] and on["launch_buttons"]["binderhub_url"].startswith("https://")
    assert on["launch_buttons"]["colab_url"].startswith("https://") and on["repository_branch"] == "main"


def test_config_names_the_repository_once():
    config = (ROOT / "_config.yml").read_text()
    assert len(re.findall(r"^repository:", config, re.M)) == 1
    assert "binderhub_url" not in config and "colab_url" not in config, "launch buttons follow repository.url"
    url = repository_url(ROOT / "_config.yml")
    assert url == "" or re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_opens_with_the_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    url = repository_url(ROOT / "_config.yml")
    assert SETUP_END in code[1].source, "the import cell starts with the set-up lines"
    assert code[1].source == with_setup(code[1].source, url), (
        "set-up lines out of step with _config.yml's repository.url: rewrite them with "
        "invnb.book.setup_cell.with_setup")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_result_store_cells_are_hidden(path):
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code" and PLUMBING.search(c.source):
            tags = set(c.metadata.get("tags", []))
            assert tags & {"remove-input", "remove-cell"}, f"{path.name}: show readers the method, not the store"


def test_built_book_hides_markers_and_plumbing():
    """The full book, when `make book` has built it."""
    html = ROOT / "_build" / "html"
    if not (html / "index.html").is_file():
        pytest.skip("the book is not built (make book)")
    for page in html.rglob("*.html"):
        text = page.read_text(errors="replace")
        assert "NBVAL" not in text, page.name
        assert not PLUMBING.search(re.sub(r"<[^>]+>", "", text)), page.name
        assert "jupyter-stacks-datascience" not in text, page.name
