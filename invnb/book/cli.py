"""Command line: run the book's chapters with other parameters (``python -m invnb run NN``)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from invnb.book.notebooks import (
    NOTEBOOK_DIR,
    Stopped,
    check_parameters,
    find_notebook,
    notebook_parameters,
    on_stop_signal,
    parse_param,
    run_notebook,
    stop_kernels,
)

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
        from invnb.runs.tasks import SCHEDULER_ENV

        if self.previous_env is None:
            os.environ.pop(SCHEDULER_ENV, None)
        else:
            os.environ[SCHEDULER_ENV] = self.previous_env
        from invnb.runs.cluster import close_clients

        close_clients()  # self.client among them
        if self.local is not None:
            self.local.close()


def _start_cluster(args) -> _Cluster:
    """Start (``--workers``) or connect to (``--scheduler``) a Dask cluster, check --out, export its address."""
    from invnb.runs import cluster as dask_cluster
    from invnb.runs.tasks import SCHEDULER_ENV

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
            previous = {s: signal.signal(s, on_stop_signal) for s in stop_signals}
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
