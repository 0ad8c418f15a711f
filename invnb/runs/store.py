"""Resumable per-item result store: one small file per finished item, damage detected on load."""

from __future__ import annotations

import hashlib
import io
import json
import numbers
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from invnb.runs.provenance import config_hash, config_signature

__all__ = ["CorruptItemError", "CorruptItemWarning", "Record", "RunResult", "ResultStore"]


_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")


_SCALARS_ENTRY = "__scalars__.json"


_DIGEST_ENTRY = "__sha256__"


_CONFIG_FILE = "config.json"


_CORRUPT_SUFFIX = ".corrupt"


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


def to_array(name: str, value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch here
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == object:
        raise TypeError(
            f"array {name!r} has dtype object ({type(value).__name__}); "
            "store numbers, numpy arrays or tensors only"
        )
    return arr


def to_scalar(name: str, value: Any) -> Any:
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
        if sig is not None and sig == config_signature(path):
            return True
        return self.get(key) is not None

    def get(self, key: str) -> Record | None:
        """The verified item ``key``, or None if it is missing or was broken (then moved aside)."""
        path = self._path(key)
        sig = config_signature(path)
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
            if self._verified.get(key) is not None and self._verified[key] == config_signature(p):
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
        arrays = {str(k): to_array(k, v) for k, v in (arrays or {}).items()}
        scalars = {str(k): to_scalar(k, v) for k, v in (scalars or {}).items()}
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
        self._verified[key] = config_signature(path)
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
