# Developer and CI entry points for the runcible.oci collection (run as root).
#
#   make setup        host packages, CRIU, build/venv, test rootfs (cached)
#   make test         setup, then unit, typecheck, integration, molecule, sanity, docs-check, the gates below
#                     (lint, changelog-lint, docs, ee-check, test-matrix-quick), vm-test (quick subset)
#   make unit | integration | molecule | sanity | docs-check | typecheck | demo | bench
#   make lint | changelog-lint | docs | ee-check   the community's gates (docs/release.md)
#   make test-matrix  sanity + an integration subset under every claimed ansible-core (MATRIX="2.18 2.20": some)
#   make test-matrix-quick   the integration subset under ansible-core 2.17 (2.18 without its Python; in make test)
#   make release      changelog, tarball, its checks and galaxy-importer, in build/release (docs/release.md)
#   make vm           build the Debian 12 VM image (cached) and boot VMS (default vm-a) for tests/vm/inventory.yml
#   make vm-stop      shut down the VMs `make vm` booted
#   make vm-test      the VM suite (tests/vm): boots its own VMs; VM_TESTS=quick for the subset make test runs
#   make clean        remove build/ (installed Debian packages and CRIU stay)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

REPO := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD := $(REPO)/build
VENV := $(BUILD)/venv
PY := $(VENV)/bin/python
COLLECTIONS := $(BUILD)/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/runcible/oci
SANITY_DIR := $(BUILD)/sanity/ansible_collections/runcible/oci
# ansible-test keeps its per-test virtualenvs and caches under $HOME/.ansible/test
ANSIBLE_TEST_HOME := $(BUILD)/ansible-test-home

# `make setup` reruns scripts/host-setup.sh only when one of these files changed
# (or its results are gone); otherwise it returns at once.
SETUP_INPUTS := scripts/host-setup.sh scripts/build-busybox-rootfs.sh scripts/build-debian-rootfs.sh \
	scripts/ansible-test-get-pip.py tests/requirements.txt $(sort $(wildcard $(REPO)/roles/runtime/files/criu-patches/*.patch))
SETUP_HASH := $(shell cd $(REPO) && cat $(SETUP_INPUTS) 2>/dev/null | sha256sum | cut -c1-16)
SETUP_STAMP := $(BUILD)/stamps/setup-$(SETUP_HASH)

RUNCIBLE_TEST_ROOTFS ?= $(BUILD)/rootfs/busybox
export RUNCIBLE_TEST_ROOTFS
# Debian with Python and sudo: connection plugin tests and the roles' Molecule scenarios
RUNCIBLE_DEBIAN_ROOTFS ?= $(BUILD)/rootfs/debian
export RUNCIBLE_DEBIAN_ROOTFS
export RUNCIBLE_REPO := $(REPO)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
# CRIU chosen by host-setup.sh (also in build/criu-path); read when a recipe runs
export RUNCIBLE_CRIU = $(shell cat $(BUILD)/criu-path 2>/dev/null)
# the venv first, then a locally built /usr/local/sbin/criu before the distro's
export PATH := $(VENV)/bin:/usr/local/sbin:$(PATH):/usr/sbin:/sbin

# pytest on DIR; no DIR yet or no tests in it (pytest exit 5) is not a failure
define run_pytest
	@if [ ! -d "$(REPO)/$(1)" ]; then \
		echo "make: $(1) does not exist yet: nothing to run"; \
	else \
		cd "$(REPO)"; rc=0; "$(PY)" -m pytest -q "$(1)" || rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "make: no tests collected in $(1)"; \
		elif [ $$rc -ne 0 ]; then echo "make: FAILED: pytest $(1) (exit $$rc)" >&2; exit $$rc; fi; \
	fi
endef

.PHONY: help setup collections test unit typecheck integration molecule sanity docs-check demo bench clean vm vm-stop vm-test
.PHONY: tools lint changelog-lint docs ee-check test-matrix test-matrix-quick release

help:
	@sed -n '1,/^$$/{s/^# \{0,1\}//;p}' $(firstword $(MAKEFILE_LIST))

setup: collections
	@if [ -f "$(SETUP_STAMP)" ] && [ -x "$(PY)" ] && [ -f "$(BUILD)/criu-path" ] \
		&& [ -d "$(RUNCIBLE_TEST_ROOTFS)" ] && [ -x "$(RUNCIBLE_DEBIAN_ROOTFS)/usr/bin/python3" ]; then \
		echo "make: setup is up to date"; \
	else \
		bash "$(REPO)/scripts/host-setup.sh"; \
		rm -f "$(BUILD)"/stamps/setup-*; mkdir -p "$(BUILD)/stamps"; touch "$(SETUP_STAMP)"; \
	fi

# build/collections/ansible_collections/runcible/oci -> the repository root
collections:
	@mkdir -p "$(dir $(COLLECTION_LINK))"
	@[ "$$(readlink "$(COLLECTION_LINK)" 2>/dev/null)" = "../../../.." ] \
		|| ln -sfn ../../../.. "$(COLLECTION_LINK)"

test: setup
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory typecheck
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory molecule
	@$(MAKE) --no-print-directory sanity
	@$(MAKE) --no-print-directory docs-check
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory changelog-lint
	@$(MAKE) --no-print-directory docs
	@$(MAKE) --no-print-directory ee-check
	@$(MAKE) --no-print-directory test-matrix-quick
	@$(MAKE) --no-print-directory vm-test VM_TESTS=quick
	@echo "make: all tests passed (unit, typecheck, integration, molecule, sanity, docs-check, lint, changelog-lint, docs, ee-check, test-matrix-quick, vm-test quick)"

unit: setup
	@echo "==> unit tests"
	$(call run_pytest,tests/unit)

# mypy (pinned in tests/requirements.txt) on the runtime library and the option package, with the
# settings of tests/mypy.ini (every function typed there).
typecheck: setup
	@echo "==> mypy (_runtime, _container_options)"
	@cd "$(COLLECTIONS)" && "$(VENV)/bin/mypy" --config-file "$(REPO)/tests/mypy.ini" \
		-p ansible_collections.runcible.oci.plugins.module_utils._runtime \
		-p ansible_collections.runcible.oci.plugins.module_utils._container_options

integration: setup
	@echo "==> integration tests"
	$(call run_pytest,tests/integration)

# `molecule test` of every scenario of every role (roles/ROLE/molecule/SCENARIO). Their containers
# live in a store of their own (a short /tmp path: conmon's socket paths are limited), emptied and
# removed afterwards even when a scenario failed before its destroy step.
MOLECULE_SCENARIOS = $(patsubst $(REPO)/roles/%/molecule.yml,%,$(wildcard $(REPO)/roles/*/molecule/*/molecule.yml))
MOLECULE_CLEAN = import sys; sys.path.insert(0, "$(COLLECTIONS)"); \
	from ansible_collections.runcible.oci.plugins.module_utils._runtime.engine import Engine; \
	engine = Engine(sys.argv[1] + "/root", sys.argv[1] + "/run"); \
	[engine.remove(engine.store.load(name), stop_timeout=0) for name in engine.store.names()]

molecule: setup
	@echo "==> molecule test ($(MOLECULE_SCENARIOS))"
	@store="$$(mktemp -d /tmp/rcm-XXXXXX)"; rc=0; \
	for path in $(MOLECULE_SCENARIOS); do \
		role="$${path%%/*}"; scenario="$${path##*/}"; started=$$(date +%s); \
		echo "--> roles/$$role: molecule test -s $$scenario"; \
		( cd "$(REPO)/roles/$$role" && RUNCIBLE_MOLECULE_ROOT="$$store/root" RUNCIBLE_MOLECULE_RUN_ROOT="$$store/run" \
			"$(VENV)/bin/molecule" test -s "$$scenario" ) \
			|| { rc=$$?; echo "make: FAILED: molecule test -s $$scenario in roles/$$role" >&2; break; }; \
		echo "--> roles/$$role: scenario $$scenario passed in $$(( $$(date +%s) - started )) s"; \
	done; \
	if [ $$rc -eq 0 ]; then echo "--> tests/molecule: docs/molecule.md run as written (roles made by ansible-galaxy init)"; \
		( cd "$(REPO)" && "$(PY)" -m pytest -q -s -p no:cacheprovider tests/molecule ) || rc=$$?; fi; \
	"$(PY)" -c '$(MOLECULE_CLEAN)' "$$store" || rc=1; \
	rm -rf --one-file-system "$$store"; exit $$rc

sanity: setup
	@echo "==> ansible-test sanity"
	@bash "$(REPO)/scripts/copy-collection.sh" "$(SANITY_DIR)"
	@cd "$(SANITY_DIR)" && HOME="$(ANSIBLE_TEST_HOME)" "$(VENV)/bin/ansible-test" sanity \
		--python "$$("$(PY)" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
		--color no

docs-check: setup
	@echo "==> ansible-doc rendering"
	@bash "$(REPO)/scripts/docs-check.sh" "$(VENV)/bin/ansible-doc"

# The community's gates (issue 20, docs/release.md). Their tools live in build/venv-tools, pinned in
# tests/requirements-tools.txt and made by scripts/tool-venv.sh (cached: rebuilt when the pins change).
TOOLS_VENV := $(BUILD)/venv-tools
MATRIX ?=

tools: setup
	@bash "$(REPO)/scripts/tool-venv.sh" "$(TOOLS_VENV)" "$(REPO)/tests/requirements-tools.txt" default

# ansible-lint, profile production (.ansible-lint), with a HOME of its own: it installs the collection
# into ~/.ansible for its checks, which must not be root's.
lint: tools
	@echo "==> ansible-lint (profile production: roles with their Molecule scenarios, playbooks)"
	@mkdir -p "$(BUILD)/lint-home"
	@cd "$(REPO)" && HOME="$(BUILD)/lint-home" PATH="$(TOOLS_VENV)/bin:$$PATH" "$(TOOLS_VENV)/bin/ansible-lint" --nocolor roles playbooks

changelog-lint: setup
	@echo "==> antsibull-changelog lint"
	@cd "$(REPO)" && "$(VENV)/bin/antsibull-changelog" lint

docs: tools
	@echo "==> docs site (antsibull-docs): build/docs/html"
	@PATH="$(TOOLS_VENV)/bin:$$PATH" bash "$(REPO)/scripts/docs-site.sh"

ee-check: tools
	@echo "==> execution environment (ansible-builder create, requirements resolved)"
	@PATH="$(TOOLS_VENV)/bin:$$PATH" bash "$(REPO)/scripts/ee-check.sh"

test-matrix: setup
	@echo "==> ansible-core version matrix (sanity + integration subset)"
	@bash "$(REPO)/scripts/matrix.sh" $(MATRIX)

# 2.17, the oldest claimed; 2.18 where no Python for 2.17 is installed (Debian 13 without pyenv)
test-matrix-quick: setup
	@echo "==> ansible-core 2.17 (or 2.18): the integration subset"
	@bash "$(REPO)/scripts/matrix.sh" --quick 2.17 2.18

release: tools
	@echo "==> release (build/release)"
	@PATH="$(TOOLS_VENV)/bin:$$PATH" bash "$(REPO)/scripts/release.sh"

# Debian VMs with systemd and cgroup v2 under qemu (software emulation), reached over SSH; see
# docs/vm-tests.md. VM_TESTS: a pytest marker expression (quick: the subset `make test` runs).
# VM_SUITE=trixie: Debian 13 VMs instead of Debian 12 (bookworm), from an image of their own.
VMS ?= vm-a
VM_TESTS ?=

vm: setup
	@"$(PY)" "$(REPO)/scripts/vm/vm.py" boot $(VMS)

# make vm-stop: every VM of build/vm/run; make vm-stop VMS="vm-b": those only
vm-stop:
	@if [ -d "$(BUILD)/vm/run" ]; then python3 "$(REPO)/scripts/vm/vm.py" stop $(if $(filter command line,$(origin VMS)),$(VMS)); fi

vm-test: setup
	@echo "==> VM tests$(if $(VM_TESTS), ($(VM_TESTS)))"
	@cd "$(REPO)" && "$(PY)" -m pytest -q -p no:cacheprovider tests/vm $(if $(VM_TESTS),-m "$(VM_TESTS)") \
		|| { rc=$$?; echo "make: FAILED: pytest tests/vm (exit $$rc)" >&2; exit $$rc; }

demo: setup
	@test -f "$(REPO)/playbooks/demo.yml" || { echo "make: playbooks/demo.yml does not exist yet" >&2; exit 1; }
	cd "$(REPO)" && "$(VENV)/bin/ansible-playbook" -i localhost, -c local playbooks/demo.yml

bench: setup
	@test -f "$(REPO)/tests/bench/bench.py" || { echo "make: tests/bench/bench.py does not exist yet" >&2; exit 1; }
	cd "$(REPO)" && "$(PY)" tests/bench/bench.py

clean: vm-stop
	rm -rf --one-file-system "$(BUILD)"
