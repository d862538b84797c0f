# framevault task runner: `make run` starts the product, `make test` tests it.
# Every target installs what it needs first, so both work on a fresh machine.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK := $(VENV)/bin/framevault-stack
BUF := proto/node_modules/.bin/buf
GENERATED_PY := clients/python-api/framevault/v1
# protoc writes framevault/v1/... under this root.
GENERATED_PY_ROOT := clients/python-api
PROTOS := $(wildcard proto/framevault/v1/*.proto)
# Protos of other projects, vendored unchanged (their messages only; no stubs).
VENDORED_PROTOS := proto/grpc/reflection/v1/reflection.proto
PYTEST_ARGS ?=

.PHONY: help install install-steps web generate check-generated lint stack-up stack-down stack-status run test bench clean

help:
	@echo "make run              install, start the local stack and both services (Ctrl-C stops them)"
	@echo "make test             install, start the local stack, run every test"
	@echo "make web              build the web app (clients/web -> clients/web/dist, served by the gateway)"
	@echo "make generate         regenerate code from proto/ (never edit generated files)"
	@echo "make check-generated  fail if regeneration would change committed code"
	@echo "make lint             buf lint + buf breaking + ruff + mypy + import contract"
	@echo "make bench            benchmark harness (ratios against raw baselines)"
	@echo "make stack-up|stack-down|stack-status   the local mongod + S3 server"

# --- environment -----------------------------------------------------------

# The distributions (README, Layout), editable, on the exact pins of the lock file:
# the three that ship, and the local stack (framevault-stack: development and tests only).
DISTRIBUTIONS := clients/python-api clients/python services deploy/local

$(VENV)/.installed: requirements.lock requirements-dev.txt pyproject.toml $(addsuffix /pyproject.toml,$(DISTRIBUTIONS))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
	  $(addprefix -e ,$(DISTRIBUTIONS))
	touch $@

# The metadata service's frame codec (services/codec: Rust, PyO3): maturin builds its wheel, installed
# into the venv. Cargo's build folder is in the cache folder (as the SeaweedFS binary is), so a clean
# clone rebuilds only what changed. A fresh machine compiles it once: 80 s of CPU (5 min on the shared 2 cores).
CODEC_SOURCES := $(wildcard services/codec/Cargo.* services/codec/pyproject.toml services/codec/*.pyi \
  services/codec/build.rs services/codec/src/*.rs) proto/framevault/v1/frame.proto proto/framevault/v1/metadata.proto

$(VENV)/.codec: $(CODEC_SOURCES) | $(VENV)/.installed
	rm -rf $(VENV)/codec-wheel
	@# One build at a time in the shared folder (maturin stages the library there under a fixed name).
	mkdir -p $(FRAMEVAULT_CACHE_DIR)
	flock $(FRAMEVAULT_CACHE_DIR)/codec-target.lock env CARGO_TARGET_DIR=$(FRAMEVAULT_CACHE_DIR)/codec-target \
	  $(VENV)/bin/maturin build --quiet --release --locked --manifest-path services/codec/Cargo.toml \
	  --interpreter $(PY) --out $(VENV)/codec-wheel
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall $(VENV)/codec-wheel/*.whl
	touch $@

$(BUF): proto/package.json proto/package-lock.json
	cd proto && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# PyTorch for the training loader (requirements-torch.txt): its Linux wheel with the CUDA libraries is
# ~5 GB and takes ~3 minutes to download and unpack, so it is installed once per machine into a cache
# outside the repository (named after the pins and the Python) and each venv sees it through a .pth
# file, instead of being downloaded again into every clean clone's venv. The cache folder is the local
# stack's (framevault.stack.settings.cache_dir).
FRAMEVAULT_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/framevault
TORCH_SITE := $(FRAMEVAULT_CACHE_DIR)/torch-$(shell $(PYTHON) -c 'import sys; print("cp%d%d" % sys.version_info[:2])')-$(shell sha256sum requirements-torch.txt | cut -c1-12)

# The pins are in the folder's name, so requirements-torch.txt is only order-only here: a clean clone's
# fresh file time must not reinstall (and replace under other checkouts) a folder its pins already name.
$(TORCH_SITE)/.complete: | requirements-torch.txt $(VENV)/.installed
	rm -rf $(TORCH_SITE).partial
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target $(TORCH_SITE).partial \
	  -r requirements-torch.txt
	touch $(TORCH_SITE).partial/.complete
	rm -rf $(TORCH_SITE) && mv $(TORCH_SITE).partial $(TORCH_SITE)

$(VENV)/.torch: $(TORCH_SITE)/.complete
	echo $(TORCH_SITE) > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/framevault-torch.pth"
	touch $@

# The browser tests (tests/web) drive Debian's Chromium; Playwright's own browser downloads are never used.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The stack's S3 server (SeaweedFS) and the storage tests' second one (versitygw, tests/blob): Go builds
# of minutes on a fresh machine, cached per version in the cache folder.
$(VENV)/.seaweedfs: deploy/local/framevault/stack/seaweedfs.py | $(VENV)/.installed
	$(STACK) build-weed >/dev/null
	touch $@

$(VENV)/.versitygw: deploy/local/framevault/stack/versitygw.py | $(VENV)/.installed
	$(STACK) build-versitygw >/dev/null
	touch $@

# The format tests' FiftyOne environment (tests/formats/fiftyone_env.py): a venv of its own in the cache folder.
$(VENV)/.fiftyone: requirements-fiftyone.lock | $(VENV)/.installed
	cd tests && ../$(PY) -c 'from formats.fiftyone_env import environment_python; environment_python()'
	touch $@

# The one-off steps of a fresh machine (INSTALL_STEPS, below), each cached so that later runs skip it,
# are independent of each other once the venv exists: `make install` runs them at once (a sub-make with
# -j; a failing step fails it, with its output kept together), so a fresh machine waits for the longest
# of them, not for their sum. Besides what every target needs they include the tests' own one-offs, so
# `make test` finds them ready.
INSTALL_JOBS ?= 8

install:
	@$(MAKE) --no-print-directory -j$(INSTALL_JOBS) --output-sync=target install-steps

# The web app (clients/web): npm ci on the lock file, then a Vite build into clients/web/dist
# (git-ignored), which the gateway serves. Rebuilt only when its sources change.
WEB := clients/web
WEB_SOURCES := $(shell find $(WEB)/src -type f 2>/dev/null) $(addprefix $(WEB)/,index.html vite.config.ts tsconfig.json)

$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB)/dist/index.html: $(WEB)/node_modules/.installed $(WEB_SOURCES)
	cd $(WEB) && npm run --silent build

web: $(WEB)/dist/index.html

INSTALL_STEPS := $(VENV)/.installed $(VENV)/.codec $(VENV)/.torch $(BUF) $(CHROMIUM) $(VENV)/.seaweedfs \
  $(VENV)/.versitygw $(VENV)/.fiftyone $(WEB)/node_modules/.installed

install-steps: $(INSTALL_STEPS)
	@:

# --- code generation -------------------------------------------------------

generate: install
	rm -rf $(GENERATED_PY) && mkdir -p $(GENERATED_PY)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m grpc_tools.protoc -Iproto \
	  --python_out=$(GENERATED_PY_ROOT) --pyi_out=$(GENERATED_PY_ROOT) \
	  --grpc_python_out=$(GENERATED_PY_ROOT) --mypy_grpc_out=$(GENERATED_PY_ROOT) \
	  $(PROTOS) >/dev/null
	$(PY) -m grpc_tools.protoc -Iproto --python_out=$(GENERATED_PY) --pyi_out=$(GENERATED_PY) \
	  $(VENDORED_PROTOS)
	@if [ -x clients/generate.sh ]; then clients/generate.sh; fi

check-generated: generate
	@if [ -n "$$(git status --porcelain -- $(GENERATED_PY) clients)" ]; then \
	  git status --short -- $(GENERATED_PY) clients; \
	  echo "generated code is stale: run 'make generate' and commit"; exit 1; fi
	@echo "generated code is up to date"

# --- checks ----------------------------------------------------------------

lint: install
	cd proto && node_modules/.bin/buf lint
	@# Each commit must stay wire-compatible with the one before it.
	@if git rev-parse --verify --quiet HEAD~1 >/dev/null; then \
	  cd proto && node_modules/.bin/buf breaking --against '../.git#ref=HEAD~1,subdir=proto'; fi
	$(VENV)/bin/ruff check services clients/python clients/python-api tests deploy
	$(VENV)/bin/mypy services/framevault clients/python/framevault clients/python-api/framevault deploy/local/framevault
	cargo fmt --check --manifest-path services/codec/Cargo.toml
	@# The import contract of the distributions (.importlinter; README, Layout).
	$(VENV)/bin/lint-imports

# --- local stack and services ----------------------------------------------

stack-up: install
	$(STACK) up

# Without a venv nothing of the stack can run; with one, the stack command is brought up to date first.
stack-down: $(if $(wildcard $(PY)),$(VENV)/.installed)
	@if [ -x $(STACK) ]; then $(STACK) down; fi

stack-status: install
	$(STACK) status

run: stack-up web
	$(STACK) run --secure

# --- tests and benchmarks --------------------------------------------------

test: stack-up web
	$(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: stack-up web
	$(PY) tests/bench/harness.py $(BENCH_ARGS)

# Everything the targets above create inside the repository. Caches outside it
# stay (README, "What make clean leaves"): the S3 server binary and protoc
# plugins in ~/.cache/framevault, and the Go, npm and Maven caches.
LOCAL_BUILD_DIRS := $(VENV) proto/node_modules .stack .bench \
  clients/typescript/node_modules clients/typescript/dist clients/java/target \
  clients/web/node_modules clients/web/dist .test-artifacts \
  .pytest_cache .mypy_cache .ruff_cache .hypothesis

clean: stack-down
	rm -rf $(LOCAL_BUILD_DIRS)
	find . -path ./.git -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -print0 | xargs -0 rm -rf
