"""The built HTML in a real browser: a small book built with the project's config, seen offline.

Builds a two-page book (a page with math, a notebook with a figure and saved
widget state, including a jslink-ed Stack like the explorer's static view)
with the project's ``_config.yml`` and vendored JavaScript, opens it in
headless Chromium without network access (``scripts/screenshot_book.py``) and
checks that the math was typeset, the figure and the widgets rendered, no
request left the machine, and that the saved widgets still react in the
browser. Needs ``chromium`` (Debian package) and the JavaScript vendored by
``python scripts/build_book.py --vendor-only`` (the tests never download it);
without them the test fails when ``CI`` is set and is skipped with the reason
otherwise.
"""

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml
from conftest import REPO as ROOT

from invnb.book import build as build_book  # noqa: E402
from invnb.book import pagecheck as screenshot_book  # noqa: E402


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium():
    path = screenshot_book.find_chromium()
    if path is None:
        _missing("no chromium binary: install it with `apt-get install -y chromium`")
    return path


@pytest.fixture(scope="module")
def vendored():
    """The vendored JavaScript; tests never download it (``make book`` or ``--vendor-only`` does)."""
    missing = [p["dest"] + "/" + p["check"] for p in build_book.PACKAGES
               if not (build_book.VENDOR / p["dest"] / p["check"]).is_file()]
    if missing:
        _missing(f"the book's JavaScript is not vendored ({', '.join(missing)} missing): "
                 "run `python scripts/build_book.py --vendor-only` first")
    return build_book.VENDOR


def _png_bytes(seed: int, width: int = 60) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = (rng.random((40, width, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _widget_notebook() -> nbformat.NotebookNode:
    """A notebook whose saved state has a Dropdown jslink-ed to a Stack of two images, and a
    finished progress bar as tqdm leaves it in the chapters (HTML, FloatProgress, HTML)."""
    import ipywidgets as w

    menu = w.Dropdown(options=[("first", 0), ("second", 1)], description="pick")
    stack = w.Stack([w.Image(value=_png_bytes(1), format="png", width=60, height=40),
                     w.Image(value=_png_bytes(2, width=120), format="png", width=120, height=40)], selected_index=0)
    w.jslink((menu, "index"), (stack, "selected_index"))
    box = w.VBox([menu, stack])
    bar = w.HBox([w.HTML("items: 100%"), w.FloatProgress(value=8, min=0, max=8, bar_style="success"),
                  w.HTML(" 8/8 [00:01<00:00, 5.00it/s]")])
    state = w.Widget.get_manager_state(drop_defaults=False, widgets=None)
    view = {"version_major": 2, "version_minor": 0, "model_id": box.model_id}
    bar_view = {"version_major": 2, "version_minor": 0, "model_id": bar.model_id}
    cells = [
        nbformat.v4.new_markdown_cell("# Widgets\n\nA saved widget and a figure. Inline math $a^2 + b^2$."),
        nbformat.v4.new_code_cell("figure", outputs=[nbformat.v4.new_output(
            "display_data", data={"image/png": base64.b64encode(_png_bytes(3)).decode(), "text/plain": "<Figure>"})]),
        nbformat.v4.new_code_cell("box", outputs=[nbformat.v4.new_output(
            "display_data", data={"application/vnd.jupyter.widget-view+json": view, "text/plain": "VBox()"})]),
        nbformat.v4.new_code_cell("run_items(...)", outputs=[nbformat.v4.new_output(
            "display_data", data={"application/vnd.jupyter.widget-view+json": bar_view, "text/plain": "HBox()"})]),
        # what tests/book/test_reader_view.py::test_built_pages_hide_markers_and_plumbing looks for
        nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint('checked')", outputs=[nbformat.v4.new_output(
            "stream", name="stdout", text="checked\n")]),
        nbformat.v4.new_code_cell("store = ResultStore.for_config('items', {})",
                                  metadata={"tags": ["remove-input"]}),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0, "state": state["state"]}}
    return nb


@pytest.fixture(scope="module")
def small_book(tmp_path_factory, vendored):
    """Build a two-page book with the project's config; returns (source dir, html dir)."""
    src = tmp_path_factory.mktemp("book")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    config["sphinx"]["config"]["html_static_path"] = [str(vendored), str(ROOT / "book" / "_static_js"),
                                                      str(ROOT / "book" / "_static_css")]
    config["bibtex_bibfiles"] = ["references.bib"]
    config["sphinx"]["local_extensions"] = {name: str(ROOT / "book" / "_ext")
                                            for name in config["sphinx"]["local_extensions"]}
    (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(ROOT / "book" / "references.bib", src / "references.bib")
    (src / "_toc.yml").write_text(yaml.safe_dump(sort_keys=False, data={"format": "jb-book", "root": "intro", "parts": [
        {"caption": "Test", "chapters": [{"file": "widgets"}]}]}))
    (src / "intro.md").write_text(
        "# Math\n\nDisplay math {cite:p}`kwon2021inverse`:\n\n$$\n\\min_{x} \\|t - \\rho(Wx + b)\\|_2\n$$\n\n"
        "and inline $\\lambda \\|m \\odot x\\|_1$.\n\n```{bibliography}\n```\n")
    nbformat.write(_widget_notebook(), src / "widgets.ipynb")
    exe = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(exe), "build", str(src), "-W", "-n", "--keep-going"], capture_output=True,
                          text=True, env=dict(os.environ, NO_COLOR="1"), timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert build_book.count_warnings(log) == []
    return src, src / "_build" / "html"


def test_vendored_files_are_copied_into_the_built_book(small_book):
    _, html = small_book
    for path in ("mathjax/es5/tex-mml-chtml.js", "requirejs/require.js", "html-manager/dist/embed-amd.js"):
        assert (html / "_static" / path).is_file(), path
    page = (html / "widgets.html").read_text()
    assert "_static/html-manager/dist/embed-amd.js" in page and "_static/requirejs/require.js" in page
    assert "cdn.jsdelivr" not in page and "cdnjs" not in page
    assert "_static/mathjax/es5/tex-mml-chtml.js" in (html / "intro.html").read_text()


def test_built_pages_hide_markers_and_plumbing(small_book):
    _, html = small_book
    pages = {p.name: p.read_text() for p in html.glob("*.html")}
    assert "widgets.html" in pages
    for name, page in pages.items():
        assert "NBVAL" not in page, name
        assert "ResultStore" not in page, name
        assert "jupyter-stacks-datascience" not in page and "binder-examples" not in page, name
    assert "checked" in pages["widgets.html"], "the checked cell itself is still shown"


def test_pages_render_offline_in_chromium(small_book, chromium, tmp_path):
    src, html = small_book
    pages = screenshot_book.toc_pages(src)
    report = screenshot_book.run(html, tmp_path, pages, timeout=60, chromium=chromium)
    intro, widgets = report["pages"]["intro"], report["pages"]["widgets"]
    assert report["ok"], json.dumps({p: r["problems"] for p, r in report["pages"].items()}, indent=1)
    assert intro["mathjax_containers"] >= 2 and intro["untypeset_math"] == 0 and not intro["raw_tex"]
    assert widgets["output_figures"] == 1 and widgets["widget_images"] >= 1  # widget images are not figures
    assert widgets["widget_views"] == 2 and widgets["widget_views_rendered"] == 2
    assert widgets["expected"] == {"figures": 1, "widget_views": 2}
    # the widget manager's icon fonts resolve to the vendored copy (not a "@jupyter-widgets/"
    # folder beside the page, which made the check fail on some loads and not others)
    fonts = [u for u in widgets["font_urls"] if "/mathjax/" not in u]
    assert fonts and all("/_static/html-manager/dist/" in u for u in fonts), fonts
    assert widgets["widget_images_loaded"] >= 1
    for r in (intro, widgets):
        assert not r["external_requests"] and not r["failed_requests"] and not r["js_errors"]
        shot = Path(r["screenshot"]).read_bytes()
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 5000


def test_saved_widgets_react_in_the_browser(small_book, chromium):
    """Choosing another entry of the saved Dropdown switches the saved Stack, with no kernel."""
    import tempfile

    _, html = small_book
    with tempfile.TemporaryDirectory() as profile:
        dt = screenshot_book.DevTools(chromium, profile)
        try:
            target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            dt.send("Page.enable", session=session)
            dt.send("Page.navigate", {"url": (html / "widgets.html").resolve().as_uri()}, session=session)
            dt.wait_event("Page.loadEventFired", session, 60)

            def evaluate(js):
                out = dt.send("Runtime.evaluate", {"expression": js, "awaitPromise": True,
                                                   "returnByValue": True}, session=session)
                return out["result"].get("value")

            shown = ("Array.from(document.querySelectorAll('.jupyter-widgets img'))"
                     ".filter(i => i.getClientRects().length > 0 && i.naturalWidth > 0).map(i => i.naturalWidth)")
            deadline = time.time() + 30
            while time.time() < deadline and not evaluate(shown):
                time.sleep(0.2)
            assert evaluate(shown) == [60]
            evaluate("(() => { const s = document.querySelector('.jupyter-widgets select');"
                     " s.value = s.options[1].value; s.dispatchEvent(new Event('change', {bubbles: true})); })()")
            deadline = time.time() + 10
            while time.time() < deadline and evaluate(shown) != [120]:
                time.sleep(0.2)
            assert evaluate(shown) == [120]
        finally:
            dt.close()


def _broken_copies(html: Path, dest: Path) -> list[tuple[str, str]]:
    """Copies of the small book's pages, each missing one thing; returns their (page, suffix)."""
    import re

    shutil.copytree(html, dest / "html")
    shutil.copytree(html.parent / "jupyter_execute", dest / "jupyter_execute")
    widgets = (html / "widgets.html").read_text()
    executed = html.parent / "jupyter_execute" / "widgets.ipynb"

    def page(name: str, text: str) -> tuple[str, str]:
        (dest / "html" / f"{name}.html").write_text(text)
        shutil.copy(executed, dest / "jupyter_execute" / f"{name}.ipynb")
        return name, ".ipynb"

    no_figure, n = re.subn(r'<img[^>]*src="_images/[^"]*"[^>]*>', "", widgets)
    assert n == 1
    state = re.search(r'(<script type="application/vnd.jupyter.widget-state\+json">)(.*?)(</script>)', widgets, re.S)
    saved = json.loads(state.group(2))
    view_ids = re.findall(r'"model_id": "([0-9a-f]+)"', widgets)
    del saved["state"][view_ids[0]]  # the model of the first view is gone
    no_model = widgets.replace(state.group(0), state.group(1) + json.dumps(saved) + state.group(3))
    no_view, n = re.subn(r'<script type="application/vnd.jupyter.widget-view\+json">.*?</script>', "", widgets,
                         count=1, flags=re.S)
    assert n == 1
    no_mathjax, n = re.subn(r'<script[^>]*tex-mml-chtml\.js[^>]*></script>', "", widgets)
    assert n == 1
    shows_path = widgets.replace("A saved widget and a figure.", f"A saved widget and a figure, in {dest / 'html'}.")
    assert shows_path != widgets
    return [page("no_figure", no_figure), page("no_model", no_model), page("no_view", no_view),
            page("no_mathjax", no_mathjax), page("shows_path", shows_path)]


def test_page_check_fails_when_a_figure_equation_or_widget_is_missing(small_book, chromium, tmp_path):
    _, html = small_book
    pages = _broken_copies(html, tmp_path)
    report = screenshot_book.run(tmp_path / "html", tmp_path / "shots", pages, timeout=30, chromium=chromium)
    assert not report["ok"]
    found = {p: " | ".join(r["problems"]) for p, r in report["pages"].items()}
    assert "figures missing: 0 shown, the executed notebook has 1" in found["no_figure"], found
    assert "widgets not rendered: 1 rendered of 2 views on the page (0 failed, 1 without a saved model)" \
        in found["no_model"], found
    assert "widgets not rendered: 1 rendered of 1 views on the page (0 failed, 0 without a saved model), the " \
        "executed notebook has 2" in found["no_view"], found
    assert "math not typeset" in found["no_mathjax"], found
    assert "the page shows the build machine's folders" in found["shows_path"], found
    for p in ("no_figure", "no_model", "no_view"):
        assert "math" not in found[p] and "folders" not in found[p], found  # each fails for its own reason only
