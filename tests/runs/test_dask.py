"""run_items on a 2-process Dask LocalCluster (CPU): same results as serial, each item once, worker faults.

One cluster is shared by the whole file (starting one takes ~20 s on a busy
2-core machine); the worker-killing test runs last.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest

from invnb.runs import ItemTask, ResultStore, run_items

distributed = pytest.importorskip("distributed", reason="the dask extra is part of the test install: pip install -e .[test]")

from conftest import REPO as ROOT


def _square(key: str, log_dir: str, delay: float = 0.0) -> dict:
    """Cheap item: writes start-<key>-<pid>-<uuid>, computes, writes done-<key>-<uuid>."""
    tag = uuid.uuid4().hex[:8]
    Path(log_dir, f"start-{key}-{os.getpid()}-{tag}").touch()
    time.sleep(delay)
    i = int(key.removeprefix("item"))
    out = {"value": i * i, "vector": np.arange(3) * i, "pid": os.getpid()}
    Path(log_dir, f"done-{key}-{tag}").touch()
    return out


def _count(log_dir: Path, prefix: str, key: str) -> int:
    return sum(1 for p in log_dir.iterdir() if p.name.startswith(f"{prefix}-{key}-"))


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    try:
        client.wait_for_workers(2, timeout=120)
        yield client
    finally:
        from invnb.runs import close_clients

        close_clients()  # the ones run_items made from INVNB_SCHEDULER
        client.close()
        cluster.close()


def test_cheap_items_match_serial_and_each_item_is_computed_once(client, tmp_path):
    keys = [f"item{i}" for i in range(12)]
    serial_log, dask_log = tmp_path / "log_serial", tmp_path / "log_dask"
    serial_log.mkdir(), dask_log.mkdir()
    serial = run_items(keys, ItemTask(_square, {"log_dir": str(serial_log)}), ResultStore(tmp_path / "serial"),
                       progress=False)
    store = ResultStore(tmp_path / "dask")
    par = run_items(keys, ItemTask(_square, {"log_dir": str(dask_log)}), store, progress=False,
                    executor=client.get_executor())
    assert par.computed == keys and par.reused == []
    assert [r.key for r in par.records] == keys
    for a, b in zip(serial.records, par.records):
        assert a.scalars["value"] == b.scalars["value"]
        np.testing.assert_array_equal(a.arrays["vector"], b.arrays["vector"])
    for k in keys:
        assert _count(dask_log, "done", k) == 1, k
        assert _count(dask_log, "start", k) == 1, k
    worker_pids = set(client.run(os.getpid).values())
    assert {r.scalars["pid"] for r in par.records} <= worker_pids
    assert os.getpid() not in {r.scalars["pid"] for r in par.records}
    # stored by the parent, read back identical by a fresh handle; a rerun computes nothing
    again = run_items(keys, ItemTask(_square, {"log_dir": str(dask_log)}), ResultStore(tmp_path / "dask"),
                      progress=False, executor=client.get_executor())
    assert again.computed == [] and again.reused == keys
    assert sum(1 for _ in dask_log.iterdir()) == 2 * len(keys)
    assert not list((tmp_path / "dask").glob("*.tmp")) and not list((tmp_path / "dask").glob(".*.tmp"))


def test_real_synthetic_benchmark_items_match_serial(client, tmp_path):
    from invnb.eval.benchmark import BenchmarkConfig, benchmark_keys, benchmark_task

    config = BenchmarkConfig(n_images=2, batch_size=2, step=1024, tie_orders=1)
    keys = benchmark_keys(["saliency", "sobel"], config)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers (Dask sets OMP_NUM_THREADS=1 in them)
    try:
        serial = run_items(keys, benchmark_task(config, tmp_path / "serial"), ResultStore(tmp_path / "serial"),
                           progress=False)
    finally:
        torch.set_num_threads(threads)
    par = run_items(keys, benchmark_task(config, tmp_path / "dask"), ResultStore(tmp_path / "dask"), progress=False,
                    executor=client.get_executor())
    assert par.computed == keys
    for a, b in zip(serial.records, par.records):
        assert a.key == b.key and set(a.arrays) == set(b.arrays)
        for name in ("classes", "labels", "pointing_game"):
            np.testing.assert_array_equal(a.arrays[name], b.arrays[name], err_msg=f"{a.key} {name}")
        for name in ("attributions", "deletion_auc", "insertion_auc"):
            np.testing.assert_allclose(a.arrays[name], b.arrays[name], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{a.key} {name}")
        assert a.arrays["attributions"].shape == (2, 64, 64)
        assert np.isfinite(a.arrays["deletion_auc"]).all()


def test_scheduler_environment_variable_routes_item_tasks_to_the_cluster(client, tmp_path, monkeypatch):
    from invnb.runs import check_shared_storage

    assert check_shared_storage(client, tmp_path / "probe") == 2
    assert list((tmp_path / "probe").iterdir()) == []  # probe files removed
    monkeypatch.setenv("INVNB_SCHEDULER", client.scheduler.address)
    log = tmp_path / "log"
    log.mkdir()
    res = run_items(["item1", "item2"], ItemTask(_square, {"log_dir": str(log)}), ResultStore(tmp_path / "a"),
                    progress=False)
    assert os.getpid() not in {r.scalars["pid"] for r in res.records}
    with pytest.warns(RuntimeWarning, match="not an invnb.runs.ItemTask"):
        res = run_items(["item3"], lambda k: _square(k, str(log)), ResultStore(tmp_path / "b"), progress=False)
    assert res.records[0].scalars["pid"] == os.getpid()


def test_serial_default_starts_no_dask_process(tmp_path):
    script = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from invnb.runs import ItemTask, ResultStore, run_items
        def f(key, n):
            return {"x": n}
        res = run_items(["a", "b"], ItemTask(f, {"n": 2}), ResultStore(sys.argv[1]), progress=False)
        from invnb.book.chapter_items import tradeoff_item  # and a chapter's item (chapter 02, one cheap method)
        task = ItemTask(tradeoff_item, dict(model_name="embedded", n_images=1, seed=0, batch_size=1,
            method_options={}, mask_weights=[1.0], fractions=[0.5], exponents=[1.0], deletion_step=4096,
            tie_orders=1))
        res2 = run_items(["sobel-b0"], task, ResultStore(sys.argv[1] + "2"), progress=False)
        assert res2.computed == ["sobel-b0"] and res2.records[0].arrays["deletion"].shape[0] == 1
        me = os.getpid()
        children = [c for t in Path(f"/proc/{me}/task").iterdir()
                    for c in (t / "children").read_text().split()] if Path(f"/proc/{me}/task").exists() else []
        print(len(res.computed), "distributed" in sys.modules, "dask" in sys.modules, len(children))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "INVNB_SCHEDULER"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "s")], capture_output=True, text=True,
                         env=env, timeout=120, check=True)
    assert out.stdout.split() == ["2", "False", "False", "0"], out.stdout + out.stderr


def test_cli_rejects_bad_worker_options(capsys):
    from invnb.book.cli import main

    with pytest.raises(SystemExit):
        main(["run", "00", "--out", "x", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert "not allowed with" in capsys.readouterr().err
    assert main(["run", "00", "--out", "x", "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_cli_scheduler_runs_a_notebooks_items_on_the_cluster(client, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("output_dir = '.'")
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import os\nfrom pathlib import Path\nfrom invnb.runs import ItemTask, ResultStore, run_items\n"
        "def item(key, k):\n    return {'v': k * int(key[4:]), 'pid': os.getpid()}\n"
        "res = run_items([f'item{i}' for i in range(4)], ItemTask(item, {'k': 3}), "
        "ResultStore(Path(output_dir) / 'items'), progress=False)\n"
        "Path(output_dir, 'kernel.pid').write_text(str(os.getpid()))\n"
    )
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("INVNB_SCHEDULER", None)
    proc = subprocess.run([sys.executable, "-m", "invnb", "run", str(tmp_path / "tiny.ipynb"), "--out", str(out),
                           "--scheduler", client.scheduler.address, "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dashboard" in proc.stderr and client.scheduler.address in proc.stderr
    store = ResultStore(out / "items")
    assert store.keys() == [f"item{i}" for i in range(4)]
    pids = {store.load(k).scalars["pid"] for k in store.keys()}
    assert [store.load(f"item{i}").scalars["v"] for i in range(4)] == [0, 3, 6, 9]
    assert pids <= set(client.run(os.getpid).values())
    assert int((out / "kernel.pid").read_text()) not in pids
    assert not [p for p in out.iterdir() if p.name.startswith(".invnb-probe")]


CH02_TINY = dict(n_images=2, batch_size=1, methods=["saliency", "sobel"], paper_point=False, method_options={},
                mask_weights=[1.0], fractions=[0.1, 0.5], exponents=[1.0], deletion_step=1024, tie_orders=1)


@pytest.fixture(scope="module")
def chapter02_task(tmp_path_factory):
    """Chapter 02's own parameters, import and item cells, executed here with tiny parameters; run_items captured.

    Returns the keys and the ItemTask the item cell passes to run_items.
    """
    import nbformat

    from invnb.runs import RunResult

    nb = nbformat.read(ROOT / "notebooks" / "02_tradeoff.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    item_cell = next(c for c in code if "run_items(" in c)
    captured = {}

    def capture(keys, fn, store, **kwargs):
        captured.update(keys=list(keys), fn=fn)
        return RunResult([], [], [])

    ns: dict = {}
    exec(code[0], ns)  # parameters
    ns.update(CH02_TINY, output_dir=str(tmp_path_factory.mktemp("ch02")))
    exec(code[1], ns)  # imports
    # the item cell (hidden on the page) imports the run plumbing itself: run those imports, then capture
    lines = item_cell.splitlines()
    exec("\n".join(l for l in lines if l.startswith(("from ", "import "))), ns)
    ns["run_items"] = capture
    exec("\n".join(l for l in lines if not l.startswith(("from ", "import "))), ns)
    return captured["keys"], captured["fn"]


def _logged_item(key: str, log_dir: str, task: ItemTask) -> dict:
    """``task(key)`` plus this process's pid, leaving a start-<key>-<pid>-<uuid> file."""
    Path(log_dir, f"start-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}").touch()
    return {**task(key), "pid": os.getpid()}


def _import_chapter_items() -> None:
    pass


def test_chapter02_item_cell_passes_a_small_picklable_item_task(chapter02_task):
    import pickle

    from invnb.book import tradeoff_item

    keys, task = chapter02_task
    assert isinstance(task, ItemTask) and task.func is tradeoff_item
    assert keys == [f"{m}-b{b}" for m in ("inverse", "saliency", "sobel") for b in (0, 1)]
    blob = pickle.dumps(task)
    assert len(blob) < 2000, f"the task pickles to {len(blob)} bytes: a model or data travels with it"
    assert pickle.loads(blob).kwargs == task.kwargs


def test_chapter02_items_on_the_cluster_equal_serial_once_each(chapter02_task, client, tmp_path, monkeypatch):
    import torch

    import invnb.runs

    all_keys, task = chapter02_task
    keys = [k for k in all_keys if not k.startswith("inverse")]  # the inverse alone takes ~10 s per image here
    warm = [client.submit(_import_chapter_items, pure=False, workers=[w])  # the workers import torch
            for w in client.scheduler_info()["workers"]]                   # while the serial run computes
    monkeypatch.delenv("INVNB_SCHEDULER", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers
    try:
        serial = run_items(keys, task, ResultStore(tmp_path / "serial"), progress=False)
    finally:
        torch.set_num_threads(threads)
    distributed.wait(warm)
    # the cluster the command line would name: an ItemTask goes there without a serial-fallback warning
    monkeypatch.setenv("INVNB_SCHEDULER", client.scheduler.address)
    log = tmp_path / "log"
    log.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        par = run_items(keys, ItemTask(_logged_item, {"log_dir": str(log), "task": task}),
                        ResultStore(tmp_path / "dask"), progress=False)
    assert par.computed == keys
    for k in keys:
        assert _count(log, "start", k) == 1, k
    worker_pids = set(client.run(os.getpid).values())
    assert {r.scalars["pid"] for r in par.records} <= worker_pids
    loaded = client.run(lambda: sorted(k[1] for k in invnb.runs.tasks._WORKER_CACHE))
    assert any("classifier" in names for names in loaded.values()), loaded  # a worker loaded the model itself
    for a, b in zip(serial.records, par.records):
        assert a.key == b.key and set(a.arrays) == set(b.arrays)
        for name in a.arrays:
            np.testing.assert_allclose(a.arrays[name], b.arrays[name], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{a.key} {name}")
        rows_a, rows_b = json.loads(a.scalars["rows"]), json.loads(b.scalars["rows"])
        assert [(r["method"], r["mode"]) for r in rows_a] == [(r["method"], r["mode"]) for r in rows_b]
        np.testing.assert_allclose([[r["amount"], r["reid_top1"]] for r in rows_a],
                                   [[r["amount"], r["reid_top1"]] for r in rows_b], rtol=1e-5, atol=1e-6)
        assert a.arrays["deletion"].shape == (1, 5) and np.isfinite(a.arrays["deletion_auc"]).all()


def test_chapter_items_reject_bad_keys():
    from invnb.book import reid_item, tradeoff_item, vdsr_item

    with pytest.raises(ValueError, match="expected '<name>-b<first image>'"):
        tradeoff_item("saliency", model_name="embedded", **{k: CH02_TINY[k] for k in (
            "batch_size", "method_options", "mask_weights", "fractions", "exponents", "deletion_step", "tie_orders")})
    with pytest.raises(ValueError, match="outside the 2 images"):
        tradeoff_item("sobel-b5", model_name="embedded", n_images=2, seed=0, **{k: CH02_TINY[k] for k in (
            "batch_size", "method_options", "mask_weights", "fractions", "exponents", "deletion_step", "tie_orders")})
    with pytest.raises(ValueError, match="expected 'batch<first image"):
        reid_item("b0", setting="default", mask_weight=None, batch_size=2, model_name="embedded")
    with pytest.raises(ValueError, match="no SR image 'embedded-x2-nope'"):
        vdsr_item("embedded-x2-nope", weights=None, root=None, datasets=["Set5"], scales=[2], n_per_dataset=1,
                  crop=16, setting="vdsr", mask_weight=None)


def _square_or_fail(key: str, log_dir: str, bad: str) -> dict:
    if key == bad:
        raise ValueError(f"item {key} fails on purpose")
    return _square(key, log_dir)


def test_a_failing_item_stops_the_run_and_a_rerun_resumes_from_the_store(client, tmp_path):
    keys = [f"item{i}" for i in range(6)]
    log = tmp_path / "log"
    log.mkdir()
    store = ResultStore(tmp_path / "s")
    with pytest.raises(ValueError, match="item5 fails on purpose"):
        run_items(keys, ItemTask(_square_or_fail, {"log_dir": str(log), "bad": "item5"}), store, progress=False,
                  executor=client.get_executor())
    stored = ResultStore(tmp_path / "s").keys()
    assert stored and "item5" not in stored and set(stored) < set(keys)
    res = run_items(keys, ItemTask(_square, {"log_dir": str(log)}), ResultStore(tmp_path / "s"), progress=False,
                    executor=client.get_executor())
    assert res.reused == stored and res.computed == [k for k in keys if k not in stored]
    assert [r.scalars["value"] for r in res.records] == [i * i for i in range(6)]
    for k in stored:
        assert _count(log, "done", k) == 1, k  # not computed again


def test_worker_killed_mid_run_leaves_a_complete_correct_result(client, tmp_path):
    keys = [f"item{i}" for i in range(10)]
    log = tmp_path / "log"
    log.mkdir()
    killed: list[int] = []

    def kill_first_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            started = [p.name for p in log.iterdir() if p.name.startswith("start-")]
            if started:
                pid = int(started[0].split("-")[2])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    store = ResultStore(tmp_path / "s")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_items(keys, ItemTask(_square, {"log_dir": str(log), "delay": 0.5}), store, progress=False,
                        executor=client.get_executor())
    killer.join()
    assert killed, "no worker started an item within 60 s"
    assert res.computed == keys
    fresh = ResultStore(tmp_path / "s")
    assert fresh.keys() == sorted(keys)
    for k in keys:
        i = int(k.removeprefix("item"))
        rec = fresh.load(k)
        assert rec.scalars["value"] == i * i
        np.testing.assert_array_equal(rec.arrays["vector"], np.arange(3) * i)
        assert rec.scalars["pid"] != killed[0]  # nothing from the killed worker was stored
    # the item the killed worker had started was computed again elsewhere
    victim = [p.name.split("-")[1] for p in log.iterdir() if p.name.startswith("start-") and
              int(p.name.split("-")[2]) == killed[0]]
    assert victim and all(_count(log, "done", k) >= 1 for k in victim)
    assert not list((tmp_path / "s").glob(".*.tmp"))
