"""Sphinx extension: what a reader of the built book sees, from one setting each.

* **Repository link and launch buttons** follow ``repository.url`` in
  ``_config.yml`` (Jupyter Book passes it on as the theme option
  ``repository_url``). With a URL, every page gets the repository and issues
  buttons, Binder and Colab launch buttons, and thebe points at that
  repository. Without one, none of them is shown and sphinx-thebe's per-page
  configuration (whose default names a placeholder Binder repository) is not
  written.
* **nbval markers** (``# NBVAL_CHECK_OUTPUT``, ``# NBVAL_SKIP``, ...) tell the
  tests which outputs to compare; they are removed from the code shown on the
  pages.
"""

from __future__ import annotations

import re

from docutils import nodes

#: The launch services offered when ``repository.url`` is set.
BINDERHUB_URL = "https://mybinder.org"
COLAB_URL = "https://colab.research.google.com"

NBVAL_LINE = re.compile(r"^[ \t]*#[ \t]*NBVAL_\w+[^\n]*(\n|$)", re.M)


def strip_nbval(text: str) -> str:
    """Remove the lines that hold only an nbval marker comment.

    Examples
    --------
    >>> strip_nbval("# NBVAL_CHECK_OUTPUT\\nprint(1)\\n")
    'print(1)\\n'
    """
    return NBVAL_LINE.sub("", text)


def _strip_nbval_markers(app, doctree, docname) -> None:
    for block in doctree.findall(nodes.literal_block):
        text = block.astext()
        if "NBVAL_" not in text:
            continue
        clean = strip_nbval(text)
        block.children = [nodes.Text(clean)]
        block.rawsource = clean


def repository_options(url: str, branch: str = "main") -> dict:
    """The theme options that the one repository setting switches on or off.

    Examples
    --------
    >>> repository_options("")["use_repository_button"]
    False
    >>> repository_options("https://github.com/o/r")["launch_buttons"]["colab_url"]
    'https://colab.research.google.com'
    """
    on = bool(url)
    return {
        "use_repository_button": on,
        "use_issues_button": on,
        "launch_buttons": ({"binderhub_url": BINDERHUB_URL, "colab_url": COLAB_URL,
                            "notebook_interface": "jupyterlab", "thebe": False} if on else {}),
        "repository_branch": branch,
    }


def _configure_repository(app, config) -> None:
    theme = dict(config.html_theme_options or {})
    url = (theme.get("repository_url") or "").strip()
    theme.update(repository_options(url, theme.get("repository_branch") or "main"))
    theme["repository_url"] = url
    config.html_theme_options = theme
    if url:
        config.thebe_config = {**(config.thebe_config or {}), "repository_url": url,
                               "repository_branch": theme["repository_branch"]}
        return
    # no repository: sphinx-thebe would write its placeholder Binder repository into every page
    listeners = app.events.listeners.get("doctree-resolved", [])
    for listener in list(listeners):
        if getattr(listener.handler, "__module__", "") == "sphinx_thebe":
            app.disconnect(listener.id)


def setup(app):
    app.connect("config-inited", _configure_repository, priority=900)
    app.connect("doctree-resolved", _strip_nbval_markers)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
