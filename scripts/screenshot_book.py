"""Check the built book's pages in headless Chromium and take their screenshots (:mod:`invnb.book.pagecheck`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from invnb.book.pagecheck import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
