"""Tests of the command line (python -m invnb): argument handling, and real papermill runs."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO as ROOT

from invnb.book.cli import main
from invnb.book.notebooks import (
    find_notebook,
    notebook_parameters,
    parse_param,
    run_notebook,
)

ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")


def cli(*args, timeout=600, env=None):
    return subprocess.run([sys.executable, "-m", "invnb", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**ENV, **(env or {})}, timeout=timeout)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mask_weight=0.7", ("mask_weight", 0.7)),
        ("n_images=500", ("n_images", 500)),
        ("device=cuda", ("device", "cuda")),
        ("mask_weights=[0.5, 2.0]", ("mask_weights", [0.5, 2.0])),
        ("checkpoint=None", ("checkpoint", None)),
        ("name='a b'", ("name", "a b")),
        ("path=/data/imagenet/val", ("path", "/data/imagenet/val")),
        ("expr=1+", ("expr", "1+")),
    ],
)
def test_parse_param_reads_python_literals_else_strings(text, expected):
    assert parse_param(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=3", "not a name=3"])
def test_parse_param_rejects_malformed(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="name=value"):
        parse_param(text)


def test_find_notebook_by_number_stem_and_path():
    by_number = find_notebook("00")
    assert by_number.name == "00_theory.ipynb"
    assert find_notebook("00_theory") == by_number
    assert find_notebook(str(by_number)) == by_number
    with pytest.raises(FileNotFoundError, match="known: 00_theory"):
        find_notebook("99")
    with pytest.raises(FileNotFoundError, match="no notebook at"):
        find_notebook("missing.ipynb")


def test_every_notebook_has_parameters_with_output_dir():
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks, "no notebooks found"
    for nb in notebooks:
        params = notebook_parameters(nb)
        assert "output_dir" in params, f"{nb.name}: its parameters cell needs an output_dir"
        assert "device" in params, f"{nb.name}: its parameters cell needs a device"


def test_unknown_parameter_is_refused_before_running(tmp_path):
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_imgs'\]"):
        run_notebook("00", tmp_path / "out", {"n_imgs": 3})
    assert not (tmp_path / "out" / "00_theory.ipynb").exists()


def test_help_documents_the_commands():
    proc = cli("--help")
    assert proc.returncode == 0
    for word in ("run", "list", "params", "--param", "resumed"):
        assert word in proc.stdout
    run_help = cli("run", "--help")
    assert run_help.returncode == 0 and "--out" in run_help.stdout and "NAME=VALUE" in run_help.stdout


def test_list_and_params(capsys):
    assert main(["list"]) == 0
    assert "00_theory" in capsys.readouterr().out.split()
    assert main(["params", "00"]) == 0
    out = capsys.readouterr().out
    assert "mask_weight = 1.0" in out and "output_dir =" in out


def test_bad_notebook_gives_exit_status_2():
    proc = cli("run", "99", "--out", "/tmp/never-used")
    assert proc.returncode == 2 and "no notebook match" in proc.stderr


@pytest.fixture(scope="module")
def explorer_run(tmp_path_factory):
    """One CLI run of the explorer chapter with non-default parameters (2 images, one weight)."""
    out = tmp_path_factory.mktemp("cli") / "explorer"
    proc = cli("run", "04", "--param", "n_images=2", "--param", "mask_weights=[1.5]", "--param", "models=['smallvgg']",
               "--out", str(out), "--no-progress")
    return out, proc


def test_papermill_run_with_non_default_parameters(explorer_run):
    """The parameters reach the notebook, and its results land in --out."""
    out, proc = explorer_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    executed = nbformat.read(out / "04_explorer.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert f'output_dir = "{out}"' in injected[0].source  # defaulted to --out
    assert not any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == 2 and [row["mask_weight"] for row in summary["rows"]] == [1.5]
    assert sorted(p.name for p in (out / "items").glob("*/*.npz")) == ["img0-pred-mw1.5.npz", "img1-pred-mw1.5.npz"]


def test_cli_run_resumes_finished_items(explorer_run):
    """A second run into the same folder computes only the new image and leaves the others alone."""
    out, first = explorer_run
    assert first.returncode == 0, first.stderr[-3000:]
    stored = sorted((out / "items").glob("*/*.npz"))
    mtimes = {p.name: p.stat().st_mtime_ns for p in stored}
    second = cli("run", "04", "--param", "n_images=3", "--param", "mask_weights=[1.5]", "--param", "models=['smallvgg']",
                 "--out", str(out), "--no-progress")
    assert second.returncode == 0, second.stderr[-3000:]
    executed = nbformat.read(out / "04_explorer.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "1 inverses computed, 2 reused" in text
    assert {p.name: p.stat().st_mtime_ns for p in stored} == mtimes  # not rewritten
    assert len(list((out / "items").glob("*/*.npz"))) == 3


# Chapters 00-03 with small non-default parameters: each run must finish without an error
# cell and write results that reflect the parameters it was given.
CHAPTER_RUNS = {
    "00": (["mask_weights=[0.0, 2.5]", "n_train=300"],
           lambda out: [r["mask_weight"] for r in json.loads((out / "summary.json").read_text())["sweep"]]
           == [0.0, 2.5, "auto"]),  # the weights given, then the default's per-input choice
    "01": (["n_images=4", "batch_size=2", "settings=['default']", "mask_weight=1.5",
            "methods=['saliency', 'grad_cam']", "n_show=2"],
           lambda out: (lambda s: s["n_images"] == 4 and list(s["settings"]) == ["default"])(
               json.loads((out / "summary.json").read_text()))),
    "02": (["n_images=4", "batch_size=2", "methods=['saliency']", "mask_weights=[2.0]", "paper_point=False"],
           lambda out: (lambda s: s["n_images"] == 4 and [r["method"] for r in s["table"]] == ["inverse", "saliency"])(
               json.loads((out / "results.json").read_text()))),
    # 03: the paper's weights on Set5 when the data folder has them, else the embedded VDSR and images
    "03": (["crop=32", "n_per_dataset=1", "mask_weight=2.0"],
           lambda out: [v["n_images"] for v in json.loads((out / "summary.json").read_text()).values()] == [1]),
}


@pytest.mark.parametrize("chapter", sorted(CHAPTER_RUNS))
def test_each_chapter_runs_with_non_default_parameters(chapter, tmp_path):
    params, check = CHAPTER_RUNS[chapter]
    out = tmp_path / chapter
    args = [a for p in params for a in ("--param", p)]
    proc = cli("run", chapter, *args, "--out", str(out), "--no-progress", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    executed = nbformat.read(next(out.glob(f"{chapter}_*.ipynb")), as_version=4)
    assert not any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))
    assert check(out)


def _slow_notebook(path):
    """A notebook that stores one item every 0.4 s into a ResultStore and writes its pid."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("output_dir = '.'\nn_items = 200")
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import os, time\nfrom pathlib import Path\nfrom invnb.runs import ResultStore, run_items\n"
        "Path(output_dir, 'kernel.pid').write_text(str(os.getpid()))\n"
        "def fn(key):\n    time.sleep(0.4)\n    return {'v': int(key[4:])}\n"
        "run_items([f'item{i:03d}' for i in range(n_items)], fn, ResultStore(Path(output_dir) / 'items'), progress=False)\n"
    )
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stopping_the_cli_stops_its_kernel_and_keeps_stored_items(tmp_path, signum):
    import time

    nb, out = tmp_path / "slow.ipynb", tmp_path / "out"
    _slow_notebook(nb)
    proc = subprocess.Popen([sys.executable, "-m", "invnb", "run", str(nb), "--out", str(out), "--no-progress"],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    items = out / "items"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(items.glob("*.npz"))) < 2:
        time.sleep(0.05)
    assert len(list(items.glob("*.npz"))) >= 2, "the kernel never started writing items"
    kernel_pid = int((out / "kernel.pid").read_text())
    t0 = time.time()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=20)
    stop_s = time.time() - t0
    assert proc.returncode == 128 + signum, err[-2000:]
    assert "stopped by" in err and "resume" in err
    print(f"stopped in {stop_s:.2f} s")  # bounded by communicate's timeout; no wall-clock target in a test
    assert not _alive(kernel_pid), "the kernel is still running after the CLI stopped"
    stored = sorted(p.name for p in items.glob("*.npz"))
    time.sleep(1.0)
    assert sorted(p.name for p in items.glob("*.npz")) == stored  # nothing written after the stop
    from invnb.runs import ResultStore

    store = ResultStore(items)
    assert store.keys() == [p[:-4] for p in stored]  # every stored item reads back whole
    assert len(stored) < 200


# --- documented commands, dry-run -----------------------------------------------------------

import re as _re
import shlex as _shlex

_TEMPLATE = _re.compile(r"\bNOTEBOOK\b|\bNN\b|NAME=VALUE|name=value|\.\.\.")


def documented_commands():
    """Every ``python -m invnb ...`` command in README.md and book/*.md, with shell loops expanded.

    Continuation lines are joined; inside ``for v in a b; do ... done`` the command is
    yielded once per value of ``$v``. Returns (source, command line) pairs.
    """
    out = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]:
        text = doc.read_text().replace("\\\n", " ")
        loop_vars = {}
        for line in text.splitlines():
            loop = _re.match(r"\s*for (\w+) in ([^;]+); do", line)
            if loop:
                loop_vars[loop.group(1)] = loop.group(2).split()
            if _re.match(r"\s*done\b", line):
                loop_vars.clear()
            for match in _re.finditer(r"python -m invnb(?:[^`|\n])*", line):
                cmd = match.group(0).split("#")[0].strip()
                variants = [cmd]
                for var, values in loop_vars.items():
                    if f"${var}" in cmd:
                        variants = [v.replace(f"${var}", value) for v in variants for value in values]
                out += [(f"{doc.name}", v) for v in variants]
    return out


def test_the_docs_have_commands_to_check():
    cmds = documented_commands()
    runs = [c for _, c in cmds if " run " in c and not _TEMPLATE.search(c)]
    assert len(runs) >= 4, cmds  # the Reproduce chapter's 01 (x2 settings), 02 and 03 commands


@pytest.mark.parametrize("source, command", documented_commands(), ids=lambda v: v[:60] if isinstance(v, str) else None)
def test_every_documented_command_is_accepted(source, command, capsys, tmp_path):
    """Dry-run each documented command: its notebook and every parameter name must exist."""
    if _TEMPLATE.search(command):
        pytest.skip(f"syntax template, not a command: {command}")
    argv = _shlex.split(command)[3:]  # after "python -m invnb"
    if argv and argv[0] == "run":
        argv += ["--dry-run"]
    try:
        status = main(argv)
    except SystemExit as exit_:  # --help
        status = exit_.code
    out, err = capsys.readouterr()
    assert status == 0, f"{source}: `{command}` failed: {err}"
    assert "note:" not in out, f"{source}: `{command}`: {out}"


def test_tuple_assigned_parameters_are_listed_and_accepted(capsys, tmp_path):
    params = notebook_parameters(find_notebook("01"))
    assert params["start"]["default"] == "1" and params["end"]["default"] == "50001" and params["stride"]["default"] == "10"
    assert main(["params", "01"]) == 0
    out = capsys.readouterr().out
    assert "start = 1" in out and "stride = 10" in out
    assert main(["run", "01", "--param", "start=5", "--param", "end=9", "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "start = 5" in out and "end = 9" in out
    assert not (tmp_path / "o").exists()  # nothing created, nothing run


def test_dry_run_refuses_unknown_names_and_notes_type_mismatches(capsys, tmp_path):
    assert main(["run", "01", "--param", "setting=paper", "--out", str(tmp_path), "--dry-run"]) == 2
    assert "unknown parameter(s) ['setting']" in capsys.readouterr().err
    assert main(["run", "01", "--param", "settings=paper", "--out", str(tmp_path), "--dry-run"]) == 0
    assert "note: settings: the default is" in capsys.readouterr().out


def test_list_without_notebooks_says_so_and_fails(monkeypatch, tmp_path, capsys):
    import invnb.book.cli as cli_module

    monkeypatch.setattr(cli_module, "NOTEBOOK_DIR", tmp_path / "nothing")
    assert main(["list"]) != 0
    assert "no notebooks found" in capsys.readouterr().err
