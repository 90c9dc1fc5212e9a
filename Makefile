# gmai-eval: `make demo` runs the whole system on a synthetic benchmark; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_STAMP := $(VENV)/.installed-demo
BUF := .tools/node_modules/.bin/buf
BUF_VERSION := 1.75.0
DEMO_DIR ?= var/demo
# setuptools' editable install always adds an informational note ("Editable installation.
# Please be careful with folders..."), which pip >= 25 prints even with -q: hide that one.
QUIET_BUILD := PYTHONWARNINGS='ignore:Editable installation:UserWarning'
# Python may cache the bytecode it compiles (under __pycache__, ignored by git) while the demo
# and the tests run, even where the environment sets PYTHONDONTWRITEBYTECODE: with it set, every
# process compiled what it imported again (torch: 5.0 s per import instead of 1.6 s; each
# `gmai-eval` start about 0.1 s more). docs/benchmarks.md has the measurements.
CACHE_BYTECODE := PYTHONDONTWRITEBYTECODE=

.PHONY: demo test lint typecheck lint-imports venv tools promtool protos bench clean

demo: $(DEMO_STAMP)
	$(CACHE_BYTECODE) $(PY) -m gmai_eval.clients.demo --dir $(DEMO_DIR)
	@echo "The commands are in $(VENV)/bin: '. $(VENV)/bin/activate', then for example"
	@echo "  gmai-eval benchmarks --db $(DEMO_DIR)/gmai-eval.db"

# The tests run in parallel (pytest-xdist, one worker more than the cores, because many tests
# wait on a subprocess or a model; TEST_WORKERS=0 runs them in one process). --dist loadscope
# keeps each module on one worker, so a module-scoped fixture (a trained model, a running
# evaluator) is built once; --no-loadscope-reorder hands the modules out in the order
# tests/conftest.py gives them, the longest first. docs/benchmarks.md has the timings.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

# While mypy runs on one core, a collection of the tests on the other writes the caches every
# worker then reads (the project's bytecode, pytest's rewritten test modules): on a fresh
# clone each worker's collection takes 2.6 s instead of 6.2 s. Its output and exit status do
# not matter; the real run reports any problem.
test: venv tools
	$(PY) -m ruff check .
	( $(CACHE_BYTECODE) $(PY) -m pytest --collect-only -q -p no:xdist -p no:cacheprovider >/dev/null 2>&1 || true ) & \
	  warm=$$!; .ci/typecheck; status=$$?; wait $$warm; exit $$status
	.ci/lint-imports
	$(CACHE_BYTECODE) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

lint: venv
	$(PY) -m ruff check .

typecheck: venv
	.ci/typecheck

lint-imports: venv
	.ci/lint-imports

venv: $(STAMP)

# `make test` (and the other tool targets) install everything: the evaluator, torch, the dev tools.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(QUIET_BUILD) $(PY) -m pip install -q -e '.[server,torch,dev]'
	touch $(STAMP) $(DEMO_STAMP)

# `make demo` installs what the demo runs: the evaluator (server extra), the SDK and torch,
# with the venv's own pip (pip 23.2 from Python 3.11 installs it; no upgrade step).
# --no-compile: pip would byte-compile all of torch, sympy and networkx (thousands of modules,
# two thirds of torch's install time); Python compiles the few hundred the demo imports instead.
$(DEMO_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(QUIET_BUILD) $(PY) -m pip install -q --no-compile -e '.[server,torch]'
	touch $(DEMO_STAMP)

tools: $(BUF) promtool

$(BUF):
	npm install --prefix .tools --no-audit --no-fund --silent @bufbuild/buf@$(BUF_VERSION)

# promtool (and a Prometheus server for the end-to-end test) come from Debian's package.
promtool:
	@command -v promtool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "promtool missing: sudo apt-get install prometheus" >&2; exit 1; fi; }

protos: venv
	$(PY) protos/generate.py

bench: venv
	$(PY) bench/import_throughput.py
	$(PY) bench/run_throughput.py

clean:
	rm -rf $(VENV) .tools var build *.egg-info
