# The README's two commands: `make demo` and `make test`. Both install what
# they need first (Debian packages, then a virtualenv with the package).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SITE ?= examples/site.yaml
DEMO_STATE ?= .demo/state
# `make demo LAB_ARGS=--small` for 3 controllers + 1 compute instead of the 6-node lab
LAB_ARGS ?=

# Every tool make runs (pip, ruff, mypy, pytest, provisioner and the console scripts
# the tests start) comes from the virtualenv first.
export PATH := $(abspath $(BIN)):$(PATH)

# Debian packages (scripts/apt-install only installs the missing ones). APT_BASE runs
# Python at all; every other list comes from the table of external programs in
# provisioner/programs.py, which `provisioner doctor --for demo|test|bench` reads too.
APT_BASE := python3 python3-venv python3-pip make
APT_INSTALL ?= scripts/apt-install
PACKAGES_FOR := $(PYTHON) -m provisioner.programs packages

.PHONY: demo test lint bench venv deps-test deps-demo deps-bench clean

deps-test deps-demo deps-bench: deps-%:
	$(APT_INSTALL) $(APT_BASE)
	packages=$$($(PACKAGES_FOR) $*) && $(APT_INSTALL) $$packages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

venv: $(BIN)/python

test: deps-test venv
	$(BIN)/pip install --quiet -e '.[test,openstack]'
	$(BIN)/ruff check provisioner provisioner_lab tests benchmarks
	$(BIN)/ruff format --check provisioner provisioner_lab tests benchmarks
	$(BIN)/mypy provisioner provisioner_lab
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check provisioner provisioner_lab tests benchmarks
	$(BIN)/ruff format --check provisioner provisioner_lab tests benchmarks
	$(BIN)/mypy provisioner provisioner_lab

# Every benchmark, one after another, then one table: work, ours, reference, ratio, goal
# (benchmarks/run_all.py). Long (about 15 minutes on 2 cores) and best on an idle machine.
bench: deps-bench venv
	$(BIN)/pip install --quiet -e '.[test,openstack]'
	$(BIN)/python benchmarks/run_all.py

# The main job on the built-in virtual lab: qemu nodes provisioned for real
# (lab up: site, lab installer, Debian images (cached), network, BIND, serve, BMCs;
# then a rebuild that installs and boots Debian on every node; then where the time went).
demo: deps-demo venv
	$(BIN)/pip install --quiet .
	$(BIN)/provisioner --state-dir $(DEMO_STATE) lab down
	$(BIN)/provisioner --state-dir $(DEMO_STATE) lab up $(LAB_ARGS)
	$(BIN)/provisioner --state-dir $(DEMO_STATE) lab rebuild
	$(BIN)/provisioner --state-dir $(DEMO_STATE) lab status
	$(BIN)/python benchmarks/lab_phases.py $(DEMO_STATE)/lab
	@echo "the lab keeps running: $(BIN)/provisioner --state-dir $(DEMO_STATE) lab down"

clean:
	rm -rf $(VENV) .demo build dist .pytest_cache .ruff_cache .mypy_cache
