"""Every command line in ``scripts/`` and ``benchmarks/`` starts: its imports resolve and ``--help`` exits 0.

The scripts run in one child process (``runpy``, as ``__main__``), so a renamed or moved
package name breaks this test rather than the first user who runs the command.
"""

import subprocess
import sys

from conftest import REPO

COMMANDS = sorted(p.relative_to(REPO).as_posix() for folder in ("scripts", "benchmarks")
                  for p in (REPO / folder).glob("*.py") if not p.name.startswith("_"))

CHILD = r"""
import runpy, sys, traceback
failed = []
for path in sys.argv[1:]:
    sys.argv = [path, "--help"]
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as stop:
        if stop.code not in (0, None):
            failed.append(f"{path}: exit {stop.code}")
    except BaseException:
        failed.append(f"{path}: {traceback.format_exc(limit=1).strip().splitlines()[-1]}")
    else:
        failed.append(f"{path}: --help did not exit")
print("\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_command_line_answers_help():
    assert len(COMMANDS) > 10
    run = subprocess.run([sys.executable, "-c", CHILD, *COMMANDS], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]


def test_residual_benchmark_runs_its_variants(tmp_path):
    """bench_resnet.py subclasses the engine (`SwitchedInverse`): a change of the engine's
    signatures must break this test, not the benchmark's next run."""
    out = tmp_path / "rows.json"
    run = subprocess.run([sys.executable, "benchmarks/bench_resnet.py", "--n-images", "2", "--models", "resnet",
                          "--block-relu", "forward", "switches", "--auto-max-iter", "2", "--json", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    import json

    rows = json.loads(out.read_text())
    assert set(rows) == {"resnet:forward:pooled:iters2", "resnet:switches:pooled:iters2"}
    assert all(0 <= r["mass_in_object"] <= 1 and -1 <= r["spearman_vs_second_class"] <= 1 for r in rows.values())


def test_shortcut_benchmark_writes_its_table(tmp_path):
    out = tmp_path / "rows.json"
    run = subprocess.run([sys.executable, "benchmarks/bench_resnet_shortcuts.py", "--n-images", "2", "--seeds", "0",
                          "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    import json

    rows = json.loads(out.read_text())["rows"]
    assert set(rows) == {"trained", "random", "random_without_identity_shortcuts"}
    assert all(0 <= r["mass_in_mask"] <= 1 and 0 <= r["share_predicting_blank_class"] <= 1 for r in rows.values())
    # the re-initialised networks explain differently from the trained one: their maps are not the trained map
    assert all(rows[k]["spearman_vs_trained"] < 0.99 for k in ("random", "random_without_identity_shortcuts"))
    table = out.with_suffix(".md").read_text()
    assert table.count("\n| ") == 5 and "bench_resnet_shortcuts.py" in table  # three networks and two floors


def test_mutation_script_finds_each_modules_source():
    """Its MODULES are dotted names inside invnb; each must resolve to a file with mutants."""
    run = subprocess.run([sys.executable, "scripts/mutation_test.py", "inverse.solver", "sr.metrics", "--list",
                          "--limit", "1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    files = [line.split(":")[0] for line in run.stdout.splitlines()]
    assert files == ["invnb/inverse/solver.py", "invnb/sr/metrics.py"]
