# Two entry points: `make demo` (the main job, offline) and `make test`.
# Both bootstrap their own virtual environment in .venv from the registries.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: test demo bench lint fmt emulator clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy plugin_cartesia_ws agent

test: lint
	$(PY) -m pytest -q -p no:cacheprovider

DEMO_STAMP := $(VENV)/.installed-demo

$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e ".[demo]"
	touch $@

demo: $(DEMO_STAMP)
	$(PY) -m agent simulate

bench: $(STAMP)
	$(PY) -m benchmarks

emulator: $(STAMP)
	$(PY) -m plugin_cartesia_ws.emulator --port 8787 --voice espeak

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
