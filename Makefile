# The README's two commands:  `make book` (the main job) and `make test`.
# Each creates the virtual environment in .venv if it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Third-party test data (VDSR weights, Set5, ...): ../shared/data unless set.
export INVNB_TEST_DATA ?= $(abspath ../shared/data)

.PHONY: book test venv clean chromium

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[book,test]'
	touch $(STAMP)

book: $(STAMP)
	$(PY) scripts/build_book.py

# The browser test needs Debian's chromium (no browser is downloaded by the tests).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# Two worlds: the unit tests and the chapters with the third-party data (if
# any), then the chapters again with none visible (both data variables point
# to an empty folder), as on a fresh clone.
test: $(STAMP) chromium
	$(PY) scripts/build_book.py --vendor-only
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q --nbval-lax tests notebooks
	@empty=$$(mktemp -d) && echo "chapters again with no third-party data (INVNB_TEST_DATA, INVNB_DATA_DIR: an empty folder)" && \
	  INVNB_TEST_DATA=$$empty INVNB_DATA_DIR=$$empty $(PY) -m pytest -q --nbval-lax -p no:cacheprovider notebooks; \
	  status=$$?; rm -rf "$$empty"; exit $$status

clean:
	rm -rf _build
