"""Dask clusters for :func:`invnb.runs.run_items`: start one, connect to one, check its storage.

Only imported when a cluster is asked for (``python -m invnb run NN --workers K``
or ``--scheduler ADDRESS``, or ``INVNB_SCHEDULER`` set): the serial default
never imports Dask. Needs the ``dask`` extra (``pip install -e .[dask]``).

Examples
--------
>>> cluster = start_local_cluster(2)                      # doctest: +SKIP
>>> client = connect(cluster.scheduler_address)           # doctest: +SKIP
>>> check_shared_storage(client, "runs/x")                # doctest: +SKIP
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any

__all__ = ["cuda_device_count", "start_local_cluster", "connect", "close_clients", "check_shared_storage", "executor_for"]


_CLIENTS: dict[str, Any] = {}  # scheduler address -> Client of this process


_CHECKED: set[tuple[str, str]] = set()  # (address, directory) already probed


def _distributed():
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            "running items on a Dask cluster needs dask.distributed: pip install -e '.[dask]' "
            "(or pip install 'dask[distributed]==2026.8.0')"
        ) from err
    return distributed


def cuda_device_count() -> int:
    """Number of CUDA GPUs this process sees (0 without torch's CUDA)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def start_local_cluster(workers: int, dashboard_address: str = ":0", gpus: int | None = None):
    """A local Dask cluster of worker processes with one thread each.

    Parameters
    ----------
    workers : int
        CPU worker processes (>= 1), used when no GPU is visible.
    dashboard_address : str
        Where the dashboard listens (``":0"``: any free port; ``":8787"``).
    gpus : int, optional
        GPUs to use, one worker each (its ``CUDA_VISIBLE_DEVICES`` set to one
        GPU, so its ``cuda`` device is that GPU); default: every visible GPU.
        With ``gpus=0`` or no GPU, ``workers`` CPU processes.

    Returns
    -------
    distributed.SpecCluster
        Close it (``cluster.close()``) when done; ``cluster.dashboard_link``
        is the dashboard.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    distributed = _distributed()
    n_gpus = cuda_device_count() if gpus is None else gpus
    if n_gpus <= 0:
        return distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=dashboard_address,
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d.strip() for d in visible.split(",")][:n_gpus] if visible else [str(i) for i in range(n_gpus)]
    specs = {
        f"gpu{gid}": {"cls": distributed.Nanny,
                      "options": {"nthreads": 1, "env": {"CUDA_VISIBLE_DEVICES": gid}}}
        for gid in ids
    }
    scheduler = {"cls": distributed.Scheduler, "options": {"dashboard_address": dashboard_address}}
    return distributed.SpecCluster(workers=specs, scheduler=scheduler)


def connect(address: str):
    """This process's Dask ``Client`` of the scheduler at ``address`` (made once, then reused)."""
    if address not in _CLIENTS:
        distributed = _distributed()
        try:
            _CLIENTS[address] = distributed.Client(address, timeout="30s")
        except (OSError, TimeoutError) as err:
            raise OSError(f"cannot reach the Dask scheduler at {address!r} ({err}); is the cluster running?") from err
    return _CLIENTS[address]


def close_clients() -> None:
    """Close the clients :func:`connect` made (before their clusters go away)."""
    while _CLIENTS:
        _, client = _CLIENTS.popitem()
        client.close()
    _CHECKED.clear()


def _probe_write(directory: str, token: str) -> str:
    """On a worker: write a probe file into ``directory``; returns its name."""
    name = f".invnb-probe-{token}-{uuid.uuid4().hex[:8]}"
    Path(directory, name).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    return name


def _probe_read(directory: str, names: list[str]) -> list[str]:
    """On a worker: the probe files of ``names`` it cannot see in ``directory``."""
    return [n for n in names if not Path(directory, n).exists()]


def check_shared_storage(client, directory: str | os.PathLike) -> int:
    """Check that every worker of ``client`` can write ``directory`` and see what the others and this process write.

    Each worker writes one probe file into ``directory``; this process and
    every worker then look for all of them (and for one written here). A
    worker on a machine that does not mount the same folder fails the check.

    Returns
    -------
    int
        The number of workers checked.

    Raises
    ------
    OSError
        Naming the workers that cannot write or cannot see the folder.
    """
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    names: list[str] = []
    try:
        try:
            written = client.run(_probe_write, str(directory), token)
        except OSError as err:
            raise OSError(f"a Dask worker cannot write the result folder {directory}: {err}") from err
        names = list(written.values())
        here = _probe_write(str(directory), token)
        names.append(here)
        unseen_here = [n for n in names if not (directory / n).exists()]
        unseen = {w: miss for w, miss in client.run(_probe_read, str(directory), names).items() if miss}
        if unseen_here or unseen:
            raise OSError(
                f"the result folder {directory} is not shared by this process and every Dask worker "
                f"(missing probe files: here {unseen_here}, on workers {unseen}); put --out on storage "
                "that every worker mounts at the same path (e.g. a cluster file system)"
            )
        return len(written)
    finally:
        for n in names:
            try:
                (directory / n).unlink()
            except FileNotFoundError:
                pass


def executor_for(address: str, directory: str | os.PathLike):
    """A ``concurrent.futures`` executor on the cluster at ``address``, its storage checked for ``directory`` once."""
    client = connect(address)
    key = (address, str(Path(directory).resolve()))
    if key not in _CHECKED:
        check_shared_storage(client, directory)
        _CHECKED.add(key)
    return client.get_executor()
