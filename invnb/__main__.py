"""Command line: run the book's notebooks with other parameters.

``python -m invnb run 01 --param n_images=500 --param device=cuda --out runs/vgg16``
executes ``notebooks/01_*.ipynb`` with papermill, with the given parameters
injected after its ``parameters`` cell, and writes into ``--out`` the executed
notebook and the result files the notebook writes under its ``output_dir``
parameter (set to ``--out``). Running the same command again with the same
``--out`` resumes: the notebooks keep per-item results in
:class:`invnb.runs.ResultStore` folders and skip finished items.

``python -m invnb list`` shows the notebooks; ``python -m invnb params 01``
shows one notebook's parameters with their defaults.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"

_EPILOG = """\
examples:
  python -m invnb list
  python -m invnb params 04
  python -m invnb run 04 --param n_images=6 --param mask_weights='[0.5, 2.0]' --out runs/explorer
  python -m invnb run notebooks/01_vgg_attribution.ipynb --param device=cuda --out runs/vgg16

Parameter values are Python literals (numbers, True/False/None, lists,
quoted strings); anything that does not parse as one is passed as a string.
A run interrupted with Ctrl-C can be resumed with the same command.
"""


def parse_param(text: str) -> tuple[str, object]:
    """Parse one ``name=value`` parameter; the value as a Python literal or a string.

    Parameters
    ----------
    text : str
        ``"name=value"``, e.g. ``"mask_weight=0.7"`` or ``"device=cuda"``.

    Returns
    -------
    tuple of (str, object)
        The name and the parsed value (``"0.7"`` -> ``0.7``, ``"[1, 2]"`` ->
        ``[1, 2]``, ``"cuda"`` -> ``"cuda"``).
    """
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(
            f"bad --param {text!r}: write name=value, e.g. --param mask_weight=0.7"
        )
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return name, parsed


def find_notebook(spec: str, notebook_dir: Path = NOTEBOOK_DIR) -> Path:
    """Resolve ``"00"``..``"04"``, a notebook stem or a path to one ``.ipynb`` file."""
    path = Path(spec)
    if path.suffix == ".ipynb":
        if not path.is_file():
            raise FileNotFoundError(f"no notebook at {path}")
        return path.resolve()
    if not notebook_dir.is_dir():
        raise FileNotFoundError(
            f"the notebooks folder {notebook_dir} is missing (invnb is installed without "
            "its repository); pass the path to a .ipynb file instead"
        )
    matches = sorted(p for p in notebook_dir.glob("*.ipynb") if p.stem == spec or p.stem.startswith(f"{spec}_"))
    if len(matches) != 1:
        known = ", ".join(p.stem for p in sorted(notebook_dir.glob("[0-9]*.ipynb"))) or "none"
        what = "no notebook" if not matches else "several notebooks"
        raise FileNotFoundError(f"{what} match {spec!r} in {notebook_dir}; known: {known}")
    return matches[0]


def notebook_parameters(path: Path) -> dict[str, dict]:
    """The parameters of a notebook's ``parameters`` cell (papermill's inspection)."""
    import papermill

    return papermill.inspect_notebook(str(path))


def run_notebook(
    notebook: str | Path,
    out: str | Path,
    parameters: dict | None = None,
    progress: bool = True,
    log_output: bool = False,
    kernel_name: str | None = None,
    timeout: float | None = None,
) -> Path:
    """Execute a notebook with papermill into ``out``.

    Parameters
    ----------
    notebook : str or Path
        ``"00"``..``"04"``, a notebook stem, or a path to a ``.ipynb`` file.
    out : str or Path
        Output folder (created); receives the executed notebook and, through
        the injected ``output_dir`` parameter, the notebook's result files.
        The notebook runs with ``out`` as its working directory.
    parameters : dict, optional
        Values injected after the ``parameters`` cell. ``output_dir``
        defaults to ``out``. Unknown names raise ``ValueError``.
    progress : bool
        papermill's per-cell progress bar.
    log_output : bool
        Stream the notebook's own output (e.g. its tqdm bars) to stderr.
    kernel_name : str, optional
        Jupyter kernel; default: the notebook's own kernelspec.
    timeout : float, optional
        Per-cell time limit in seconds (default: none).

    Returns
    -------
    Path
        The executed notebook, ``out / <notebook name>``.
    """
    import papermill

    src = find_notebook(str(notebook))
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    params = dict(parameters or {})
    known = notebook_parameters(src)
    if not known:
        raise ValueError(f"{src.name} has no cell tagged 'parameters'; papermill cannot inject values")
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for {src.name}; it takes: {', '.join(known)} "
            f"(see `python -m invnb params {src.stem}`)"
        )
    if "output_dir" in known:
        params.setdefault("output_dir", str(out))
    dest = out / src.name
    papermill.execute_notebook(
        str(src),
        str(dest),
        parameters=params,
        cwd=str(out),
        progress_bar=progress,
        log_output=log_output,
        kernel_name=kernel_name,
        execution_timeout=timeout,
    )
    return dest


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m invnb",
        description=(
            "Run the invnb book's notebooks with papermill (full paper runs on a GPU, "
            "other parameters, resumable result files)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="execute a notebook with parameters into an output folder",
        description="Execute NOTEBOOK with papermill into --out (executed notebook + result files).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("notebook", metavar="NOTEBOOK", help="00..04, a notebook name, or a path to a .ipynb file")
    run.add_argument(
        "-p", "--param", action="append", type=parse_param, default=[], metavar="NAME=VALUE",
        help="set a parameter of the notebook's parameters cell (repeatable)",
    )
    run.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder; rerun with the same folder to resume")
    run.add_argument("--kernel", default=None, help="Jupyter kernel name (default: the notebook's)")
    run.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="per-cell time limit")
    run.add_argument("--no-progress", action="store_true", help="hide papermill's per-cell progress bar")
    run.add_argument("--log-output", action="store_true", help="stream the notebook's output (its progress bars) to stderr")

    sub.add_parser("list", help="list the book's notebooks", description="List the notebooks of the book.")
    params = sub.add_parser("params", help="show a notebook's parameters and defaults", description="Show a notebook's parameters.")
    params.add_argument("notebook", metavar="NOTEBOOK", help="00..04, a notebook name, or a path")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m invnb``; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            found = sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
            if not found:  # e.g. installed from a wheel: the notebooks live in the repository
                raise FileNotFoundError(f"no notebooks found in {NOTEBOOK_DIR} (invnb is installed without its "
                                        "repository); clone the repository to run the book's chapters")
            for path in found:
                print(path.stem)
        elif args.command == "params":
            for name, info in notebook_parameters(find_notebook(args.notebook)).items():
                help_ = f"  # {info['help']}" if info.get("help") else ""
                print(f"{name} = {info['default']}{help_}")
        else:
            params = dict(args.param)
            dest = run_notebook(
                args.notebook, args.out, params, progress=not args.no_progress,
                log_output=args.log_output, kernel_name=args.kernel, timeout=args.timeout,
            )
            print(f"executed notebook: {dest}")
            print(f"results in: {dest.parent}")
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # papermill's PapermillExecutionError: a cell failed
        if type(err).__name__ == "PapermillExecutionError":
            print(f"error: the notebook failed: {err}", file=sys.stderr)
            print("the partially executed notebook is in --out; rerun to resume", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
