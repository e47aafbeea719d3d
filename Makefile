# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test install install-test clean bench soak

run: $(VENV)/.installed
	$(BIN)/opensync-lite serve

test: $(VENV)/.installed-test tests/node_modules/.installed
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test tests/node_modules/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The real sync client the end-to-end tests drive, pinned in tests/package-lock.json.
tests/node_modules/.installed: tests/package.json tests/package-lock.json
	npm ci --prefix tests --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) tests/node_modules .pytest_cache *.egg-info

# Benchmark (not part of the tests): prints each figure against its target.
bench: $(VENV)/.installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Soak (not part of the tests): the concurrency workload for SOAK_SECONDS against a real server.
SOAK_SECONDS ?= 120
soak: $(VENV)/.installed-test
	$(BIN)/python tests/soak.py --seconds $(SOAK_SECONDS)
