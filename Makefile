# Two entry points: `make demo` (the main job, offline) and `make test`.
# Both bootstrap their own virtual environment in .venv from the registries.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: test demo demo-room bench bench-density lint lock fmt emulator clean livekit-server livekit-cluster room-server clients clients-js clients-pipecat clean-clients toxiproxy toxiproxy-if-go playground playground-web

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	@echo "installing the development packages into $(VENV) (first run only: a few minutes)"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy plugin_cartesia_ws agent

test: lint clients room-server toxiproxy-if-go
	$(PY) -m pytest -q -rfEs -p no:cacheprovider

# The room tests' LiveKit server: built when Go is there (minutes the first time, then
# cached); without it they skip, saying what to install; with CI set that fails here.
room-server: $(STAMP)
	@if $(PY) -m agent.dev.livekit_server path >/dev/null 2>&1 || command -v go >/dev/null 2>&1; then \
		$(PY) -m agent.dev.livekit_server build >/dev/null; \
	elif [ -n "$$CI" ]; then echo "CI needs Go (or LIVEKIT_SERVER_BIN) for the room tests" >&2; exit 1; \
	else echo "no Go and no livekit-server: the room tests in tests/rooms will be skipped"; fi

# Third-party Cartesia clients for tests/clients, from their registries, pinned: the JS SDK and
# LiveKit's Node plugin (npm, package-lock.json) and pipecat (its own venv, requirements.txt:
# too heavy for .venv). Without npm the JS tests skip, saying so; with CI set this fails.
JS_CLIENTS := tests/clients/js
JS_STAMP := $(JS_CLIENTS)/node_modules/.installed
PIPECAT_VENV := .venv-pipecat
PIPECAT_STAMP := $(PIPECAT_VENV)/.installed

clients: clients-js clients-pipecat

clients-js:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(JS_STAMP); \
	elif [ -n "$$CI" ]; then echo "npm not found: CI needs Node 20+ for tests/clients" >&2; exit 1; \
	else echo "npm not found: the JS client tests in tests/clients will be skipped"; fi

$(JS_STAMP): $(JS_CLIENTS)/package.json $(JS_CLIENTS)/package-lock.json
	cd $(JS_CLIENTS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

clients-pipecat: $(PIPECAT_STAMP)

$(PIPECAT_STAMP): tests/clients/pipecat/requirements.txt
	$(PYTHON) -m venv $(PIPECAT_VENV)
	$(PIPECAT_VENV)/bin/python -m pip install -q --upgrade pip
	$(PIPECAT_VENV)/bin/python -m pip install -q -r tests/clients/pipecat/requirements.txt
	touch $@

clean-clients:
	rm -rf $(PIPECAT_VENV) $(JS_CLIENTS)/node_modules

DEMO_STAMP := $(VENV)/.installed-demo

$(DEMO_STAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	@echo "installing the demo's packages into $(VENV) (first run only: about a minute)"
	$(PY) -m pip install -q -c constraints.txt -e ".[demo]"
	touch $@

demo: $(DEMO_STAMP)
	$(PY) -m agent simulate

# The same offline turn through a real LiveKit server (built from the Go module proxy).
demo-room: $(DEMO_STAMP)
	$(PY) -m agent.dev.livekit_server build
	$(PY) -m agent simulate --room

# LiveKit's open-source server, pinned in agent/dev/livekit_server.py, into .cache/ (needs Go).
livekit-server: $(STAMP)
	@$(PY) -m agent.dev.livekit_server build

# A LiveKit cluster on loopback: Debian's redis-server and two nodes sharing it, until Ctrl-C.
# Prints each node's URL and a 0600 file with a worker's settings for node 0.
livekit-cluster: $(STAMP)
	@$(PY) -m agent.dev.livekit_server build >/dev/null
	@$(PY) -m agent.dev.cluster

# Talk to the agent in a browser: starts what is missing (LiveKit server, emulator, local
# OpenAI stand-in, worker), serves the page on localhost and prints its URL; Ctrl-C stops all.
playground: $(DEMO_STAMP) playground-web
	$(PY) -m agent playground

# The page's npm packages (pinned by playground/package-lock.json), bundled by esbuild.
PLAYGROUND_JS := playground/dist/app.js

playground-web: $(PLAYGROUND_JS)

$(PLAYGROUND_JS): playground/package.json playground/package-lock.json $(wildcard playground/src/*)
	cd playground && npm ci --no-audit --no-fund --loglevel=error && npm run build

bench: $(STAMP)
	$(PY) -m benchmarks
	$(PY) -m benchmarks.bench_pacing

# The emulator alone needs only its extras (espeak, mp3, tls), not the dev tools.
EMULATOR_STAMP := $(VENV)/.installed-emulator

$(EMULATOR_STAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -c constraints.txt -e ".[emulator]"
	touch $@

emulator: $(EMULATOR_STAMP)
	$(PY) -m plugin_cartesia_ws.emulator --port 8787 --voice espeak

# Re-resolve every dependency to the newest allowed by pyproject.toml and pin the result
# in constraints.txt (then run make test before committing it).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q --upgrade pip
	.venv-lock/bin/python -m pip install -q -e ".[dev,demo]"
	{ sed -n '1,2p' constraints.txt; .venv-lock/bin/pip freeze --exclude-editable | grep -v '^#'; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .venv-lock

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
