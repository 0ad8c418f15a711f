"""``python -m invnb``: the book's command line (:mod:`invnb.book.cli`)."""

from invnb.book.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
