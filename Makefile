# gmai-eval: `make demo` runs the whole system on a synthetic benchmark; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BUF := .tools/node_modules/.bin/buf
BUF_VERSION := 1.75.0
DEMO_DIR ?= var/demo

.PHONY: demo test lint typecheck lint-imports venv tools promtool protos bench clean

demo: venv
	$(PY) -m gmai_eval.clients.demo --dir $(DEMO_DIR)

test: venv tools
	$(PY) -m ruff check .
	.ci/typecheck
	.ci/lint-imports
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check .

typecheck: venv
	.ci/typecheck

lint-imports: venv
	.ci/lint-imports

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,torch]'
	touch $(STAMP)

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
