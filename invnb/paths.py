"""Where invnb's files are: the package data (in every install) and the source checkout's results.

``DATA_DIR`` is ``invnb/data/``: the embedded models and their provenance, which
ship inside the package (and so inside its wheel). ``RESULTS_DIR`` is
``data/results/`` of the source checkout: the long runs' summary files the
book's chapters show; it exists only in a clone of the repository, not in an
installed wheel (the notebooks that read it are not in the wheel either).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_DIR", "NOTEBOOK_DIR", "PACKAGE_DIR", "RESULTS_DIR", "SOURCE_ROOT"]

#: The installed (or checked-out) ``invnb`` package folder.
PACKAGE_DIR = Path(__file__).resolve().parent

#: Package data: the embedded models, their JSON provenance and licence notices.
DATA_DIR = PACKAGE_DIR / "data"

#: The repository root when the package runs from a source checkout (where
#: ``notebooks/``, ``scripts/`` and ``data/results/`` live).
SOURCE_ROOT = PACKAGE_DIR.parent

#: The bundled long-run results (tables, figures, logs) of the source checkout.
RESULTS_DIR = SOURCE_ROOT / "data" / "results"

#: The book's chapters (``notebooks/*.ipynb``) of the source checkout.
NOTEBOOK_DIR = SOURCE_ROOT / "notebooks"
