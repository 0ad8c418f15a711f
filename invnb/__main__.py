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

``--workers K`` computes the notebook's items on a local Dask cluster (K CPU
worker processes, or one worker per visible GPU) and ``--scheduler ADDRESS``
on an existing one; the kernel finds it through the ``INVNB_SCHEDULER``
environment variable (see :func:`invnb.runs.run_items`). The default runs
every item in the kernel itself, with no Dask process.

Stopping a run (Ctrl-C, SIGTERM, SIGHUP) stops its Jupyter kernel at once
(the kernel runs in its own session, so it would not get the signal itself);
every item stored so far is kept, and the same command resumes.
"""

from __future__ import annotations

import argparse
import ast
import os
import signal
import sys
import threading
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"

_EPILOG = """\
examples:
  python -m invnb list
  python -m invnb params 04
  python -m invnb run 04 --param n_images=6 --param mask_weights='[0.5, 2.0]' --out runs/explorer
  python -m invnb run notebooks/01_vgg_attribution.ipynb --param device=cuda --out runs/vgg16
  python -m invnb run 01 --param start=1 --param end=50001 --out runs/x --dry-run
  python -m invnb run 02 --workers 2 --out runs/tradeoff
  python -m invnb run 01 --scheduler tcp://10.0.0.5:8786 --param device=cuda --out /shared/runs/vgg16

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
    """Every name the notebook's ``parameters`` cell assigns, with its default and comment.

    Reads the cell's code with :mod:`ast`, so tuple assignments
    (``start, end, stride = 1, 50001, 10``) give one entry per name (papermill's
    own inspection skips them). Injected values are assigned after the cell, so
    each of these names can be set with ``--param``.

    Returns
    -------
    dict of str to dict
        ``{name: {"name", "default" (source text), "help" (the line's comment)}}``,
        in the cell's order; empty if no cell is tagged ``parameters``.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        return {}
    source = cells[0].source
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ValueError(f"{Path(path).name}: its parameters cell is not valid Python ({err})") from err
    lines = source.splitlines()
    out: dict[str, dict] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        end_line = lines[node.end_lineno - 1]
        comment = end_line[node.end_col_offset:].strip()
        help_ = comment[1:].strip() if comment.startswith("#") else ""
        for target in targets:
            if isinstance(target, ast.Name):
                pairs = [(target, value)]
            elif isinstance(target, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Name) for e in target.elts):
                values = value.elts if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts) else [None] * len(target.elts)
                pairs = list(zip(target.elts, values))
            else:
                continue
            for name_node, val in pairs:
                default = ast.get_source_segment(source, val) if val is not None else "(unpacked)"
                out[name_node.id] = {"name": name_node.id, "default": default, "help": help_}
    return out


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError):
        return _NOT_LITERAL


_NOT_LITERAL = object()


def check_parameters(src: Path, params: dict) -> list[str]:
    """Check ``params`` against the notebook's ``parameters`` cell.

    Raises
    ------
    ValueError
        The notebook has no parameters cell, or a name is not one of its parameters.

    Returns
    -------
    list of str
        Notes on values whose type differs from the default's (e.g. a string
        where the default is a list); they do not stop a run.
    """
    known = notebook_parameters(src)
    if not known:
        raise ValueError(f"{src.name} has no cell tagged 'parameters'; papermill cannot inject values")
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for {src.name}; it takes: {', '.join(known)} "
            f"(see `python -m invnb params {src.stem}`)"
        )
    notes = []
    for name, value in params.items():
        default = _literal(known[name]["default"])
        if default is _NOT_LITERAL or default is None or value is None:
            continue
        kinds = [(bool,), (int, float), (str,), (list, tuple), (dict,)]
        want = next((k for k in kinds if isinstance(default, k)), None)
        if want is not None and not (isinstance(value, want) and (want != (int, float) or not isinstance(value, bool))):
            notes.append(
                f"{name}: the default is {known[name]['default']} ({type(default).__name__}), "
                f"got {value!r} ({type(value).__name__})"
            )
    return notes


_KERNELS: list = []  # kernel managers started by this process (see _kernel_manager_class)


def _kernel_manager_class():
    """nbclient's default kernel manager, remembering each kernel it starts so that a stop can end it."""
    from jupyter_client.manager import AsyncKernelManager

    class TrackedKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            _KERNELS.append(self)
            return await super().start_kernel(**kw)

    return TrackedKernelManager


def stop_kernels(grace: float = 3.0) -> list[int]:
    """End every kernel this process started: SIGTERM to its process group, SIGKILL after ``grace`` s.

    Returns
    -------
    list of int
        The process ids that were still running and were signalled.
    """
    procs = []
    for km in list(_KERNELS):
        prov = getattr(km, "provisioner", None)
        proc = getattr(prov, "process", None)
        if proc is None or proc.poll() is not None:
            continue
        pgid = getattr(prov, "pgid", None)
        procs.append((proc, pgid))
        _signal_kernel(proc, pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(p.poll() is None for p, _ in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    for proc, pgid in procs:
        if proc.poll() is None:
            _signal_kernel(proc, pgid, signal.SIGKILL)
            proc.wait(timeout=10)
        elif pgid:  # the kernel is gone; end anything it started in its group too
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    return [p.pid for p, _ in procs]


def _signal_kernel(proc, pgid, signum) -> None:
    try:
        if pgid and hasattr(os, "killpg"):
            os.killpg(pgid, signum)
        else:
            proc.send_signal(signum)
    except ProcessLookupError:
        pass


class Stopped(BaseException):
    """Raised in the CLI's main thread when a stop signal arrives (after the kernel is ended)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _on_stop_signal(signum, frame):
    stop_kernels()
    raise Stopped(signum)


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
    check_parameters(src, params)
    known = notebook_parameters(src)
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
        kernel_manager_class=_kernel_manager_class(),
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
    where = run.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, default=None, metavar="K",
        help="compute the notebook's items on a local Dask cluster: K worker processes with one thread "
             "each, or one worker per GPU when CUDA GPUs are visible (needs the dask extra)",
    )
    where.add_argument(
        "--scheduler", default=None, metavar="ADDRESS",
        help="compute the items on an existing Dask cluster (e.g. tcp://host:8786, one started by "
             "dask-jobqueue); --out must be on storage every worker mounts at the same path "
             "(checked with a probe file before the run)",
    )
    run.add_argument("--dry-run", action="store_true",
                     help="check the notebook and its parameters, print what would be injected, run nothing")

    sub.add_parser("list", help="list the book's notebooks", description="List the notebooks of the book.")
    params = sub.add_parser("params", help="show a notebook's parameters and defaults", description="Show a notebook's parameters.")
    params.add_argument("notebook", metavar="NOTEBOOK", help="00..04, a notebook name, or a path")
    return parser


class _Cluster:
    """The Dask cluster of one ``run``: its client, the local cluster it started (if any), the env var set."""

    def __init__(self, client, local, previous_env):
        self.client, self.local, self.previous_env = client, local, previous_env

    def close(self) -> None:
        from .runs import SCHEDULER_ENV

        if self.previous_env is None:
            os.environ.pop(SCHEDULER_ENV, None)
        else:
            os.environ[SCHEDULER_ENV] = self.previous_env
        from .cluster import close_clients

        close_clients()  # self.client among them
        if self.local is not None:
            self.local.close()


def _start_cluster(args) -> _Cluster:
    """Start (``--workers``) or connect to (``--scheduler``) a Dask cluster, check --out, export its address."""
    from . import cluster as dask_cluster
    from .runs import SCHEDULER_ENV

    local = None
    if args.workers:
        local = dask_cluster.start_local_cluster(args.workers)
        address = local.scheduler_address
    else:
        address = args.scheduler
    try:
        client = dask_cluster.connect(address)
        n = dask_cluster.check_shared_storage(client, Path(args.out))
    except BaseException:
        if local is not None:
            local.close()
        raise
    print(f"Dask cluster: {address}, {n} workers; dashboard: {client.dashboard_link}", file=sys.stderr)
    previous = os.environ.get(SCHEDULER_ENV)
    os.environ[SCHEDULER_ENV] = address  # the kernel inherits it; run_items reads it
    return _Cluster(client, local, previous)


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
        elif args.dry_run:
            src = find_notebook(args.notebook)
            params = dict(args.param)
            notes = check_parameters(src, params)
            if "output_dir" in notebook_parameters(src):
                params.setdefault("output_dir", str(Path(args.out).resolve()))
            print(f"dry run: {src.name} would run into {Path(args.out).resolve()} with")
            for name, value in params.items():
                print(f"  {name} = {value!r}")
            for note in notes:
                print(f"note: {note}")
        else:
            if args.workers is not None and args.workers < 1:
                raise ValueError(f"--workers must be >= 1, got {args.workers}")
            params = dict(args.param)
            cluster = _start_cluster(args) if (args.workers or args.scheduler) else None
            stop_signals = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s]
            if threading.current_thread() is not threading.main_thread():
                stop_signals = []  # signal handlers can only be set in the main thread
            previous = {s: signal.signal(s, _on_stop_signal) for s in stop_signals}
            try:
                dest = run_notebook(
                    args.notebook, args.out, params, progress=not args.no_progress,
                    log_output=args.log_output, kernel_name=args.kernel, timeout=args.timeout,
                )
            except Stopped as stop:
                for s, handler in previous.items():  # a second Ctrl-C now quits at once
                    signal.signal(s, handler)
                stop_kernels(grace=0.5)
                name = signal.Signals(stop.signum).name
                print(f"\nstopped by {name}: the kernel was ended; items finished so far are kept in "
                      f"{args.out}; run the same command again to resume", file=sys.stderr)
                return 128 + stop.signum
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)
                if cluster is not None:
                    cluster.close()
            print(f"executed notebook: {dest}")
            print(f"results in: {dest.parent}")
    except (FileNotFoundError, ValueError, OSError, ImportError) as err:
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
    status = main()
    if status > 128:  # stopped by a signal: leave now, without waiting ~5 s for the zmq sockets of
        sys.stdout.flush()  # the (already ended) kernel to linger out at interpreter exit
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
