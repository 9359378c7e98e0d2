# pi-cluster developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/pi-cluster
VENV ?= $(CACHE_DIR)/venv
VENV_STAMP := $(VENV)/.requirements-$(shell sha256sum requirements-dev.txt | cut -c1-16)
BIN := $(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PI_CLUSTER_CACHE := $(CACHE_DIR)
LAB_VAULT := --vault-password-file lab/vault-password.txt
DAGS_MODE ?= git_sync

.PHONY: help system-deps venv airflow-venv lint yamllint ansible-lint ruff syntax secrets unit unit-fast molecule fault-test \
        reset-test lab-tests test lab lab-destroy render bench build readmes

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

system-deps:  ## apt-get install the Debian packages of scripts/system-packages.txt (root; else names them)
	bash scripts/system-deps.sh

# python3 -m venv needs Debian's python3-venv: every venv waits for the system packages.
$(VENV_STAMP): requirements-dev.txt | system-deps
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV_STAMP)  ## create the pinned control-machine venv (cached)

airflow-venv: system-deps  ## create the cached Airflow 3.0.2 venv used by the tests
	bash scripts/airflow-venv.sh

yamllint: venv
	yamllint -s .

ansible-lint: venv
	ANSIBLE_VAULT_PASSWORD_FILE=lab/vault-password.txt ansible-lint --profile production --offline

ruff: venv
	ruff check .

lint: yamllint ansible-lint ruff  ## yamllint, ansible-lint (production), ruff

syntax: venv  ## syntax-check every playbook
	@for pb in site.yml playbooks/*.yml; do \
	  ansible-playbook --syntax-check $$pb >/dev/null || { echo "syntax-check failed: $$pb"; exit 1; }; \
	done; echo "syntax-check: site.yml and playbooks/*.yml OK"

secrets: venv  ## fail on any plaintext secret in the tree (detect-secrets + vault-aware rules)
	python3 scripts/secret_scan.py .

unit: venv airflow-venv  ## pytest: unit tests, real PostgreSQL 15 and real Airflow 3.0.2
	pytest -p no:cacheprovider tests

unit-fast: venv  ## fast tests only (no PostgreSQL, Airflow, ansible-playbook runs, lab or whole-repo scans; pytest.ini)
	pytest -p no:cacheprovider -q -m "not (postgres or airflow or ansible or lab or slow)" tests

molecule: system-deps venv  ## molecule test on the seven-host podman lab (create, converge, idempotence, verify, destroy)
	molecule test -s default

reset-test: system-deps venv  ## playbooks/reset.yml on one node holding a k3s agent's leftovers (refused unconfirmed; nothing left; re-run changed=0)
	bash tests/lab/reset_test.sh

fault-test: system-deps venv  ## stop one lab host mid-converge; the other six finish; a re-run converges it
	bash tests/lab/fault_test.sh

# `molecule destroy` (destroy.yml = lab/lab.sh down) rather than lab.sh down alone: it also resets molecule's
# state, which `--destroy never` would otherwise keep as "created" for the next run in the same path, whose
# create step is then skipped ("instances already created") and whose syntax step finds no hosts.
lab-tests: system-deps venv  ## molecule on the lab, then the fault test on the same lab, then remove it
	molecule destroy -s default
	molecule test -s default --destroy never && bash tests/lab/fault_test.sh; rc=$$?; molecule destroy -s default || bash lab/lab.sh down; exit $$rc

test: system-deps lint syntax secrets unit lab-tests  ## everything CI runs (installs what it needs first)

lab: system-deps venv  ## stand up the seven podman hosts and run site.yml against them
	bash lab/lab.sh up
	bash lab/lab.sh converge

lab-destroy: system-deps  ## remove every container, network and generated file of the lab
	bash lab/lab.sh down

render: venv  ## render every Helm values file and manifest into build/rendered (DAGS_MODE=git_sync|rwx_pvc)
	DAGS_MODE=$(DAGS_MODE) bash scripts/render.sh

bench: venv airflow-venv  ## print performance figures (lab runs, module seeding, DAG parse)
	python bench/bench_lab.py
	python bench/bench_modules.py --rows 10000 --loop-rows 50

readmes: venv  ## regenerate the generated part of every role README (variables from meta/argument_specs.yml)
	python scripts/role_readmes.py

build: venv  ## build the collection tarball
	ansible-galaxy collection build --force --output-path build/
