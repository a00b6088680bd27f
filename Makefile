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

# Debian packages, by purpose (scripts/apt-install only installs the missing ones).
APT_BASE := python3 python3-venv python3-pip make
# The lab (issue 9): qemu nodes, the lab installer's tools (copied into its initramfs), netns.
APT_LAB := qemu-system-x86 qemu-utils ovmf ipxe-qemu busybox-static cpio kmod fdisk dosfstools \
	e2fsprogs mdadm lvm2 curl iproute2 iputils-ping openssl dnsmasq-base
APT_LAB += bind9 bind9-utils bind9-dnsutils
# One `+=` line per capability keeps merges simple.
APT_TEST := $(APT_BASE)
APT_TEST += cpio busybox-static kmod
APT_TEST += bind9 bind9-utils bind9-dnsutils
APT_TEST += curl debconf dash
# hand-off (issue 7): config checkers, netns failover, sshd for the SSH push, curl
APT_TEST += haproxy keepalived corosync pacemaker pacemaker-cli-utils mariadb-server \
	memcached galera-4 rsync iproute2 iputils-ping openssh-server openssh-client curl
APT_TEST += ipmitool openipmi freeipmi-tools
# boot server (issue 4); dnsmasq-base: the binary without the system service
APT_TEST += dnsmasq-base ipxe ipxe-qemu ovmf qemu-system-x86 tftp-hpa curl iproute2
APT_TEST += $(APT_LAB)
APT_DEMO := $(APT_BASE) $(APT_LAB)
# reference servers the benchmarks compare against (benchmarks/bootserver.py)
APT_BENCH := tftpd-hpa nginx

.PHONY: demo test lint venv deps-test deps-demo deps-bench clean

deps-test:
	scripts/apt-install $(APT_TEST)

deps-bench:
	scripts/apt-install $(APT_BENCH)

deps-demo:
	scripts/apt-install $(APT_DEMO)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

venv: $(BIN)/python

test: deps-test venv
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/ruff check provisioner tests benchmarks
	$(BIN)/ruff format --check provisioner tests benchmarks
	$(BIN)/mypy provisioner
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check provisioner tests benchmarks
	$(BIN)/ruff format --check provisioner tests benchmarks
	$(BIN)/mypy provisioner

# The main job on the built-in virtual lab: qemu nodes provisioned for real
# (lab up: site, installer image, network, BIND, serve, BMCs; then a rebuild).
demo: deps-demo venv
	$(BIN)/pip install --quiet .
	$(BIN)/provisioner --state-dir $(DEMO_STATE) lab down
	$(BIN)/provisioner --state-dir $(DEMO_STATE) lab up $(LAB_ARGS)
	$(BIN)/provisioner --state-dir $(DEMO_STATE) lab rebuild
	$(BIN)/provisioner --state-dir $(DEMO_STATE) lab status
	@echo "the lab keeps running: $(BIN)/provisioner --state-dir $(DEMO_STATE) lab down"

clean:
	rm -rf $(VENV) .demo build dist .pytest_cache .ruff_cache .mypy_cache
