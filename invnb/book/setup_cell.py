"""The set-up lines that open every chapter's import cell, and the book's one repository setting.

A chapter runs in a clone (``make book`` / ``make test`` installed the package
into ``.venv``) or in a hosted notebook (Colab, Binder) that has only the
``.ipynb`` file. The set-up lines do nothing in the first case; in the second
they clone the repository named by ``repository.url`` in ``_config.yml`` and
install it, so the bundled results (``data/results/``) come along. The same
setting drives the book's repository and launch buttons
(``book/_ext/reader_view.py``); ``tests/book/test_reader_view.py`` checks
that every chapter's set-up lines name it.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["SETUP_END", "repository_url", "setup_lines", "with_setup"]

#: The comment that closes the set-up lines; the chapter's imports follow it.
SETUP_END = "# --- end of set-up ---"

_TEMPLATE = '''\
# Set-up. In a clone, `make book` or `make test` installed invnb and nothing happens here.
# In a hosted notebook (Colab, Binder) this clones the repository and installs it.
import importlib.util
import subprocess
import sys

REPOSITORY = "{url}"
if importlib.util.find_spec("invnb") is None:
    if not REPOSITORY:
        raise ModuleNotFoundError("invnb is not installed: clone the repository and run `make book`")
    subprocess.run(["git", "clone", "--depth", "1", REPOSITORY, "invnb-src"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "invnb-src"], check=True)
    sys.path.insert(0, "invnb-src")
{end}
'''


def repository_url(config: str | Path) -> str:
    """The book's repository URL: ``repository.url`` of a Jupyter Book ``_config.yml``.

    Parameters
    ----------
    config : str or Path
        Path to ``_config.yml``.

    Returns
    -------
    str
        The URL, ``""`` when the setting is empty or missing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "_config.yml"
    >>> _ = p.write_text('repository:\\n  url: "https://github.com/o/r"\\n')
    >>> repository_url(p)
    'https://github.com/o/r'
    """
    text = Path(config).read_text()
    block = re.search(r"^repository:\s*\n((?:[ \t]+.*\n?)*)", text, re.M)
    if block is None:
        return ""
    url = re.search(r"^[ \t]+url:[ \t]*(.*)$", block.group(1), re.M)
    return "" if url is None else url.group(1).split(" #")[0].strip().strip("\"'")


def setup_lines(url: str) -> str:
    """The set-up lines for a repository URL (``""``: none), ending with :data:`SETUP_END`.

    Examples
    --------
    >>> 'REPOSITORY = "https://github.com/o/r"' in setup_lines("https://github.com/o/r")
    True
    """
    if '"' in url or "\n" in url:
        raise ValueError(f"not a repository URL: {url!r}")
    return _TEMPLATE.format(url=url, end=SETUP_END)


def with_setup(source: str, url: str) -> str:
    """An import cell's source with its set-up lines (re)written for ``url``.

    Examples
    --------
    >>> cell = with_setup("import json\\n", "")
    >>> cell.endswith(SETUP_END + "\\nimport json\\n"), with_setup(cell, "") == cell
    (True, True)
    """
    if SETUP_END in source:
        source = source.split(SETUP_END, 1)[1].lstrip("\n")
    return setup_lines(url) + source
