"""Build the book (``make book``): vendor its JavaScript, then ``jupyter-book build`` (:mod:`invnb.book.build`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from invnb.book.build import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
