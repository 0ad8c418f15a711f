"""Mutation testing of invnb's core: does the test suite notice a wrong answer?

Each mutant is one small change to one module (an operator, a comparison, a number, a
min/max swap...); the tests that execute the mutated line run against it, and a mutant is
*killed* when one of them fails (or the run errors or exceeds its time limit). The score of
a module is killed / all. Mutants in code no test executes count as survivors.

    python scripts/mutation_test.py                                 # every module in MODULES
    python scripts/mutation_test.py inverse.solver eval.causal -v   # some modules, list survivors
    python scripts/mutation_test.py inverse.engine --list           # only list the mutants

How: the parent imports torch, numpy, scipy and pytest once, then forks one child per
mutant; the child serves the mutated source of ``invnb.<module>`` through an import hook
(nothing on disk changes, so it is safe next to other work) and runs ``pytest -x`` on the
selected test ids. Tests are selected per line from one coverage run of the module's test
files (`MODULES`). Operators: ``< <= > >= == != is in`` swapped with their neighbour or
negation; ``+ - * / // % **`` swapped; ``and``/``or``; ``not`` and unary minus removed;
numbers changed (int n -> n + 1, float x -> 2x, 0.0 -> 1.0, a guard
|x| < 1e-3 -> 0), True/False flipped;
``amax/amin, max/min, maximum/minimum, argmax/argmin, floor/ceil, any/all, sum/mean``
swapped. Not mutated: docstrings, f-strings, annotations, ``raise`` statements, input
validation (an ``if`` whose body only raises), ``assert``, and lines marked
``# pragma: no mutate``. Use one process (``OMP_NUM_THREADS=1``); it takes
minutes per module. Unix only (fork).
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.abc
import importlib.util
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: module -> the test files that check it (answer tests first: they kill fastest)
MODULES = {
    "inverse.solver": ["tests/inverse/test_answers_solver.py", "tests/inverse/test_solver.py"],
    "inverse.engine": ["tests/inverse/test_answers_inverse.py", "tests/inverse/test_inverse.py",
                       "tests/inverse/test_inverse_auto.py"],
    "eval.causal": ["tests/eval/test_answers_metrics.py", "tests/eval/test_metrics.py"],
    "eval.reid": ["tests/eval/test_answers_metrics.py", "tests/eval/test_metrics.py"],
    "eval.localisation": ["tests/eval/test_answers_metrics.py", "tests/eval/test_metrics.py"],
    "sr.matlab": ["tests/sr/test_answers_sr.py", "tests/sr/test_sr_data.py"],
    "sr.samples": ["tests/sr/test_answers_sr.py", "tests/sr/test_sr_data.py"],
    "sr.metrics": ["tests/sr/test_answers_sr.py", "tests/sr/test_sr_metrics.py"],
    "sr.frequency": ["tests/sr/test_answers_sr.py", "tests/sr/test_frequency.py"],
}

#: third-party modules the parent imports once (never invnb itself)
PRELOAD = ["numpy", "torch", "torchvision", "scipy.optimize", "scipy.signal", "scipy.io", "scipy.ndimage",
           "skimage.metrics", "PIL.Image", "matplotlib.pyplot", "pytest", "coverage"]

CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
BIN_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult,
            ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult}
NAME_SWAP = {"amax": "amin", "amin": "amax", "max": "min", "min": "max", "maximum": "minimum",
             "minimum": "maximum", "argmax": "argmin", "argmin": "argmax", "floor": "ceil", "ceil": "floor",
             "any": "all", "all": "any", "sum": "mean", "mean": "sum"}


@dataclass
class Mutant:
    index: int
    line: int
    end_line: int
    description: str
    source: str = field(repr=False, default="")


def _skipped_subtrees(tree: ast.AST, lines: list[str]) -> set[int]:
    """ids of nodes (and everything under them) that are not mutated."""
    skip: set[int] = set()

    def drop(node):
        for n in ast.walk(node):
            skip.add(id(n))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Raise, ast.Assert, ast.JoinedStr)):
            drop(node)
        elif isinstance(node, ast.If) and all(isinstance(s, ast.Raise) for s in node.body) and not node.orelse:
            drop(node)  # input validation: `if bad: raise ...`
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                drop(body[0])
            if not isinstance(node, (ast.ClassDef, ast.Module)):
                for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs:
                    if a.annotation is not None:
                        drop(a.annotation)
                if node.returns is not None:
                    drop(node.returns)
        elif isinstance(node, ast.AnnAssign):
            drop(node.annotation)
        if hasattr(node, "lineno") and "pragma: no mutate" in lines[node.lineno - 1]:
            drop(node)
    return skip


def _sites(tree: ast.AST, lines: list[str]):
    """(node, kind, description) for every mutation site, in source order."""
    skip = _skipped_subtrees(tree, lines)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip or not hasattr(node, "lineno"):
            continue
        if isinstance(node, ast.Compare):
            for j, op in enumerate(node.ops):
                if type(op) in CMP_SWAP:
                    out.append((node, ("cmp", j), f"{type(op).__name__} -> {CMP_SWAP[type(op)].__name__}"))
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in BIN_SWAP:
            out.append((node, ("bin",), f"{type(node.op).__name__} -> {BIN_SWAP[type(node.op)].__name__}"))
        elif isinstance(node, ast.BoolOp):
            out.append((node, ("bool",), "and <-> or"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            out.append((node, ("unary",), f"drop {type(node.op).__name__}"))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
            v = node.value
            if isinstance(v, bool):
                new = not v
            elif isinstance(v, int):
                new = v + 1
            elif 0 < abs(v) < 1e-3:
                new = 0.0  # a guard (eps, clamp floor): remove it
            else:
                new = 2 * v if v else 1.0
            out.append((node, ("const", new), f"{v!r} -> {new!r}"))
        elif isinstance(node, ast.Attribute) and node.attr in NAME_SWAP:
            out.append((node, ("attr",), f".{node.attr} -> .{NAME_SWAP[node.attr]}"))
        elif isinstance(node, ast.Name) and node.id in ("max", "min", "any", "all") and isinstance(node.ctx, ast.Load):
            out.append((node, ("name",), f"{node.id} -> {NAME_SWAP[node.id]}"))
    out.sort(key=lambda s: (s[0].lineno, s[0].col_offset))
    return out


def _apply(node: ast.AST, kind: tuple) -> ast.AST:
    """The mutated replacement of `node` (a modified copy)."""
    new = copy.copy(node)
    tag = kind[0]
    if tag == "cmp":
        new.ops = list(node.ops)
        new.ops[kind[1]] = CMP_SWAP[type(node.ops[kind[1]])]()
    elif tag == "bin":
        new.op = BIN_SWAP[type(node.op)]()
    elif tag == "bool":
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif tag == "unary":
        return node.operand
    elif tag == "const":
        new.value = kind[1]
    elif tag == "attr":
        new.attr = NAME_SWAP[node.attr]
    elif tag == "name":
        new.id = NAME_SWAP[node.id]
    return new


class _Replace(ast.NodeTransformer):
    def __init__(self, target, replacement):
        self.target, self.replacement = target, replacement

    def visit(self, node):
        if node is self.target:
            return self.replacement
        return self.generic_visit(node)


def mutants_of(path: Path) -> list[Mutant]:
    text = path.read_text()
    lines = text.splitlines()
    out = []
    for i, (node, kind, desc) in enumerate(_sites(ast.parse(text), lines)):
        tree = ast.parse(text)  # a fresh tree per mutant; find the same node by position
        twin = next(n for n in _sites(tree, lines) if (n[0].lineno, n[0].col_offset, n[1], n[2]) ==
                    (node.lineno, node.col_offset, kind, desc))[0]
        new_tree = ast.fix_missing_locations(_Replace(twin, _apply(twin, kind)).visit(tree))
        out.append(Mutant(i, node.lineno, getattr(node, "end_lineno", node.lineno), desc, ast.unparse(new_tree)))
    return out


# ----------------------------------------------------------------------------- running
class _SourceFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves `source` as module `name` (file `path`)."""

    def __init__(self, name, path, source):
        self.name, self.path, self.source = name, str(path), source

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path, loader=self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(self.source, self.path, "exec"), module.__dict__)


def _in_child(fn, timeout: float):
    """Run fn() in a forked child; its return code, or 'timeout'."""
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            code = int(fn())
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.05)


def _pytest_args(ids):
    return ["-x", "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO), "-c", str(REPO / "pyproject.toml"), *ids]


def module_path(module: str) -> Path:
    """The source file of ``invnb.<module>``: ``"inverse.solver"`` -> ``<repo>/invnb/inverse/solver.py``."""
    return REPO / "invnb" / (module.replace(".", "/") + ".py")


def coverage_map(module: str, tests: list[str], out_json: Path):
    """Run the module's tests once under coverage (one context per test id) in a child.

    Writes {"lines": {line: [test ids]}, "durations": {id: s}, "order": [ids], "rc": int}."""
    def run():
        import coverage
        import pytest

        target = str(module_path(module))
        cov = coverage.Coverage(data_file=None, include=[target])
        durations, order = {}, []

        class Plugin:
            @pytest.hookimpl(tryfirst=True)
            def pytest_runtest_setup(self, item):
                cov.switch_context(item.nodeid)
                order.append(item.nodeid)

            def pytest_runtest_logreport(self, report):
                durations[report.nodeid] = durations.get(report.nodeid, 0.0) + report.duration

        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        cov.start()
        rc = pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(REPO), "-c", str(REPO / "pyproject.toml"),
                          *tests], plugins=[Plugin()])
        cov.stop()
        data = cov.get_data()
        lines = {}
        for f in data.measured_files():
            for ln, ctxs in data.contexts_by_lineno(f).items():
                # "" is the import (e.g. a default value in a signature): every test depends on it
                lines[ln] = sorted(c for c in ctxs if c) + (["<import>"] if "" in ctxs else [])
        out_json.write_text(json.dumps({"lines": lines, "durations": durations, "order": order, "rc": int(rc)}))
        return 0

    return _in_child(run, timeout=3600)


def _sample(muts: list, n: int | None) -> list:
    """`n` mutants evenly spread over the module (all when n is None or larger)."""
    if n is None or n >= len(muts):
        return muts
    return [muts[int(i * len(muts) / n)] for i in range(n)]


def run_module(module: str, verbose: bool = False, limit: int | None = None, sample: int | None = None) -> dict:
    path = module_path(module)
    tests = MODULES[module]
    muts = _sample(mutants_of(path)[:limit], sample)
    cov_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"invnb-mutation-{module}-{os.getpid()}.json"
    t0 = time.monotonic()
    rc = coverage_map(module, tests, cov_file)
    cov = json.loads(cov_file.read_text())
    cov_file.unlink()
    if rc != 0 or cov["rc"] != 0:
        raise SystemExit(f"{module}: the unmutated tests do not pass (pytest rc {cov['rc']}); fix that first")
    rank = {t: i for i, t in enumerate(cov["order"])}
    killed, survivors = 0, []
    for m in muts:
        ids = {t for ln in range(m.line, m.end_line + 1) for t in cov["lines"].get(str(ln), [])}
        if "<import>" in ids:
            ids = set(cov["order"])
        ids = sorted(ids, key=rank.get)
        if not ids:
            survivors.append((m, "not executed by any test"))
            continue
        budget = 30.0 + 3.0 * sum(cov["durations"].get(t, 1.0) for t in ids)
        finder = _SourceFinder(f"invnb.{module}", path, m.source)

        def run():
            import pytest

            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # no nbval etc.: faster start
            sys.dont_write_bytecode = True
            sys.meta_path.insert(0, finder)
            return pytest.main(_pytest_args(ids))

        t1 = time.monotonic()
        res = _in_child(run, budget)
        if res == 0:
            survivors.append((m, f"{len(ids)} tests pass"))
        else:
            killed += 1
        if verbose:
            state = "survived" if res == 0 else f"killed ({res})"
            print(f"  {path.relative_to(REPO)}:{m.line}: {m.description}: {state}, {len(ids)} tests, {time.monotonic() - t1:.1f} s",
                  flush=True)
    n = len(muts)
    result = {"module": module, "mutants": n, "killed": killed, "score": killed / n if n else 1.0,
              "seconds": round(time.monotonic() - t0, 1),
              "survivors": [f"{path.relative_to(REPO)}:{m.line}: {m.description} ({why})" for m, why in survivors]}
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", choices=[[], *MODULES], default=[], metavar="MODULE",
                    help=f"modules to mutate (default all: {', '.join(MODULES)})")
    ap.add_argument("--list", action="store_true", help="only list the mutants")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every mutant's fate")
    ap.add_argument("--limit", type=int, default=None, help="only the first N mutants per module (a smoke run)")
    ap.add_argument("--sample", type=int, default=None,
                    help="run N mutants per module, evenly spread over it (default: all)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    modules = args.modules or list(MODULES)
    os.chdir(REPO)  # test paths and ids are relative to the repository
    if args.list:
        for mod in modules:
            for m in _sample(mutants_of(module_path(mod))[:args.limit], args.sample):
                print(f"{module_path(mod).relative_to(REPO)}:{m.line}: {m.description}")
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    data = Path(os.environ.get("INVNB_TEST_DATA", REPO.parent / "shared" / "data"))
    if not data.is_dir():
        print(f"warning: no third-party test data at {data} (set INVNB_TEST_DATA): the tests against MATLAB "
              "references skip, and sr_data's mutants there survive", file=sys.stderr)
    sys.path.insert(0, str(REPO))
    import importlib

    for name in PRELOAD:  # imported once, before the forks: each mutant's run starts fast
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    import torch

    torch.set_num_threads(1)
    results = []
    for mod in modules:
        r = run_module(mod, verbose=args.verbose, limit=args.limit, sample=args.sample)
        results.append(r)
        print(f"{mod:11s} {r['killed']:4d}/{r['mutants']:<4d} killed ({100 * r['score']:.1f}%) in {r['seconds']:.0f} s",
              flush=True)
        for s in r["survivors"]:
            print("    survived:", s, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
