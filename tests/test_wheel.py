"""A non-editable install works: the wheel carries every file the package reads.

Builds the wheel from a copy of the sources (``pip wheel --no-deps
--no-build-isolation``, so nothing is downloaded and the checkout gets no
``build/`` folder), installs it into a fresh virtual environment without pip's
dependency resolution, gives that environment the running interpreter's
site-packages (torch and the rest) through a ``.pth`` file, and there runs the
README's five-line example and ``python -m invnb list`` (which must say that
no notebooks were found and fail). Runs in CI (``make test``); about 30-60 s.
"""

import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import REPO as ROOT

from invnb.book import cli

# what `pip wheel` reads from the checkout (pyproject.toml names the rest)
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE")


def _run(cmd, **kwargs):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def readme_example() -> str:
    """The first ```python block of README.md, as written there."""
    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    assert blocks, "README.md has no ```python block"
    return blocks[0]


def _package_files() -> set[str]:
    """Every file of the source package (no bytecode), as paths inside a wheel."""
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "invnb").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT / "invnb", src / "invnb", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in BUILD_INPUTS:
        shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir",
          "--disable-pip-version-check", "-q", "-w", tmp / "dist", src])
    wheels = list((tmp / "dist").glob("invnb-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_env(wheel, tmp_path_factory):
    """(python of a fresh venv with only the wheel installed, environment variables, working folder)."""
    tmp = tmp_path_factory.mktemp("venv")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "--disable-pip-version-check", "-q", wheel])
    # the dependencies (torch, ...) from this interpreter, without re-downloading them; a
    # .pth line only appends the folder to sys.path (its own .pth files, such as the
    # editable install's, are not processed), after the venv's own site-packages
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    deps = [p for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"]]) if Path(p).is_dir()]
    (Path(purelib) / "_invnb_test_deps.pth").write_text("\n".join(deps) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONNOUSERSITE="1")
    work = tmp / "work"  # not the checkout: `python -m` puts the working folder first on sys.path
    work.mkdir()
    return python, env, work, venv


def test_wheel_carries_every_package_file(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    missing = sorted(_package_files() - names)
    assert not missing, f"the wheel lacks {missing}: list them in [tool.setuptools.package-data]"
    for needed in ("invnb/data/embedded_vgg.pt", "invnb/data/embedded_vgg.json",
                   "invnb/data/vdsr_pytorch_vdsr_epoch50.pt", "invnb/data/vdsr_pytorch_vdsr_epoch50.json",
                   "invnb/data/vdsr_pytorch_vdsr_LICENSE"):
        assert needed in names
    licenses = {Path(n).name for n in names if "/licenses/" in n}
    assert {"LICENSE", "vdsr_pytorch_vdsr_LICENSE"} <= licenses, licenses
    meta = next(zf_name for zf_name in names if zf_name.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(wheel) as zf:
        assert "License-Expression: MIT" in zf.read(meta).decode()


def test_readme_example_runs_from_the_wheel(wheel_env):
    python, env, work, venv = wheel_env
    example = readme_example()
    assert len([line for line in example.splitlines() if line.strip()]) == 5, "the README promises five lines"
    script = work / "example.py"
    script.write_text(
        example
        + "\nimport invnb, invnb.models.vdsr\n"
        + "assert tuple(res.attribution.shape[1:]) == (64, 64)\n"
        + "print('invnb from', invnb.__file__)\n"
        + "print('embedded VDSR', type(invnb.models.load_embedded_vdsr()).__name__)\n"
    )
    out = _run([python, script], cwd=work, env=env).stdout
    where = Path(re.search(r"^invnb from (.+)$", out, re.M).group(1)).resolve()
    assert venv.resolve() in where.parents, f"imported {where}, not the wheel installed in {venv}"
    assert "embedded VDSR VDSR" in out


def test_list_without_notebooks_says_so_and_fails(wheel_env):
    python, env, work, _ = wheel_env
    proc = subprocess.run([python, "-m", "invnb", "list"], capture_output=True, text=True, cwd=work, env=env,
                          timeout=300)
    assert proc.returncode != 0
    assert "no notebooks found" in proc.stderr and proc.stdout == ""


def test_list_in_the_checkout_lists_the_chapters(monkeypatch, tmp_path, capsys):
    assert cli.main(["list"]) == 0
    assert capsys.readouterr().out.split() == sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
    monkeypatch.setattr(cli, "NOTEBOOK_DIR", tmp_path)
    assert cli.main(["list"]) == 2
    assert "no notebooks found" in capsys.readouterr().err
