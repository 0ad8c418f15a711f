"""Build the invnb book: the main job (`make book`).

1. Vendor the JavaScript the built pages need from the npm registry (once; the
   files are git-ignored): MathJax 3 (typeset math), RequireJS and the
   ipywidgets HTML manager (render saved widget state). Each package tarball
   is fetched with ``npm pack`` at a pinned version and checked against a
   pinned sha512, then the needed files are unpacked into
   ``book/_static_vendor/``, which ``_config.yml`` lists in ``html_static_path``
   and points ``mathjax_path`` / ``nb_ipywidgets_js`` at. The built HTML then
   needs no network access (no CDN).
2. Run ``jupyter-book build . -W -n --keep-going``, executing every notebook
   on its default (CPU-sized) parameters; the log goes to the terminal and to
   ``_build/build.log``.
3. Exit non-zero if the build failed or its log has any warning.

Usage::

    python scripts/build_book.py            # vendor if missing, then build
    python scripts/build_book.py --all      # rebuild every page (cache kept)
    python scripts/build_book.py --vendor-only
    python scripts/build_book.py --screenshots   # then check the pages in headless Chromium
    python scripts/build_book.py --refresh-outputs notebooks/00_theory.ipynb
                                            # re-execute, keep only nbval-checked outputs
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from invnb.paths import SOURCE_ROOT as ROOT  # noqa: E402

VENDOR = ROOT / "book" / "_static_vendor"

# name, version, npm dist.integrity, folder under VENDOR, files to keep
# (paths inside the tarball's package/ folder: a file, or a folder prefix
# ending in "/"), and the file that must exist afterwards.
PACKAGES = [
    {
        "spec": "mathjax@3.2.2",
        "integrity": "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        "dest": "mathjax",
        # the combined TeX+MathML -> CommonHTML bundle, plus what it loads
        # lazily: TeX extensions, CHTML fonts, the menu and accessibility parts
        "keep": ["LICENSE", "es5/tex-mml-chtml.js", "es5/input/", "es5/output/chtml/", "es5/output/chtml.js",
                 "es5/ui/", "es5/a11y/", "es5/sre/", "es5/adaptors/"],
        "check": "es5/tex-mml-chtml.js",
    },
    {
        "spec": "requirejs@2.3.8",
        "integrity": "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        "dest": "requirejs",
        "keep": ["require.js", "README.md"],
        "check": "require.js",
    },
    {
        # ipywidgets 8.1 renders with @jupyter-widgets/html-manager ^1.0.1
        # (ipywidgets._version.__html_manager_version__); the AMD bundle carries
        # the base, controls and output widgets and their fonts.
        "spec": "@jupyter-widgets/html-manager@1.0.15",
        "integrity": "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        "dest": "html-manager",
        "keep": ["dist/embed-amd.js", "dist/*.woff", "dist/*.woff2", "dist/*.ttf", "dist/*.eot", "dist/*.svg",
                 "dist/embed.js.LICENSE.txt", "package.json"],
        "check": "dist/embed-amd.js",
    },
]

WARNING_RE = re.compile(r"(WARNING|ERROR|CRITICAL):|^Warning, treated as error", re.M)


def _kept(name: str, keep: list[str]) -> bool:
    for pattern in keep:
        if pattern.endswith("/") and name.startswith(pattern):
            return True
        if "*" in pattern:
            folder, _, suffix = pattern.rpartition("/*")
            if name.startswith(folder + "/") and "/" not in name[len(folder) + 1:] and name.endswith(suffix):
                return True
        if name == pattern:
            return True
    return False


def _check_integrity(data: bytes, integrity: str, spec: str) -> None:
    algo, _, expected = integrity.partition("-")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != expected:
        raise SystemExit(f"npm tarball of {spec} has {algo} {got}, expected {expected}: refusing to use it")


def vendor_package(pkg: dict, force: bool = False) -> Path:
    """Fetch one npm package tarball (``npm pack``), check it, unpack the kept files."""
    dest = VENDOR / pkg["dest"]
    if (dest / pkg["check"]).is_file() and not force:
        return dest
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            "npm is needed once to vendor the book's JavaScript (MathJax, RequireJS, the widget "
            "manager) from the npm registry; install Node.js/npm (Debian: apt-get install npm) "
            f"or copy the files into {VENDOR} by hand"
        )
    print(f"vendoring {pkg['spec']} into {dest.relative_to(ROOT)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([npm, "pack", pkg["spec"], "--pack-destination", tmp, "--silent"],
                              capture_output=True, text=True, cwd=tmp)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or len(tarballs) != 1:
            raise SystemExit(f"`npm pack {pkg['spec']}` failed:\n{proc.stderr.strip()}")
        data = tarballs[0].read_bytes()
    _check_integrity(data, pkg["integrity"], pkg["spec"])
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith("package/"):
                continue
            name = member.name[len("package/"):]
            if ".." in Path(name).parts or not _kept(name, pkg["keep"]):
                continue
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
    if not (staging / pkg["check"]).is_file():
        raise SystemExit(f"{pkg['spec']} has no {pkg['check']}; the package layout changed")
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return dest


def vendor_all(force: bool = False) -> None:
    """Make sure every vendored package is present under ``book/_static_vendor``."""
    VENDOR.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES:
        vendor_package(pkg, force=force)


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    raise SystemExit("jupyter-book is not installed; run `make venv` (pip install -e '.[book]')")


def count_warnings(log: str) -> list[str]:
    """The warning/error lines of a Sphinx build log."""
    return [line for line in log.splitlines() if WARNING_RE.search(line)]


def build(all_pages: bool = False) -> int:
    """Run jupyter-book; return its exit status, or 1 when the log has warnings."""
    cmd = _jupyter_book() + ["build", str(ROOT), "-W", "-n", "--keep-going"]
    if all_pages:
        cmd.append("--all")
    log_path = ROOT / "_build" / "build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print("$ " + " ".join(cmd), flush=True)
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1", NO_COLOR="1")
    start = time.perf_counter()
    lines = []
    with subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
        status = proc.wait()
    seconds = time.perf_counter() - start
    log = "".join(lines)
    log_path.write_text(log)
    warnings = count_warnings(log)
    print(f"\nbuild: exit status {status}, {len(warnings)} warning(s), {seconds:.0f} s; log in "
          f"{log_path.relative_to(ROOT)}")
    for line in warnings:
        print("  " + line)
    reports = sorted((ROOT / "_build" / "html" / "reports").glob("**/*.err.log"))
    for report in reports:
        print(f"execution report: {report.relative_to(ROOT)}")
    if status == 0 and warnings:
        return 1
    return status


CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def refresh_outputs(paths: list[Path], timeout: int = 1800) -> None:
    """Execute notebooks in place and keep only the outputs nbval compares.

    ``pytest --nbval-lax`` compares the outputs of cells marked
    ``# NBVAL_CHECK_OUTPUT`` with the ones stored in the notebook, so those
    must be committed; every other output (figures, widget state) is
    stripped to keep the repository small. Run after a change that moves the
    checked numbers on purpose, and review the diff.
    """
    import nbformat
    from nbclient import NotebookClient

    for path in paths:
        print(f"executing {path.relative_to(ROOT)}", flush=True)
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.metadata.pop("execution", None)
            if CHECK_MARK not in cell.source:
                # nbval treats a cell with outputs but no execution count as an error,
                # so checked cells keep both; the others lose both
                cell.outputs = []
                cell.execution_count = None
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="rebuild all pages (jupyter-book --all)")
    parser.add_argument("--vendor-only", action="store_true", help="only fetch the vendored JavaScript")
    parser.add_argument("--revendor", action="store_true", help="fetch the vendored JavaScript again")
    parser.add_argument("--refresh-outputs", nargs="*", metavar="NOTEBOOK",
                        help="execute these notebooks (default: all) in place, keep only the outputs of "
                             "# NBVAL_CHECK_OUTPUT cells, and stop (no build)")
    parser.add_argument("--screenshots", action="store_true",
                        help="after a successful build, check every page in headless Chromium "
                             "(scripts/screenshot_book.py)")
    args = parser.parse_args(argv)
    if args.refresh_outputs is not None:
        paths = [Path(p).resolve() for p in args.refresh_outputs] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
        refresh_outputs(paths)
        return 0
    vendor_all(force=args.revendor)
    if args.vendor_only:
        return 0
    status = build(all_pages=args.all)
    if status == 0 and args.screenshots:
        import screenshot_book

        status = screenshot_book.main([])
    return status


if __name__ == "__main__":
    sys.exit(main())
