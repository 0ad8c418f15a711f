"""Running a chapter with papermill: finding it, checking its parameters, stopping its kernel."""

from __future__ import annotations

import argparse
import ast
import os
import signal
import time
from pathlib import Path

from invnb.paths import NOTEBOOK_DIR


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


def literal_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError):
        return NOT_LITERAL


NOT_LITERAL = object()


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
        default = literal_value(known[name]["default"])
        if default is NOT_LITERAL or default is None or value is None:
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


def on_stop_signal(signum, frame):
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
