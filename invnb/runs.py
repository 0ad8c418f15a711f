"""Resumable per-item result store for long runs.

A long evaluation (hundreds of ImageNet images, every SR image and scale)
writes one small file per finished item as it goes. If the run is
interrupted (Ctrl-C, a killed job, a full disk), running it again with the
same store skips every finished item and computes only the rest.

Each item is one ``.npz`` file named after its key, written atomically
(to a temporary file first, then renamed), so a run killed in the middle of a
write never leaves a half-written item that would later be read as finished.
Each item also carries a SHA-256 of its content, checked whenever it is
reused: an item damaged later (truncated, emptied, a flipped bit) is reported
by key and path, moved aside to ``<key>.npz.corrupt`` and recomputed, so a
rerun always completes.

:func:`run_items` computes the missing items one after another (the default),
or through any ``concurrent.futures``-style executor, e.g. a Dask cluster's
(``client.get_executor()``, or the ``INVNB_SCHEDULER`` the command line sets):
workers compute, this process stores each result as it arrives (one writer).
An :class:`ItemTask` carries what a worker needs as a module-level function
and small keyword arguments; :func:`worker_cached` loads a model once per
worker.

Examples
--------
>>> store = ResultStore("runs/demo")                          # doctest: +SKIP
>>> result = run_items(["img0", "img1"], lambda k: {"score": 1.0}, store)  # doctest: +SKIP
>>> result.computed, result.reused                            # doctest: +SKIP
(['img0', 'img1'], [])
"""

from __future__ import annotations

import hashlib
import io
import json
import numbers
import os
import re
import tempfile
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

__all__ = [
    "CorruptItemError",
    "CorruptItemWarning",
    "ItemTask",
    "Record",
    "ResultStore",
    "RunResult",
    "SCHEDULER_ENV",
    "code_fingerprint",
    "config_hash",
    "git_commit",
    "run_items",
    "worker_cached",
]

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")
_SCALARS_ENTRY = "__scalars__.json"
_DIGEST_ENTRY = "__sha256__"
_CONFIG_FILE = "config.json"
_CORRUPT_SUFFIX = ".corrupt"
#: Environment variable holding a Dask scheduler address for :func:`run_items`
#: (set by ``python -m invnb run NN --workers K`` / ``--scheduler ADDRESS``).
SCHEDULER_ENV = "INVNB_SCHEDULER"


class CorruptItemError(ValueError):
    """A stored item cannot be read back or fails its checksum.

    Attributes
    ----------
    key : str
        The item's key.
    path : pathlib.Path
        Its file.
    """

    def __init__(self, key: str, path: Path, cause: str):
        super().__init__(
            f"stored item {key!r} at {path} is broken ({cause}); "
            "run_items and ResultStore.done move it aside and recompute it"
        )
        self.key, self.path, self.cause = key, path, cause


class CorruptItemWarning(UserWarning):
    """A broken stored item was moved aside and will be recomputed."""


def _content_digest(arrays: Mapping[str, np.ndarray], scalars_json: bytes) -> str:
    """SHA-256 (hex) of an item's arrays (name, dtype, shape, bytes) and scalars."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{arr.dtype.str}\0{arr.shape}\0".encode())
        digest.update(arr.tobytes())
    digest.update(b"scalars\0" + scalars_json)
    return digest.hexdigest()


@dataclass(frozen=True)
class Record:
    """One stored item.

    Attributes
    ----------
    key : str
        The item's key (also its file name without ``.npz``).
    arrays : dict of str to numpy.ndarray
        Array results, with the shapes and dtypes they were saved with.
    scalars : dict of str to (int, float, str, bool or None)
        Scalar results, as JSON values.
    """

    key: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    scalars: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_items` did.

    Attributes
    ----------
    records : list of Record
        One record per requested key, in the order of the keys.
    computed : list of str
        Keys computed in this call.
    reused : list of str
        Keys found finished in the store and loaded instead of computed.
    """

    records: list[Record]
    computed: list[str]
    reused: list[str]


def _to_array(name: str, value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch here
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == object:
        raise TypeError(
            f"array {name!r} has dtype object ({type(value).__name__}); "
            "store numbers, numpy arrays or tensors only"
        )
    return arr


def _to_scalar(name: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(
        f"scalar {name!r} is a {type(value).__name__}; scalars must be int, "
        "float, bool, str or None (pass arrays and tensors in `arrays`)"
    )


class ResultStore:
    """A folder of finished items, one ``<key>.npz`` file per item.

    Parameters
    ----------
    directory : str or os.PathLike
        Folder of the store; created if missing.
    config : mapping, optional
        JSON-serialisable settings of the run (model, ``mask_weight``, ...).
        Written to ``config.json`` on first use; a later store opened on the
        same folder with a *different* config raises ``ValueError``, so
        results of two settings are never mixed silently.

    Examples
    --------
    >>> store = ResultStore(tmp_path, config={"mask_weight": 0.7})  # doctest: +SKIP
    >>> store.save("img0", arrays={"attr": a}, scalars={"reid": True})  # doctest: +SKIP
    >>> store.load("img0").scalars["reid"]                          # doctest: +SKIP
    True
    """

    def __init__(self, directory: str | os.PathLike, config: Mapping[str, Any] | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._verified: dict[str, tuple] = {}  # key -> file signature when last verified
        self.config = None if config is None else json.loads(json.dumps(dict(config), sort_keys=True))
        if self.config is not None:
            path = self.directory / _CONFIG_FILE
            stored = None
            if path.exists():
                try:
                    stored = json.loads(path.read_text())
                except (ValueError, UnicodeDecodeError) as exc:
                    if self.directory.name != config_hash(self.config):
                        raise ValueError(
                            f"the store's config file {path} is unreadable ({exc}); cannot tell "
                            "which run its items belong to: delete the folder or that file"
                        ) from exc
                    # the folder's name is this config's hash, so its items are this config's
                    self._quarantine(CorruptItemError(_CONFIG_FILE, path, f"{type(exc).__name__}: {exc}"))
            if stored is not None:
                if stored != self.config:
                    raise ValueError(
                        f"the store {self.directory} holds results of another run config:\n"
                        f"  stored: {stored}\n  given:  {self.config}\n"
                        "use another directory for this config, or delete the old one"
                    )
            else:
                self._write_atomic(path, json.dumps(self.config, indent=1, sort_keys=True).encode())

    @classmethod
    def for_config(cls, root: str | os.PathLike, config: Mapping[str, Any]) -> "ResultStore":
        """The store of one run config: ``root/<config_hash(config)>``.

        Runs with the same settings share (and resume) one folder; other
        settings get their own, so changing a parameter never clashes with
        earlier results.

        Examples
        --------
        >>> store = ResultStore.for_config("runs/01/items", {"model": "vgg16", "mask_weight": 0.7})  # doctest: +SKIP
        """
        return cls(Path(root) / config_hash(config), config=config)

    def __repr__(self) -> str:
        return f"ResultStore({str(self.directory)!r}, {len(self.keys())} items)"

    def _path(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY_RE.match(key) or key.endswith(".tmp"):
            raise ValueError(
                f"invalid key {key!r}: use letters, digits and _ . = + - "
                "(it becomes a file name), starting with a letter or digit"
            )
        return self.directory / f"{key}.npz"

    def _write_atomic(self, path: Path, payload: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def done(self, key: str) -> bool:
        """Whether ``key`` is finished: its file exists and passes its checksum.

        A broken item is reported (:class:`CorruptItemWarning`, naming key and
        path), moved aside to ``<key>.npz.corrupt`` and counted as not done, so
        it is recomputed. An item verified once is not read again until its
        file changes (size, mtime or inode).
        """
        path = self._path(key)
        sig = self._verified.get(key)
        if sig is not None and sig == _signature(path):
            return True
        return self.get(key) is not None

    def get(self, key: str) -> Record | None:
        """The verified item ``key``, or None if it is missing or was broken (then moved aside)."""
        path = self._path(key)
        sig = _signature(path)
        if sig is None:
            return None
        try:
            record = self._read(key, path)
        except CorruptItemError as err:
            self._quarantine(err)
            return None
        self._verified[key] = sig
        return record

    def _quarantine(self, err: CorruptItemError) -> Path:
        """Move a broken item aside (``<key>.npz.corrupt``, numbered if taken) and warn."""
        dest = err.path.with_name(err.path.name + _CORRUPT_SUFFIX)
        n = 1
        while dest.exists():
            dest = err.path.with_name(f"{err.path.name}{_CORRUPT_SUFFIX}.{n}")
            n += 1
        try:
            os.replace(err.path, dest)
            where = f"moved it to {dest}"
        except FileNotFoundError:  # another process moved or replaced it first
            where = "it was already moved"
        self._verified.pop(err.key, None)
        warnings.warn(
            f"result store: item {err.key!r} at {err.path} is broken ({err.cause}); "
            f"{where}; it will be recomputed",
            CorruptItemWarning,
            stacklevel=3,
        )
        return dest

    def keys(self) -> list[str]:
        """Sorted keys of all finished items (broken ones are moved aside, see :meth:`done`)."""
        out = []
        for p in sorted(self.directory.glob("*.npz")):
            key = p.stem
            if self._verified.get(key) is not None and self._verified[key] == _signature(p):
                out.append(key)
            elif self.get(key) is not None:
                out.append(key)
        return out

    def save(
        self,
        key: str,
        arrays: Mapping[str, Any] | None = None,
        scalars: Mapping[str, Any] | None = None,
    ) -> Record:
        """Store one finished item (atomically; overwrites an existing one).

        Parameters
        ----------
        key : str
            Item name; letters, digits and ``_ . = + -``.
        arrays : mapping of str to array-like, optional
            numpy arrays or tensors (moved to the CPU) of any shape.
        scalars : mapping of str to scalar, optional
            int, float, bool, str or None values.

        Returns
        -------
        Record
            What was stored, as :meth:`load` will return it.
        """
        path = self._path(key)
        arrays = {str(k): _to_array(k, v) for k, v in (arrays or {}).items()}
        scalars = {str(k): _to_scalar(k, v) for k, v in (scalars or {}).items()}
        if _SCALARS_ENTRY in arrays:
            raise ValueError(f"{_SCALARS_ENTRY!r} is reserved; rename that array")
        if _DIGEST_ENTRY in arrays:
            raise ValueError(f"{_DIGEST_ENTRY!r} is reserved; rename that array")
        scalars_json = json.dumps(scalars).encode()
        digest = _content_digest(arrays, scalars_json)
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            **arrays,
            **{
                _SCALARS_ENTRY: np.frombuffer(scalars_json, dtype=np.uint8),
                _DIGEST_ENTRY: np.frombuffer(digest.encode(), dtype=np.uint8),
            },
        )
        self._write_atomic(path, buf.getvalue())
        self._verified[key] = _signature(path)
        return Record(key, arrays, scalars)

    def load(self, key: str) -> Record:
        """Load a finished item.

        Raises
        ------
        KeyError
            If ``key`` is not finished.
        CorruptItemError
            If its file is unreadable or fails its checksum (the file is left
            in place; :meth:`done`, :meth:`get` and :func:`run_items` move it
            aside and recompute).
        """
        path = self._path(key)
        if not path.exists():
            raise KeyError(f"{key!r} is not in the store {self.directory}; check store.done(key) first")
        return self._read(key, path)

    def _read(self, key: str, path: Path) -> Record:
        """Read every entry of ``path`` and check its checksum; CorruptItemError if anything fails."""
        try:
            with np.load(path, allow_pickle=False) as data:
                entries = {k: data[k] for k in data.files}  # zipfile checks each entry's CRC-32
        except FileNotFoundError:
            raise KeyError(f"{key!r} is not in the store {self.directory}") from None
        except Exception as exc:  # zipfile.BadZipFile and anything else a damaged file raises
            raise CorruptItemError(key, path, f"{type(exc).__name__}: {exc}") from exc
        raw_scalars = entries.pop(_SCALARS_ENTRY, None)
        raw_digest = entries.pop(_DIGEST_ENTRY, None)
        try:
            scalars_json = b"{}" if raw_scalars is None else raw_scalars.tobytes()
            scalars = json.loads(scalars_json.decode())
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptItemError(key, path, f"unreadable scalars: {exc}") from exc
        if raw_digest is None:
            if raw_scalars is None:
                raise CorruptItemError(key, path, "no scalars entry and no checksum: not an item file")
            # an item written before checksums existed: the zip CRCs above are its only check
        else:
            expected = raw_digest.tobytes().decode("ascii", errors="replace")
            if _content_digest(entries, scalars_json) != expected:
                raise CorruptItemError(key, path, "content does not match its stored SHA-256")
        if not isinstance(scalars, dict):
            raise CorruptItemError(key, path, "scalars entry is not a JSON object")
        return Record(key, entries, scalars)

    def scalars_table(self, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Scalars of the given (default: all finished) items, one dict per item with its ``key``."""
        return [{"key": k, **self.load(k).scalars} for k in (self.keys() if keys is None else keys)]


def _signature(path: Path) -> tuple | None:
    """(size, mtime_ns, inode) of a file, or None if it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def config_hash(config: Mapping[str, Any]) -> str:
    """A short, stable name for a JSON-serialisable config (12 hex digits of its SHA-256).

    Key order does not matter; ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` give the same name.
    """
    canonical = json.dumps(dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def git_commit(root: str | os.PathLike | None = None) -> str | None:
    """HEAD commit of the git checkout at `root` (default: invnb's source root), ``+dirty`` when
    tracked files have uncommitted changes; None outside git or without git."""
    import subprocess

    from .paths import SOURCE_ROOT

    where = str(SOURCE_ROOT if root is None else root)
    try:
        head = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def code_fingerprint() -> str:
    """12 hex digits identifying the installed invnb source (all its ``.py`` files).

    Put it in a run's config so that results computed by other code are never
    reused: a resumed run must compute every item with the same code.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _split_output(key: str, out: Any) -> tuple[dict, dict]:
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
    arrays, scalars = _split_output(key, fn(key))
    return ({str(k): _to_array(k, v) for k, v in arrays.items()},
            {str(k): _to_scalar(k, v) for k, v in scalars.items()})


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
            from .cluster import executor_for  # imports dask.distributed only here

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
            arrays, scalars = _split_output(key, fn(key))
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
