"""invnb.runs.code_fingerprint identifies the code: it changes when a module does."""

import re
import shutil
from pathlib import Path

import invnb.runs as runs


def test_code_fingerprint_changes_with_the_code(tmp_path):
    src = Path(runs.__file__).resolve().parents[1]
    copy = tmp_path / "invnb"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__"))
    original = runs.code_fingerprint()
    assert re.fullmatch(r"[0-9a-f]{12}", original)
    assert runs.code_fingerprint(copy) == original  # the same files elsewhere: the same fingerprint
    (copy / "__junk.txt").write_text("not python")
    assert runs.code_fingerprint(copy) == original  # only .py files count
    solver = copy / "inverse" / "solver.py"
    solver.write_text(solver.read_text().replace("max_iter: int = 300", "max_iter: int = 301", 1))
    changed = runs.code_fingerprint(copy)
    assert changed != original
    (copy / "extra.py").write_text("X = 1\n")
    assert runs.code_fingerprint(copy) not in (original, changed)  # a new module counts too
    (copy / "extra.py").unlink()
    (copy / "renamed.py").write_text("X = 1\n")
    # a module's name counts, not only its bytes
    renamed = runs.code_fingerprint(copy)
    (copy / "renamed.py").unlink()
    (copy / "extra2.py").write_text("X = 1\n")
    assert runs.code_fingerprint(copy) != renamed


def test_git_commit_names_head_and_marks_tracked_changes(tmp_path):
    import subprocess

    from invnb.runs import git_commit

    assert git_commit(tmp_path) is None  # not a git checkout
    run = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True, text=True)
    run("init", "-q")
    (tmp_path / "f.txt").write_text("a")
    run("add", "f.txt")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = run("rev-parse", "HEAD").stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "untracked.txt").write_text("x")  # untracked files do not count
    assert git_commit(tmp_path) == head
    (tmp_path / "f.txt").write_text("b")
    assert git_commit(tmp_path) == head + "+dirty"


def test_worker_cached_keeps_the_most_recently_used_and_builds_each_once(monkeypatch):
    """The cache holds at most WORKER_CACHE_SIZE objects; a hit refreshes an entry, the least
    recently used one is dropped (and built again when asked for)."""
    from collections import OrderedDict

    import invnb.runs.tasks as tasks

    monkeypatch.setattr(tasks, "_WORKER_CACHE", OrderedDict())
    monkeypatch.setattr(tasks, "WORKER_CACHE_SIZE", 2)
    built = []

    def factory(name):
        built.append(name)
        return [name]

    a = runs.worker_cached(factory, "a")
    assert runs.worker_cached(factory, "a") is a and built == ["a"]
    runs.worker_cached(factory, "b")
    runs.worker_cached(factory, "a")  # a is now the most recent
    runs.worker_cached(factory, "c")  # drops b
    assert built == ["a", "b", "c"] and len(tasks._WORKER_CACHE) == 2
    assert runs.worker_cached(factory, "a") is a and built == ["a", "b", "c"]
    runs.worker_cached(factory, "b")
    assert built == ["a", "b", "c", "b"]
