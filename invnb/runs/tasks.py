"""Running items serially or on a Dask cluster, each computed once and stored."""

from __future__ import annotations

import numbers
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from invnb.runs.store import Record, ResultStore, RunResult, to_array, to_scalar

__all__ = ["SCHEDULER_ENV", "ItemTask", "worker_cached", "run_items"]


#: Environment variable holding a Dask scheduler address for :func:`run_items`
#: (set by ``python -m invnb run NN --workers K`` / ``--scheduler ADDRESS``).
SCHEDULER_ENV = "INVNB_SCHEDULER"


def split_output(key: str, out: Any) -> tuple[dict, dict]:
    if isinstance(out, Record):
        return out.arrays, out.scalars
    if not isinstance(out, Mapping):
        raise TypeError(
            f"fn({key!r}) returned a {type(out).__name__}; return a dict of "
            "name -> scalar / array / tensor"
        )
    arrays, scalars = {}, {}
    for name, value in out.items():
        if hasattr(value, "detach") and value.dim() == 0:  # 0-d tensor
            value = value.item()
        if value is None or isinstance(value, (bool, str, numbers.Number, np.generic)):
            scalars[name] = value
        else:
            arrays[name] = value
    return arrays, scalars


@dataclass(frozen=True)
class ItemTask:
    """A picklable item function: ``task(key) == func(key, **kwargs)``.

    What a worker needs travels as ``func`` (a module-level function, pickled
    by reference) and small ``kwargs`` (paths, names, numbers), never as a
    model or a dataset: ``func`` builds those itself through
    :func:`worker_cached`, once per worker process. Pass it as ``fn`` to
    :func:`run_items` with an executor.

    Examples
    --------
    >>> task = ItemTask(evaluate_batch, {"method": "gradient", "n_images": 8})  # doctest: +SKIP
    >>> run_items(keys, task, store, executor=client.get_executor())            # doctest: +SKIP
    """

    func: Callable[..., Mapping[str, Any]]
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not callable(self.func):
            raise TypeError(f"ItemTask.func must be callable, got {type(self.func).__name__}")

    def __call__(self, key: str) -> Mapping[str, Any]:
        return self.func(key, **self.kwargs)


_WORKER_CACHE: "OrderedDict[tuple, Any]" = OrderedDict()


#: How many objects `worker_cached` keeps per process (the least recently used goes first),
#: so a kernel that reruns a chapter with other parameters does not pile up models.
WORKER_CACHE_SIZE = 4


def worker_cached(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``factory(*args, **kwargs)``, built once per process and reused afterwards.

    Item functions call it to load their model and data on a worker once,
    from a small description (a path, a name, a seed), instead of receiving
    them pickled with every item. The arguments must have a stable ``repr``
    (they form the cache key). In the serial default it caches in the one
    process, so a second ``run_items`` call with the same description reuses
    the model too. It keeps the `WORKER_CACHE_SIZE` most recently used
    objects.

    Examples
    --------
    >>> model = worker_cached(load_embedded_model, None, device="cpu")  # doctest: +SKIP
    """
    key = (getattr(factory, "__module__", ""), getattr(factory, "__qualname__", repr(factory)),
           repr(args), repr(sorted(kwargs.items())))
    if key in _WORKER_CACHE:
        _WORKER_CACHE.move_to_end(key)
        return _WORKER_CACHE[key]
    value = factory(*args, **kwargs)
    _WORKER_CACHE[key] = value
    while len(_WORKER_CACHE) > WORKER_CACHE_SIZE:
        _WORKER_CACHE.popitem(last=False)
    return value


def _compute_item(fn: Callable[[str], Mapping[str, Any]], key: str) -> tuple[dict, dict]:
    """Run on a worker: ``fn(key)`` as numpy arrays and JSON scalars (small, picklable, no tensors)."""
    arrays, scalars = split_output(key, fn(key))
    return ({str(k): to_array(k, v) for k, v in arrays.items()},
            {str(k): to_scalar(k, v) for k, v in scalars.items()})


def run_items(
    keys: Iterable[str],
    fn: Callable[[str], Mapping[str, Any]],
    store: ResultStore,
    progress: bool = True,
    desc: str | None = None,
    executor: Any = None,
) -> RunResult:
    """Compute ``fn(key)`` for every key not yet in ``store``; load the others.

    Each result is saved as soon as it is computed, so an interrupted call
    loses at most the items in progress; calling again resumes. A stored item
    that fails its checksum is reported (:class:`CorruptItemWarning`), moved
    aside and recomputed.

    With an ``executor`` the missing items are computed by its workers and
    saved here, in the calling process, as each one arrives: the store has a
    single writer, every file is written atomically and checksummed, and an
    item whose worker died mid-way is never written (a Dask executor
    recomputes it on another worker). With ``executor=None`` and the
    environment variable ``INVNB_SCHEDULER`` set (``python -m invnb run NN
    --workers K`` does this), the Dask cluster at that address is used for an
    :class:`ItemTask` ``fn``; any other ``fn`` is computed serially with a
    warning. Otherwise items are computed one after another in this process
    and Dask is not imported.

    Parameters
    ----------
    keys : iterable of str
        Item keys, in the order to process them (duplicates are not allowed).
    fn : callable
        ``fn(key) -> dict`` of name to value: Python/numpy scalars and strings
        are stored as scalars, arrays and tensors as arrays. With an executor
        it is pickled once per item: use an :class:`ItemTask` (a module-level
        function and small kwargs) so that models are not shipped with it.
    store : ResultStore
        Where finished items live.
    progress : bool
        Show a tqdm progress bar over the keys (fed by completed items).
    desc : str, optional
        Label of the progress bar.
    executor : concurrent.futures.Executor, optional
        Anything with ``submit(f, *args) -> Future`` (a Dask
        ``Client.get_executor()``, a ``ProcessPoolExecutor``). Default: the
        ``INVNB_SCHEDULER`` cluster if set, else serial.

    Returns
    -------
    RunResult
        ``records`` for every key (in order), and which keys were
        ``computed`` now or ``reused`` from the store.

    Examples
    --------
    >>> res = run_items([f"img{i}" for i in range(3)], score_one, ResultStore("runs/x"))  # doctest: +SKIP
    >>> from dask.distributed import Client                                               # doctest: +SKIP
    >>> with Client(n_workers=2, threads_per_worker=1) as client:                         # doctest: +SKIP
    ...     res = run_items(keys, ItemTask(score_batch, {"n": 8}), store, executor=client.get_executor())
    """
    keys = list(keys)
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"duplicate keys {dup}; every item needs its own key")
    for k in keys:
        store._path(k)  # validate all keys before computing anything
    if executor is None and os.environ.get(SCHEDULER_ENV):
        if isinstance(fn, ItemTask):
            from invnb.runs.cluster import executor_for

            executor = executor_for(os.environ[SCHEDULER_ENV], store.directory)
        else:
            warnings.warn(
                f"{SCHEDULER_ENV} is set but fn is a {type(fn).__name__}, not an invnb.runs.ItemTask: "
                "computing these items serially in this process (wrap the item function as "
                "ItemTask(module_level_function, kwargs) to run it on the cluster)",
                RuntimeWarning,
                stacklevel=2,
            )
    from tqdm.auto import tqdm

    bar = tqdm(total=len(keys), desc=desc, disable=not progress)
    try:
        if executor is None:
            return _run_serial(keys, fn, store, bar)
        return _run_parallel(keys, fn, store, bar, executor)
    finally:
        bar.close()


def _run_serial(keys, fn, store, bar) -> RunResult:
    records, computed, reused = [], [], []
    for key in keys:
        record = store.get(key)  # verified, or None (a broken item is moved aside first)
        if record is not None:
            records.append(record)
            reused.append(key)
        else:
            arrays, scalars = split_output(key, fn(key))
            records.append(store.save(key, arrays=arrays, scalars=scalars))
            computed.append(key)
        bar.update(1)
    return RunResult(records, computed, reused)


def _run_parallel(keys, fn, store, bar, executor) -> RunResult:
    from concurrent.futures import FIRST_COMPLETED, wait

    found = {}
    for key in keys:
        record = store.get(key)
        if record is not None:
            found[key] = record
    bar.update(len(found))
    futures = {executor.submit(_compute_item, fn, key): key for key in keys if key not in found}
    done_now: dict[str, Record] = {}
    pending = set(futures)
    try:
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            failed = None
            for fut in finished:  # store every item that succeeded before raising a failure
                if fut.exception() is not None:
                    failed = failed or fut
                    continue
                key = futures[fut]
                arrays, scalars = fut.result()
                done_now[key] = store.save(key, arrays=arrays, scalars=scalars)
                bar.update(1)
            if failed is not None:
                raise failed.exception()
    finally:
        for fut in pending:  # an item failed or the run was interrupted: drop the rest
            fut.cancel()
    records = [found[k] if k in found else done_now[k] for k in keys]
    return RunResult(records, [k for k in keys if k in done_now], [k for k in keys if k in found])
