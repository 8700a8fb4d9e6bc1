# The two commands of the README: `make run` starts mailcase on the embedded
# SQLite default, `make test` runs the whole test suite (lint, types, tests).
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: run test lint clean

# `make run` needs mailcase and its dependencies only; the test tools come with
# `make test` (or `make lint`).
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/mailcase -c config.example.toml serve

lint: $(BIN)/.installed-test
	$(BIN)/ruff check mailcase tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache  # the rooms' import directions (pyproject.toml)

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
