"""Scaling of the synthetic benchmark's items on a local Dask cluster: 1 vs 2 workers, in one run.

For each worker count, starts a ``LocalCluster`` (processes, one thread each),
warms every worker up (imports, embedded model loaded once per worker via
``worker_cached``), then times :func:`invnb.runs.run_items` over the same
items (``<method>-b<batch>`` of :mod:`invnb.eval.benchmark`) into a fresh
store, and prints items per second and the ratio (2 workers / 1 worker).
Cluster start-up is reported apart and not counted. Results also go to
``--json``.

    python benchmarks/bench_dask.py --n-images 16 --batch-size 4 --json runs/bench_dask.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from invnb.eval.benchmark import BenchmarkConfig, benchmark_keys, benchmark_task  # noqa: E402
from invnb.runs import ResultStore, run_items  # noqa: E402


def _warm(task, key: str) -> int:
    """On a worker: compute one item (loads the model into the worker's cache); returns the pid."""
    task(key)
    return os.getpid()


def measure(workers: int, keys: list[str], config, root: Path) -> dict:
    """Items per second of ``keys`` on a fresh LocalCluster of ``workers`` processes."""
    import distributed

    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    client = distributed.Client(cluster)
    try:
        client.wait_for_workers(workers, timeout=300)
        store = ResultStore(root / f"workers{workers}")
        task = benchmark_task(config, store.directory)
        client.run(_warm, task, keys[0])
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        res = run_items(keys, task, store, progress=False, executor=client.get_executor())
        seconds = time.perf_counter() - t1
        assert res.computed == keys, "a fresh store must compute every item"
        return {"workers": workers, "items": len(keys), "seconds": seconds, "items_per_second": len(keys) / seconds,
                "startup_seconds": startup}
    finally:
        client.close()
        cluster.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", nargs="+", default=["saliency", "input_x_gradient", "grad_cam", "sobel"])
    p.add_argument("--n-images", type=int, default=16, help="held-out images per method (default 16)")
    p.add_argument("--batch-size", type=int, default=4, help="images per item (default 4)")
    p.add_argument("--step", type=int, default=256, help="pixels per deletion/insertion step (default 256)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    config = BenchmarkConfig(n_images=args.n_images, batch_size=args.batch_size, step=args.step)
    keys = benchmark_keys(args.methods, config)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            row = measure(w, keys, config, Path(tmp))
            rows.append(row)
            print(f"{w} worker(s): {row['items']} items in {row['seconds']:.1f} s = "
                  f"{row['items_per_second']:.3f} items/s (start-up {row['startup_seconds']:.1f} s, not counted)",
                  flush=True)
    base = rows[0]["items_per_second"]
    for row in rows:
        row["ratio_to_first"] = row["items_per_second"] / base
    if len(rows) > 1:
        print(f"ratio {rows[-1]['workers']} / {rows[0]['workers']} workers: {rows[-1]['ratio_to_first']:.2f}x")
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    meta = {"command": " ".join([sys.executable, *sys.argv]), "cpu_count": os.cpu_count(), "loadavg_at_end": load,
            "platform": platform.platform(), "methods": args.methods, "n_images": args.n_images,
            "batch_size": args.batch_size, "step": args.step, "rows": rows}
    print(f"cpus: {os.cpu_count()}, load average at the end: {load}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
