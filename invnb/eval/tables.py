"""Reading and writing result tables (CSV)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

__all__ = ["write_table", "read_table"]


def write_table(rows: Sequence[dict], path: str | Path) -> Path:
    """Write rows to ``.csv`` or ``.json`` (chosen by the suffix).

    Parameters
    ----------
    rows : sequence of dict
        Table rows; the CSV header is the union of keys in first-seen order.
    path : str or Path
        Output file, ending in ``.csv`` or ``.json``; folders are created.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(list(rows), indent=1))
    elif path.suffix == ".csv":
        fields: list[str] = []
        for r in rows:
            fields += [k for k in r if k not in fields]
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise ValueError(f"unknown table format {path.suffix!r}; use a .csv or .json file name.")
    return path


def read_table(path: str | Path) -> list[dict]:
    """Read rows written by :func:`write_table` (CSV numbers come back as float/int)."""
    path = Path(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix != ".csv":
        raise ValueError(f"unknown table format {path.suffix!r}; use a .csv or .json file name.")

    def parse(v: str):
        for cast in (int, float):
            try:
                return cast(v)
            except ValueError:
                pass
        return v

    with path.open(newline="") as fh:
        return [{k: parse(v) for k, v in r.items()} for r in csv.DictReader(fh)]
