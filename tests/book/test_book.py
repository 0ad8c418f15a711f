"""Static checks of the book: config, table of contents, notebooks' structure, citations."""

import re

import nbformat
import pytest
import yaml
from conftest import REPO as ROOT

from invnb.book import build as build_book  # noqa: E402
from invnb.book import pagecheck as screenshot_book  # noqa: E402

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = screenshot_book.toc_pages(ROOT)


def test_toc_lists_existing_files_and_every_notebook():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert toc["format"] == "jb-book"
    assert all(part.get("caption") for part in toc["parts"]), "every part needs a caption"
    for page, suffix in PAGES:
        assert (ROOT / f"{page}{suffix}").is_file(), f"_toc.yml names {page}, which does not exist"
    in_toc = {p for p, _ in PAGES}
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in in_toc, f"{nb.name} is not in _toc.yml"
    assert len(in_toc) == len(PAGES), "a page is listed twice"


def test_config_executes_offline_with_vendored_assets():
    assert CONFIG["only_build_toc_files"] is True
    assert CONFIG["execute"]["execute_notebooks"] in ("cache", "force")
    assert CONFIG["execute"]["timeout"] >= 600 and CONFIG["execute"]["allow_errors"] is False
    assert CONFIG["copyright"]
    sphinx = CONFIG["sphinx"]["config"]
    static = sphinx["html_static_path"]
    assert "_static" not in static and "book/_static_vendor" in static and "book/_static_js" in static
    # every vendored file the pages load is one the build script fetches
    widget_js = list(sphinx["nb_ipywidgets_js"])
    assert widget_js[0].startswith("requirejs/"), "RequireJS must come first"
    assert widget_js[-1].startswith("html-manager/"), "the widget manager comes last (after its set-up)"
    wanted = [sphinx["mathjax_path"], *widget_js]
    assert not any("://" in w for w in wanted), "no CDN: the book must work offline"
    for path in wanted:
        if (ROOT / "book" / "_static_js" / path).is_file():  # committed, not vendored
            continue
        folder, _, inner = path.partition("/")
        pkg = next((p for p in build_book.PACKAGES if p["dest"] == folder), None)
        assert pkg is not None, f"{path}: no vendored package folder {folder!r}"
        assert build_book._kept(inner, pkg["keep"]), f"{path} is not among the files kept from {pkg['spec']}"
    assert "book/_static_vendor/" in (ROOT / ".gitignore").read_text()


def test_vendored_file_filter():
    keep = ["es5/input/", "dist/*.woff", "require.js"]
    assert build_book._kept("es5/input/tex/extensions/ams.js", keep)
    assert build_book._kept("dist/a.woff", keep) and not build_book._kept("dist/sub/a.woff", keep)
    assert build_book._kept("require.js", keep) and not build_book._kept("bin/r.js", keep)
    assert not build_book._kept("es5/tex-svg.js", keep)


def test_integrity_check_refuses_other_bytes():
    import base64
    import hashlib

    data = b"some tarball"
    good = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    build_book._check_integrity(data, good, "pkg@1")
    with pytest.raises(SystemExit, match="refusing"):
        build_book._check_integrity(data + b"!", good, "pkg@1")


def test_warning_counter():
    log = ("reading sources... done\n/x/intro.md:3: WARNING: unknown document: 'a'\n"
           "WARNING: toctree contains reference\nbuild succeeded.\n")
    assert len(build_book.count_warnings(log)) == 2
    assert build_book.count_warnings("build succeeded.\n") == []


def _sentences(text: str) -> int:
    return len(re.findall(r"[.?!](\s|$)", text))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    first = cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "start with a title"
    overview = first.source.split("\n", 1)[1]
    assert 2 <= _sentences(overview) <= 6, "a 2-4 sentence overview follows the title"
    code = [c for c in cells if c.cell_type == "code"]
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0] is code[0], "exactly one parameters cell, the first code cell"
    assert re.search(r"^output_dir\s*=", params[0].source, re.M), "the parameters set output_dir"
    hidden = [c for c in code if {"remove-input", "remove-cell"} & set(c.metadata.get("tags", []))]
    import_cells = [c for c in code if re.search(r"^(import|from) \S+", c.source, re.M) and c not in hidden]
    assert import_cells == [code[1]], "all visible imports in one cell, right after the parameters"
    for c in code:
        if c not in hidden:
            assert not re.search(r"\b(ResultStore|run_items|ItemTask|code_fingerprint)\b", c.source), \
                "result-store and run plumbing sits in cells whose input is removed from the page"
    for c in code:
        assert not re.search(r"^\s*[!%]\s*(pip|wget|curl)", c.source, re.M), "no shell installs/downloads"
        assert "filterwarnings" not in c.source
        fig = c.metadata.get("mystnb", {}).get("figure")
        if fig is not None:
            assert fig.get("caption", "").strip(), "figure metadata needs a caption"
    checked = [c for c in code if "# NBVAL_CHECK_OUTPUT" in c.source]
    assert checked, "at least one cell's summary numbers are checked by nbval"
    for c in checked:
        assert "print(" in c.source
        assert c.get("outputs"), "a checked cell must keep its reference output in the notebook"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_only_checked_cells_keep_outputs_in_git():
    """Committed notebooks stay small: outputs are kept only where nbval compares them."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for c in nb.cells:
            if c.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" not in c.source:
                assert not c.get("outputs"), f"{path.name}: strip outputs of unchecked cells"
        assert "widgets" not in nb.metadata, f"{path.name}: strip saved widget state"


def test_citations_resolve():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    texts = [p.read_text() for p in (ROOT / "book").glob("*.md")]
    texts += ["\n".join(c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "markdown")
              for p in NOTEBOOKS]
    cited = {k.strip() for t in texts for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", t)
             for k in group.split(",")}
    assert cited, "the book cites its sources"
    assert cited <= keys, f"unknown citation keys {sorted(cited - keys)}"
