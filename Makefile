# Two entry points: `make demo` (the main job, offline) and `make test`.
# Both bootstrap their own virtual environment in .venv from the registries.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: test demo bench lint fmt emulator clean toxiproxy toxiproxy-if-go

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

test: lint toxiproxy-if-go
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

# Toxiproxy (Shopify), the proxy LiveKit's TTS suite puts between a plugin and its provider,
# built from the Go module proxy into a cache folder this Makefile owns. v2.12.0 is the newest
# release the module proxy serves; its go.mod has no replace directive, so `go install` works.
TOXIPROXY_VERSION ?= v2.12.0
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
TOXIPROXY_DIR := .cache/toxiproxy/$(TOXIPROXY_VERSION)
TOXIPROXY_BIN := $(TOXIPROXY_DIR)/toxiproxy-server

$(TOXIPROXY_BIN):
	mkdir -p $(TOXIPROXY_DIR)
	GOBIN=$(abspath $(TOXIPROXY_DIR)) $(GO) install github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION)
	mv $(TOXIPROXY_DIR)/server $@

toxiproxy: $(TOXIPROXY_BIN)

# `make test` builds it when it can; when it cannot, the Toxiproxy tests skip and say so
# (CI builds it with `make toxiproxy` first and never skips them).
toxiproxy-if-go:
	@$(MAKE) --no-print-directory toxiproxy \
	  || echo "Toxiproxy could not be built (needs Go and the Go module proxy): tests/livekit_suite will skip"
