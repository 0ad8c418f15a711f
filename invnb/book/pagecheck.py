"""Open the built book in headless Chromium, screenshot every chapter and check it rendered.

For each page of ``_toc.yml`` (as built into ``_build/html``) the script loads
the page from disk in a fresh, offline headless Chromium, waits for MathJax and
the ipywidgets manager, saves a full-page screenshot, and checks:

* figures: every ``<img>`` has a non-zero natural size (none broken); a page
  made from a notebook shows at least one output figure, and at least as many
  as its executed notebook (``_build/jupyter_execute/<page>.ipynb``) has image
  outputs;
* math: the page has as many typeset equations as its HTML has math
  elements (none dropped), every one typeset by MathJax, and no raw ``$$`` /
  ``\\[`` is left in the text;
* widgets: every widget view of the executed notebook is on the page and
  rendered into widgets (not "Error displaying widget"), and the widgets'
  own images loaded;
* fonts: every web font the page's style sheets declare (the widget manager
  inserts its own at run time) is a file on disk, whether or not this load
  asked for it;
* paths: the page's text names no folder of the build machine (the
  repository, the built book, the home folder);
* offline: no request left the machine (anything but ``file:``, ``data:``,
  ``blob:``), no request failed and no JavaScript error was thrown. The
  check waits until the page's fonts are loaded and no request is pending
  before it reads the network log, so a late request (a web font asked for
  when a widget is laid out) is judged the same way on every run.

It talks to Chromium over the DevTools protocol through a pipe
(``--remote-debugging-pipe``), so it needs nothing but the ``chromium``
binary (Debian package ``chromium``) and the standard library.

Usage::

    python scripts/screenshot_book.py                    # _build/html -> _build/screenshots
    python scripts/screenshot_book.py --html DIR --out DIR --pages intro notebooks/04_explorer

The report (``report.json`` in the output folder) lists each page's numbers;
the exit status is 1 if any check failed, 2 if the book or Chromium is missing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from invnb.paths import SOURCE_ROOT as ROOT  # noqa: E402

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    "--no-default-browser-check", "--disable-features=Translate,MediaRouter,OptimizationHints",
    # anything that is not on disk fails at once instead of waiting on a network
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
    "--remote-debugging-pipe",
]

# Runs in the page after load: waits for MathJax and the widget manager, then measures.
_PROBE = r"""
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const deadline = Date.now() + %(timeout_ms)d;
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; } catch (e) {}
  }
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
  // models in the saved state: a view of a model that is not there is never rendered
  const models = new Set();
  for (const st of document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]')) {
    try { Object.keys(JSON.parse(st.textContent).state || {}).forEach((k) => models.add(k)); } catch (e) {}
  }
  const orphan = (s) => { try { return !models.has(JSON.parse(s.textContent).model_id); } catch (e) { return true; } };
  // the manager renders a view into a sibling of its script: widget nodes (.lm-Widget),
  // or, when the model is missing, a node that says "Error displaying widget"
  const failed = (s) => /Error displaying widget/.test(s.parentElement.textContent);
  const done = (s) => orphan(s) || failed(s) || s.parentElement.querySelector('.lm-Widget, .p-Widget') !== null;
  const rendered = () => Array.from(views).filter((s) => done(s) && !failed(s) && !orphan(s)).length;
  while (views.length && Array.from(views).some((s) => !done(s)) && Date.now() < deadline) await sleep(100);
  // let widget images decode
  while (Date.now() < deadline) {
    const pending = Array.from(document.images).filter((i) => !i.complete);
    if (!pending.length) break;
    await sleep(100);
  }
  // web fonts are fetched when text that uses them is laid out (widget icons, MathJax)
  if (document.fonts && document.fonts.ready) await document.fonts.ready;
  // every web font the page's readable style sheets declare (the widget manager inserts its
  // own, with URLs it computes at run time); the browser fetches only those it needs, and
  // which of two declarations of one font it picks can vary, so the files are checked apart
  const fontUrls = new Set();
  for (const sheet of document.styleSheets) {
    let rules;
    try { rules = sheet.cssRules; } catch (e) { continue; }  // linked sheets under file: are opaque
    for (const rule of rules) {
      if (!(rule instanceof CSSFontFaceRule)) continue;
      for (const m of rule.style.getPropertyValue('src').matchAll(/url\(\s*["']?([^"')]+)["']?\s*\)/g)) {
        fontUrls.add(new URL(m[1], sheet.href || document.baseURI).href);
      }
    }
  }
  const article = document.querySelector('main') || document.body;
  const imgs = Array.from(article.querySelectorAll('img'));
  const visible = (el) => el.getClientRects().length > 0;
  const outputImgs = imgs.filter((i) => i.closest('.cell_output, .output, figure') && !i.closest('.jupyter-widgets'));
  const widgetImgs = imgs.filter((i) => i.closest('.jupyter-widgets'));
  const maths = Array.from(article.querySelectorAll('.math, div.math, span.math'));
  const untypeset = maths.filter((m) => !m.querySelector('mjx-container') && !m.closest('mjx-container'));
  const mathErrors = Array.from(article.querySelectorAll('mjx-merror')).map((e) => e.textContent.slice(0, 80));
  // raw TeX delimiters left in the visible text (code blocks excluded)
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  let raw = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest('pre, code, script, style, mjx-container, .highlight')) continue;
    const t = n.textContent;
    if (/\$\$|\\\[|\\\(|\\begin\{/.test(t)) raw.push(t.trim().slice(0, 80));
  }
  return {
    title: document.title,
    images: imgs.length,
    broken_images: imgs.filter((i) => i.complete && i.naturalWidth === 0 && visible(i)).map((i) => i.src.slice(0, 120)),
    output_figures: outputImgs.filter((i) => i.naturalWidth > 0).length,
    math_elements: maths.length,
    mathjax_containers: article.querySelectorAll('mjx-container').length,
    untypeset_math: untypeset.length,
    math_errors: mathErrors.slice(0, 5),
    raw_tex: raw.slice(0, 5),
    widget_views: views.length,
    widget_views_rendered: rendered(),
    widget_views_failed: Array.from(views).filter(failed).length,
    widget_views_without_model: Array.from(views).filter(orphan).length,
    widget_images: widgetImgs.length,
    widget_images_loaded: widgetImgs.filter((i) => i.naturalWidth > 0).length,
    font_urls: Array.from(fontUrls),
    widget_state_scripts: document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]').length,
  };
})()
"""


class DevTools:
    """Minimal Chrome DevTools protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, chromium: str, profile: str, extra_flags: list[str] | None = None):
        cmd_r, self._cmd_w = os.pipe()   # we write commands, chromium reads fd 3
        self._out_r, out_w = os.pipe()   # chromium writes fd 4, we read

        def child_fds():
            a, b = os.dup(cmd_r), os.dup(out_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.closerange(5, 4096)

        args = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *(extra_flags or []), "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, close_fds=False, preexec_fn=child_fds)
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, timeout: float) -> dict:
        import select

        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._out_r], [], [], timeout)
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
                raise RuntimeError(f"Chromium closed the DevTools pipe. {err[-2000:]}")
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        """Send a command and return its result; events that arrive meanwhile go to ``events``."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        end = time.time() + timeout
        while True:
            reply = self._read_message(max(0.1, end - time.time()))
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str | None, timeout: float) -> dict:
        """Wait for an event (already received or coming)."""
        end = time.time() + timeout
        while True:
            for ev in self.events:
                if ev.get("method") == method and ev.get("sessionId") == session:
                    self.events.remove(ev)
                    return ev
            self.events.append(self._read_message(max(0.1, end - time.time())))

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._out_r)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def toc_pages(root: Path = ROOT) -> list[tuple[str, str]]:
    """(page path without suffix, source suffix) of every file in ``_toc.yml``, in order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in toc.items() if k != "root"})
    out = []
    for f in files:
        f = str(Path(f).with_suffix(""))
        suffix = ".ipynb" if (root / f"{f}.ipynb").exists() else ".md"
        out.append((f, suffix))
    return out


# myst-nb's render priority for the HTML builder (myst_nb.core.render.get_mime_priority("html", [])):
# an output shows its first mime type in this list
HTML_MIME_PRIORITY = [
    "application/vnd.jupyter.widget-view+json", "application/javascript", "text/html", "image/svg+xml",
    "image/png", "image/gif", "image/jpeg", "text/markdown", "text/latex", "text/plain",
]
_HIDDEN_TAGS = {"remove-output", "remove-cell", "remove_output", "remove_cell"}


def expected_outputs(html_dir: Path, page: str) -> dict | None:
    """Figures and widget views a notebook page must show: its executed notebook's outputs.

    Reads ``<html_dir>/../jupyter_execute/<page>.ipynb`` (written by the build); returns
    ``{"figures": n, "widget_views": n}``, or None when there is no executed notebook.
    """
    path = html_dir.parent / "jupyter_execute" / f"{page}.ipynb"
    if not path.is_file():
        return None
    nb = json.loads(path.read_text())
    counts = {"figures": 0, "widget_views": 0}
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code" or _HIDDEN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            shown = next((m for m in HTML_MIME_PRIORITY if m in data), None)
            if shown and shown.startswith("image/"):
                counts["figures"] += 1
            elif shown == "application/vnd.jupyter.widget-view+json":
                counts["widget_views"] += 1
    return counts


def _settle(dt: DevTools, session: str, timeout: float) -> None:
    """Wait until the page's fonts are loaded and no network request is pending (at most `timeout` s)."""
    end = time.time() + timeout
    while time.time() < end:
        dt.send("Runtime.evaluate", {"expression": "document.fonts ? document.fonts.ready.then(() => 1) : 1",
                                     "awaitPromise": True, "returnByValue": True},
                session=session, timeout=max(1.0, end - time.time()))
        events = [e for e in dt.events if e.get("sessionId") == session]
        started = {e["params"]["requestId"] for e in events if e.get("method") == "Network.requestWillBeSent"}
        ended = {e["params"]["requestId"] for e in events
                 if e.get("method") in ("Network.loadingFinished", "Network.loadingFailed")}
        if not started - ended:
            return
        time.sleep(0.2)


def check_page(dt: DevTools, url: str, shot: Path, width: int, timeout: float) -> dict:
    """Load one page in a new tab, screenshot it, return the measurements."""
    target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    dt.events.clear()
    for domain in ("Page", "Runtime", "Network", "Log"):
        dt.send(f"{domain}.enable", session=session)
    dt.send("Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
    dt.send("Page.navigate", {"url": url}, session=session)
    dt.wait_event("Page.loadEventFired", session, timeout)
    probe = dt.send("Runtime.evaluate", {"expression": _PROBE % {"timeout_ms": int(timeout * 1000)},
                                         "awaitPromise": True, "returnByValue": True},
                    session=session, timeout=timeout + 10)
    if "exceptionDetails" in probe:
        raise RuntimeError(f"the page probe failed on {url}: {probe['exceptionDetails']}")
    result = probe["result"]["value"]
    metrics = dt.send("Page.getLayoutMetrics", session=session)
    height = max(100, int(min(metrics.get("cssContentSize", metrics.get("contentSize"))["height"], 12000)))
    # A viewport as tall as the page, then a plain screenshot: captureBeyondViewport
    # re-lays out pages with wide (scrollable) code blocks shifted to the left.
    dt.send("Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
    time.sleep(0.5)  # let the layout settle
    png = dt.send("Page.captureScreenshot", {
        "format": "png", "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}, session=session)
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.write_bytes(base64.b64decode(png["data"]))
    # the screenshot's tall viewport lays out the whole page: wait for what that asks for
    # (fonts, images) before reading the network log, so every run sees the same requests
    _settle(dt, session, timeout=min(timeout, 15))
    events = [e for e in dt.events if e.get("sessionId") == session]
    requests = {e["params"]["requestId"]: e["params"]["request"]["url"]
                for e in events if e.get("method") == "Network.requestWillBeSent"}
    result["external_requests"] = sorted({u for u in requests.values()
                                          if not u.startswith(("file:", "data:", "blob:", "about:"))})
    result["failed_requests"] = sorted({f"{requests.get(e['params']['requestId'], '?')[:150]} "
                                        f"({e['params'].get('errorText', '')})"
                                        for e in events if e.get("method") == "Network.loadingFailed"})
    result["js_errors"] = [e["params"]["exceptionDetails"].get("exception", {}).get("description", "")[:300]
                           or e["params"]["exceptionDetails"].get("text", "")
                           for e in events if e.get("method") == "Runtime.exceptionThrown"]
    result["console_errors"] = [e["params"]["entry"]["text"][:300] for e in events
                                if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]
    # the builder's folders must not show on the page (a printed absolute path)
    local = sorted({str(ROOT), str(html_dir_of(url)), str(Path.home())} - {"/", ""})
    shown = dt.send("Runtime.evaluate", {
        "expression": f"(() => {{ const t = document.body.innerText; return {json.dumps(local)}.filter((s) => t.includes(s)); }})()",
        "returnByValue": True}, session=session)
    result["machine_paths"] = shown["result"].get("value") or []
    result["screenshot"] = str(shot)
    result["height"] = height
    dt.send("Target.closeTarget", {"targetId": target})
    return result


def html_dir_of(url: str) -> Path:
    """The folder of the built book that holds a page (its ``_static`` sibling), from the page's URL."""
    path = _file_of(url).parent
    for folder in (path, *path.parents):
        if (folder / "_static").is_dir():
            return folder
    return path


def _file_of(url: str) -> Path:
    """The local path of a ``file:`` URL (query and fragment dropped)."""
    from urllib.parse import unquote, urlsplit

    return Path(unquote(urlsplit(url).path))


def problems(page: str, suffix: str, r: dict, expected: dict | None = None) -> list[str]:
    """The failed checks of one page's measurements (`expected`: see :func:`expected_outputs`)."""
    out = []
    expected = expected or {}
    if r["broken_images"]:
        out.append(f"broken images: {r['broken_images']}")
    if suffix == ".ipynb" and r["output_figures"] == 0:
        out.append("a notebook chapter without any rendered output figure")
    if r["output_figures"] < expected.get("figures", 0):
        out.append(f"figures missing: {r['output_figures']} shown, the executed notebook has {expected['figures']}")
    if r["untypeset_math"] or r["raw_tex"] or r["mathjax_containers"] < r["math_elements"]:
        out.append(f"math not typeset: {r['untypeset_math']} of {r['math_elements']} element(s), "
                   f"{r['mathjax_containers']} typeset, raw TeX {r['raw_tex']}")
    if r["math_errors"]:
        out.append(f"math errors (MathJax could not typeset): {r['math_errors']}")
    if r["widget_views_rendered"] < max(r["widget_views"], expected.get("widget_views", 0)):
        out.append(f"widgets not rendered: {r['widget_views_rendered']} rendered of {r['widget_views']} views on "
                   f"the page ({r['widget_views_failed']} failed, {r['widget_views_without_model']} without a "
                   f"saved model), the executed notebook has {expected.get('widget_views', '?')}")
    if r["widget_images"] and r["widget_images_loaded"] < r["widget_images"]:
        out.append(f"widget images not loaded: {r['widget_images_loaded']}/{r['widget_images']}")
    missing_fonts = sorted(u for u in r.get("font_urls", []) if u.startswith("file:") and not _file_of(u).is_file())
    if missing_fonts:
        out.append(f"web fonts not on disk: {missing_fonts[:5]}")
    if r.get("machine_paths"):
        out.append(f"the page shows the build machine's folders: {r['machine_paths']}")
    if r["external_requests"]:
        out.append(f"requests leaving the machine: {r['external_requests']}")
    if r["failed_requests"]:
        out.append(f"failed requests: {r['failed_requests']}")
    if r["js_errors"] or r["console_errors"]:
        out.append(f"JavaScript errors: {r['js_errors'] + r['console_errors']}")
    return out


def run(html_dir: Path, out_dir: Path, pages: list[tuple[str, str]], width: int = 1280,
        timeout: float = 60, chromium: str | None = None) -> dict:
    """Screenshot and check `pages`; returns the report (also written to ``out_dir/report.json``)."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found: install it (Debian: apt-get install -y chromium)")
    report = {"html": str(html_dir), "pages": {}, "ok": True}
    with tempfile.TemporaryDirectory(prefix="invnb-chromium-") as profile:
        dt = DevTools(chromium, profile)
        try:
            dt.send("Target.setDiscoverTargets", {"discover": False})
            for page, suffix in pages:
                html = html_dir / f"{page}.html"
                if not html.is_file():
                    report["pages"][page] = {"problems": [f"{html} was not built"]}
                    report["ok"] = False
                    continue
                shot = out_dir / (page.replace("/", "__") + ".png")
                r = check_page(dt, html.resolve().as_uri(), shot, width, timeout)
                r["expected"] = expected_outputs(html_dir, page) if suffix == ".ipynb" else None
                r["problems"] = problems(page, suffix, r, r["expected"])
                report["ok"] &= not r["problems"]
                report["pages"][page] = r
        finally:
            dt.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="the built book")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "screenshots", help="screenshots + report.json")
    parser.add_argument("--root", type=Path, default=ROOT, help="book source folder (for _toc.yml)")
    parser.add_argument("--pages", nargs="*", help="pages to check (default: every page of _toc.yml)")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS pixels")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for one page")
    parser.add_argument("--chromium", default=None, help="browser binary (default: chromium on PATH)")
    args = parser.parse_args(argv)
    all_pages = toc_pages(args.root)
    pages = all_pages if not args.pages else [p for p in all_pages if p[0] in args.pages]
    if args.pages and len(pages) != len(args.pages):
        print(f"unknown page(s); the book has: {[p for p, _ in all_pages]}", file=sys.stderr)
        return 2
    if not args.html.is_dir():
        print(f"no built book at {args.html}; run `make book` first", file=sys.stderr)
        return 2
    try:
        report = run(args.html, args.out, pages, args.width, args.timeout, args.chromium)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for page, r in report["pages"].items():
        status = "ok" if not r["problems"] else "FAIL"
        if "images" in r:
            print(f"{status:4s} {page}: {r['output_figures']} figure(s), {r['mathjax_containers']} typeset "
                  f"math, {r['widget_views_rendered']}/{r['widget_views']} widget views, "
                  f"{r['widget_images_loaded']} widget image(s) -> {r['screenshot']}")
        for p in r["problems"]:
            print(f"     {p}")
    print(f"report: {args.out / 'report.json'}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
