# neuronetz-gateway: the two set-up commands, and the checks CI runs.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install install-test lint typecheck security audit check bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

## run: install and serve on the embedded default (SQLite file, in-process limits, one worker)
run: install
	$(BIN)/neuronetz-gateway serve

## test: install with test extras and run the whole suite (needs PostgreSQL and Redis)
test: install-test
	$(BIN)/python tests/preflight.py
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: install-test
	$(BIN)/ruff check .

typecheck: install-test
	$(BIN)/mypy config models limits server routes

## security: bandit over the product code (medium and high findings fail)
security: install-test
	$(BIN)/bandit -q -r config models limits server routes -ll

## audit: pip-audit of the installed dependencies; skipped when its source is unreachable
audit: install-test
	$(BIN)/python scripts/pip_audit.py

check: test lint typecheck security

## bench: the side-by-side benchmark (bench/README.md); about 19 minutes, BENCH_ARGS=--quick about 2.5
BENCH_ARGS ?=
bench: install-test
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
