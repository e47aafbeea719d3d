# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# setuptools warns on every editable install of a flat layout (opensync_lite/ beside
# setup.cfg) that the folder may shadow the package; here it is the package.
PIP    := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip --quiet --disable-pip-version-check

.PHONY: run test install install-test clean bench soak venv-check

run: venv-check $(VENV)/.installed
	$(BIN)/opensync-lite serve

# Two worker processes, a test file each at a time (its module fixtures run once): most tests
# wait on a real agent CLI or a live server, so two files run side by side even on 2 cores. The
# tests timed against other load (marked `alone`) run after, on their own. Exit 5 is "none of
# these matched PYTEST_ARGS", which is no failure.
PARALLEL ?= -n 2 --dist loadfile

test: venv-check $(VENV)/.installed-test tests/node_modules/.installed
	$(BIN)/pytest $(PARALLEL) -m "not alone" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/pytest -m alone $(PYTEST_ARGS) || [ $$? -eq 5 ]

install: venv-check $(VENV)/.installed
install-test: venv-check $(VENV)/.installed-test tests/node_modules/.installed

# A .venv left by an older Python (or a broken one) is rebuilt with $(PYTHON), not reused.
venv-check:
	@if [ -e $(BIN)/python ] && ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
		echo "$(VENV) was made by an unusable or too old Python (3.11+ needed): rebuilding it with $(PYTHON)"; \
		rm -rf $(VENV); \
	fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "opensync-lite needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1). Try: make $(MAKECMDGOALS) PYTHON=python3.12"; exit 1; }

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(PIP) install -e '.[mcp,semantic]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -e '.[test,postgres,mcp,semantic]'
	touch $@

# The real clients the end-to-end tests drive, pinned in tests/package-lock.json. `npm install`
# with the lock installs the locked tree; `npm ci` would refuse it, since some CLIs list optional
# platform packages (macOS, Windows builds) the registry lacks and the lock cannot hold.
tests/node_modules/.installed: tests/package.json tests/package-lock.json
	npm install --prefix tests --no-save --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) tests/node_modules .pytest_cache *.egg-info build

# Benchmark (not part of the tests): prints each figure against its target.
bench: venv-check $(VENV)/.installed-test
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Soak (not part of the tests): the concurrency workload for SOAK_SECONDS against a real server.
SOAK_SECONDS ?= 120
soak: venv-check $(VENV)/.installed-test
	$(BIN)/python tests/soak.py --seconds $(SOAK_SECONDS)
