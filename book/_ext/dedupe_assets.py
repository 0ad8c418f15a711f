"""Sphinx extension: drop repeated ``<script>`` entries from every HTML page.

With Jupyter Book 1.0.4 (Sphinx 7.4), sphinx-thebe and sphinx-togglebutton add
their inline configuration scripts twice to each page. The second copy of
sphinx-thebe's ``const THEBE_JS_URL = ...`` is a JavaScript ``SyntaxError``
("Identifier 'THEBE_JS_URL' has already been declared") in every page, which
the browser check of the book (``scripts/screenshot_book.py``) reports. This
extension keeps the first of identical script entries (same file or same
inline body, same attributes) and removes the rest.
"""

from __future__ import annotations


def _key(script) -> tuple:
    filename = getattr(script, "filename", str(script)) or ""  # inline scripts: None or ""
    attributes = getattr(script, "attributes", {}) or {}
    return filename, tuple(sorted((k, str(v)) for k, v in attributes.items()))


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """``html-page-context`` handler: remove repeated entries of ``script_files``."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique  # a new list: the builder's own list stays as it is


def setup(app):
    # priority 900 runs after the other handlers (default 500) added their per-page scripts
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
