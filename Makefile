# One entry point for local work and CI: `make test` runs exactly what CI runs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Lint only the folders that exist (git does not keep empty ones).
LINT_PATHS := $(wildcard streams tests bench)
# The modules setup.py compiles with mypyc: an editable install builds them next to their
# sources, so a change to one re-runs the install.
COMPILED := $(shell sed -n 's/^ *"\(streams\/.*\.py\)",$$/\1/p' setup.py)
PYTEST_ARGS ?=

.PHONY: help system-tools venv kafka-jars lint rules-test test demo constraints clean

help:
	@echo "make venv         create $(VENV) and install churnwatch with its dev tools (pinned by constraints.txt),"
	@echo "                  the domain modules compiled with mypyc when a C compiler is there"
	@echo "make kafka-jars   fetch the Apache Kafka jars used by scripts/kafka-local.sh"
	@echo "make lint         ruff check and mypy (strict, on streams/)"
	@echo "make rules-test   promtool check and unit tests of the Prometheus alert rules"
	@echo "make test         lint, rule tests, then every test (unit, agents, integration with a real Kafka broker)"
	@echo "make demo         run the end-to-end demo against a local broker"
	@echo "make constraints  re-resolve the dependencies and rewrite constraints.txt"
	@echo "make clean        remove $(VENV) and build and tool caches"

# Java, Maven, and for the tests promtool and prometheus, from Debian's packages.
system-tools:
	scripts/system-tools.sh test

venv: $(STAMP)

# Re-installs whenever pyproject.toml, constraints.txt or a compiled module changes.
# CHURN_PURE_PYTHON=1 skips compiling (see setup.py).
$(STAMP): pyproject.toml constraints.txt setup.py $(COMPILED)
	scripts/system-tools.sh demo
	@if [[ ! -x "$(BIN)/python" ]]; then $(PYTHON) -m venv "$(VENV)"; fi
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]' -c constraints.txt
	$(BIN)/python -m pip check --disable-pip-version-check
	@touch "$@"

kafka-jars:
	scripts/system-tools.sh demo
	scripts/kafka-local.sh fetch

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy

# promtool and prometheus come from Debian's `prometheus` package (system-tools installs
# it); the rule tests and tests/integration/test_prometheus.py need them, none is skipped.
PROMTOOL ?= promtool
RULES := deploy/prometheus/rules.yml
RULES_TEST := deploy/prometheus/rules.test.yml

rules-test: system-tools
	@command -v $(PROMTOOL) >/dev/null 2>&1 || { \
	  echo "promtool not found: install the prometheus package (apt-get install prometheus)" >&2; \
	  exit 1; }
	$(PROMTOOL) check rules $(RULES)
	$(PROMTOOL) test rules $(RULES_TEST)

# pytest's exit status is make's: any failure, and exit 5 (no tests collected), fails.
test: lint kafka-jars rules-test
	$(BIN)/pytest $(PYTEST_ARGS)

demo: venv kafka-jars
	$(BIN)/churnwatch demo

# Resolves the newest versions allowed by pyproject.toml in a scratch venv and pins them.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	{ echo "# Exact versions installed by 'make venv' (and so by CI). Regenerate: make constraints"; \
	  .venv-constraints/bin/python -m pip freeze --disable-pip-version-check --exclude-editable \
	    | grep -v -e '^pkg[-_]resources==' -e '^churnwatch' ; } > constraints.txt
	rm -rf .venv-constraints

clean:
	rm -rf "$(VENV)" .venv-constraints build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis
	find streams -name '*.so' -delete
	rm -f churnwatch_native__mypyc*.so
	find . -name __pycache__ -type d -prune -not -path "./.git/*" -exec rm -rf {} +
