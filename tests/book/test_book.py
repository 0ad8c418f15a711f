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
#: Section pages (02b, 02c, 03b): they draw bundled results and have no parameters of their own.
SECTIONS = sorted(set((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb")) - set(NOTEBOOKS))
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


def _hidden(code):
    return [c for c in code if {"remove-input", "remove-cell"} & set(c.metadata.get("tags", []))]


def _check_code_cells(code):
    """Rules for every page's code cells: run plumbing off the page, no installs, captions."""
    hidden = _hidden(code)
    for c in code:
        if c not in hidden:
            assert not re.search(r"\b(ResultStore|run_items|ItemTask|code_fingerprint)\b", c.source), \
                "result-store and run plumbing sits in cells whose input is removed from the page"
        assert not re.search(r"^\s*[!%]\s*(pip|wget|curl)", c.source, re.M), "no shell installs/downloads"
        assert "filterwarnings" not in c.source
        fig = c.metadata.get("mystnb", {}).get("figure")
        if fig is not None:
            assert fig.get("caption", "").strip(), "figure metadata needs a caption"


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
    hidden = _hidden(code)
    import_cells = [c for c in code if re.search(r"^(import|from) \S+", c.source, re.M) and c not in hidden]
    assert import_cells == [code[1]], "all visible imports in one cell, right after the parameters"
    _check_code_cells(code)
    checked = [c for c in code if "# NBVAL_CHECK_OUTPUT" in c.source]
    assert checked, "at least one cell's summary numbers are checked by nbval"
    for c in checked:
        assert "print(" in c.source
        assert c.get("outputs"), "a checked cell must keep its reference output in the notebook"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_section_pages_are_found():
    assert {p.stem[:3] for p in SECTIONS} >= {"02b", "02c", "03b"}


@pytest.mark.parametrize("path", SECTIONS, ids=[p.stem for p in SECTIONS])
def test_section_notebook_structure(path):
    """What a chapter's structure rules ask of a page that has no parameters: a title, the run
    plumbing off the page, captions, no installs, the python3 kernel."""
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "start with a title"
    _check_code_cells([c for c in nb.cells if c.cell_type == "code"])
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_only_checked_cells_keep_outputs_in_git():
    """Committed notebooks stay small: outputs are kept only where nbval compares them."""
    for path in NOTEBOOKS + SECTIONS:
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
              for p in NOTEBOOKS + SECTIONS]
    cited = {k.strip() for t in texts for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", t)
             for k in group.split(",")}
    assert cited, "the book cites its sources"
    assert cited <= keys, f"unknown citation keys {sorted(cited - keys)}"


# --- Short pages: words per page and words per sentence -------------------------------------------------------------

#: Most words of prose a page may hold (outside code, math blocks and tables).
MAX_PAGE_WORDS = 2600
#: Most words a sentence may hold (inline code, math and roles count as one word each).
MAX_SENTENCE_WORDS = 40
#: Directives whose body is not prose (tables, code, included files, glued output).
_NON_PROSE = {"glue", "glue:md", "glue:text", "glue:figure", "include", "list-table", "bibliography", "code", "code-cell",
              "code-block", "math", "literalinclude", "raw", "csv-table", "table"}
_ABBREVIATIONS = {"e.g.", "i.e.", "cf.", "vs.", "al.", "etc.", "approx.", "fig.", "eq.", "resp.", "incl.", "no.", "p."}
_FENCE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})\s*(?:\{([\w:-]+)\})?")
_BLOCK_START = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|:\s|#+\s|\|)")
_INLINE = [
    (re.compile(r"\{[\w:-]+\}`[^`]*`"), " R "),          # roles: {glue:text}`...`, {doc}`...`, {cite:p}`...`
    (re.compile(r"`[^`\n]*`"), " C "),                 # inline code
    (re.compile(r"\$[^$\n]+\$"), " M "),              # inline math
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links and images: their text
    (re.compile(r"<!--.*?-->", re.DOTALL), " "),
]


def _prose_lines(text: str) -> list[str]:
    """The lines of markdown `text` that are prose: no code fences, non-prose directives, math blocks or options."""
    out, stack, in_math = [], [], False
    for line in text.split("\n"):
        stripped = line.strip()
        if in_math:
            in_math = not stripped.startswith("$$") and not stripped.endswith("$$")
            continue
        if stack and not stack[-1][1]:  # inside a non-prose block: wait for its closing fence
            marker = stack[-1][0]
            if re.fullmatch(f"{re.escape(marker[0])}{{{len(marker)},}}", stripped):
                stack.pop()
            continue
        fence = _FENCE.match(line)
        if fence:
            marker, name = fence.group(1), fence.group(2)
            rest = line[fence.end():].strip()
            if stack and not name and not rest and stripped[0] == stack[-1][0][0] and len(stripped) >= len(stack[-1][0]):
                stack.pop()  # closes the innermost prose directive
            else:
                prose = name is not None and name not in _NON_PROSE and marker[0] != "~"
                stack.append((marker, prose))
            continue
        if stripped.startswith("$$"):
            in_math = stripped == "$$" or not stripped[2:].rstrip().endswith("$$") and "$$" not in stripped[2:]
            continue
        if re.match(r"^:[\w-]+:", stripped) or re.fullmatch(r"\([\w-]+\)=", stripped):
            continue  # a directive's option or a label
        out.append(line)
    return out


def prose_blocks(text: str) -> list[str]:
    """Paragraphs, list items, definitions and headings of markdown `text`, without tables (one string each)."""
    blocks, current = [], []
    for line in _prose_lines(text):
        if not line.strip() or _BLOCK_START.match(line):
            if current:
                blocks.append(" ".join(current))
            current = []
        if line.strip() and not line.strip().startswith("|"):
            current.append(line.strip())
    if current:
        blocks.append(" ".join(current))
    for pattern, repl in _INLINE:
        blocks = [pattern.sub(repl, b) for b in blocks]
    blocks = [re.sub(r"^(?:[-*+]|\d+[.)]|:|#+)\s+", "", b) for b in blocks]  # list, definition, heading marks
    return [b for b in blocks if b.split()]


def sentences(block: str) -> list[list[str]]:
    """The sentences of one prose block, each as its words; a word ending in . ? or ! ends one (not an abbreviation)."""
    out, current = [], []
    for word in block.split():
        current.append(word)
        bare = word.rstrip(")]\"'*_")
        if bare.endswith((".", "?", "!")) and bare.lstrip("([\"'*_").lower() not in _ABBREVIATIONS:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _page_text(page: str, suffix: str) -> str:
    path = ROOT / f"{page}{suffix}"
    if suffix == ".ipynb":
        return "\n\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    return path.read_text()


def test_prose_splitter():
    text = """# A title

One sentence with `inline code. here` and $a. b$ math. Another, e.g. this one!
- a list item without a full stop
- a second item. With two sentences.

| a | table. | row |

```python
x = 1. + 2. # code, not prose
```

$$
y = x. z
$$ (eq-x)

:::{admonition} A note
:class: dropdown

Kept prose {glue:text}`a::b:.3f` inside.
:::

```{glue:md} name
:format: myst
```
"""
    blocks = prose_blocks(text)
    assert blocks == ["A title", "One sentence with  C  and  M  math. Another, e.g. this one!",
                      "a list item without a full stop", "a second item. With two sentences.",
                      "Kept prose  R  inside."]
    assert [len(s) for b in blocks for s in sentences(b)] == [2, 7, 4, 7, 3, 3, 4]


@pytest.mark.parametrize("page,suffix", PAGES, ids=[p for p, _ in PAGES])
def test_pages_are_short_and_so_are_their_sentences(page, suffix):
    blocks = prose_blocks(_page_text(page, suffix))
    words = sum(len(b.split()) for b in blocks)
    assert words <= MAX_PAGE_WORDS, f"{page}: {words} words of prose; split the page (at most {MAX_PAGE_WORDS})"
    long = [" ".join(s) for b in blocks for s in sentences(b) if len(s) > MAX_SENTENCE_WORDS]
    assert not long, (f"{page}: {len(long)} sentence(s) over {MAX_SENTENCE_WORDS} words; split them:\n"
                      + "\n".join(f"  ({len(s.split())} words) {s[:120]}..." for s in long))
