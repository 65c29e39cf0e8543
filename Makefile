# Two entry points: `make demo` (the main job, offline) and `make test`.
# Both bootstrap their own virtual environment in .venv from the registries.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: test demo demo-room bench lint fmt emulator clean livekit-server

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

# The same offline turn through a real LiveKit server (built from the Go module proxy).
demo-room: $(DEMO_STAMP)
	$(PY) -m agent.livekit_server build
	$(PY) -m agent simulate --room

# LiveKit's open-source server, pinned in agent/livekit_server.py, into .cache/ (needs Go).
livekit-server: $(STAMP)
	@$(PY) -m agent.livekit_server build

bench: $(STAMP)
	$(PY) -m benchmarks

emulator: $(STAMP)
	$(PY) -m plugin_cartesia_ws.emulator --port 8787 --voice espeak

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
