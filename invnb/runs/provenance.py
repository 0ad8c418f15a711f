"""Where a result came from: configuration hash, git commit, code fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

__all__ = ["config_hash", "git_commit", "code_fingerprint"]


def config_signature(path: Path) -> tuple | None:
    """(size, mtime_ns, inode) of a file, or None if it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def config_hash(config: Mapping[str, Any]) -> str:
    """A short, stable name for a JSON-serialisable config (12 hex digits of its SHA-256).

    Key order does not matter; ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` give the same name.
    """
    canonical = json.dumps(dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def git_commit(root: str | os.PathLike | None = None) -> str | None:
    """HEAD commit of the git checkout at `root` (default: invnb's source root), ``+dirty`` when
    tracked files have uncommitted changes; None outside git or without git."""
    import subprocess

    from invnb.paths import SOURCE_ROOT

    where = str(SOURCE_ROOT if root is None else root)
    try:
        head = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def code_fingerprint(root: str | Path | None = None) -> str:
    """12 hex digits identifying the installed invnb source (all its ``.py`` files, every subpackage).

    Put it in a run's config so that results computed by other code are never
    reused: a resumed run must compute every item with the same code.

    Parameters
    ----------
    root : path, optional
        The package folder to fingerprint (default: the installed ``invnb``).
        Each file counts with its path relative to `root` and its bytes.
    """
    root = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]
