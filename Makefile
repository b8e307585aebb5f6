# Mailroom: the two commands a newcomer needs are `make run` and `make test`.
# Every target sets up what it needs first (virtualenv, Python packages, system packages).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export SAM_CLI_TELEMETRY := 0

# System packages the end-to-end tests drive for real: an IMAP server (migrations), mbsync (its
# benchmark baseline) and an authoritative DNS server (domain verification).
SYSTEM_PACKAGES ?= dovecot-imapd isync nsd
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: help venv system-deps run test test-unit test-integration test-e2e lint format validate build bench clean

help:
	@echo "make run        start the local stack (API on :8000, SMTP on :2525); Ctrl-C stops it"
	@echo "make test       install everything and run lint and the whole suite (validate, unit, integration, e2e)"
	@echo "make lint       ruff, mypy and the import contracts (layers of DESIGN.md)"
	@echo "make build      sam build (no Docker needed)"
	@echo "make validate   sam validate --lint, cfn-lint and checkov on template.yaml"
	@echo "make bench      benchmarks (ratios against a baseline measured in the same run)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

venv: $(STAMP)

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		for s in dovecot nsd; do $(SUDO) systemctl disable --now $$s >/dev/null 2>&1 || true; \
			$(SUDO) service $$s stop >/dev/null 2>&1 || true; done; \
	fi

run: venv
	$(BIN)/python -m local

# checkov pins boto3, packaging and networkx to versions older than the project's: it gets a
# virtualenv of its own (inside .venv), at this version. Its settings and stack-wide skips are in
# .checkov.yaml; per-resource skips, each with its reason, in template.yaml's Metadata.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

$(CHECKOV_STAMP):
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	@touch $@

validate: venv $(CHECKOV_STAMP)
	$(BIN)/sam validate --lint --template template.yaml --region us-east-1
	$(BIN)/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml --quiet

# Three workers on two cores: e2e tests spend much of their time waiting on the local stacks. The
# slowest tests are listed at the end, so a run that grows shows where.
test: lint system-deps validate
	$(BIN)/python -m pytest -n 3 --dist loadgroup --durations=30 $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: venv
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: venv system-deps
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/mailroom functions local bench
	$(BIN)/lint-imports --no-cache

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

build: venv
	$(BIN)/sam build --template template.yaml

bench: venv system-deps
	$(BIN)/python -m bench

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
