# securestack.pki test bed. Every target runs `setup` first (idempotent, fast
# when everything is there) and prints how long each stage took.
#   make test    setup, then molecule (the scenarios and the demo's test) beside
#                lint sanity unit (engine tests on cryptography 45 and 38, modules
#                through ansible-playbook, pkilint) galaxy-check
#   make demo    setup, then demo/demo.sh
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Where ansible finds this checkout as securestack.pki (a symlink, see
# scripts/collection-link.sh); exported for every target.
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/.venv/bin:$(PATH)

TIMED := scripts/timed

.PHONY: help setup lint sanity unit galaxy-check molecule test bench demo demo-down clean

help:
	@echo "make setup | lint | sanity | unit | galaxy-check | molecule | test | bench | demo | demo-down | clean"

# SECURESTACK_SETUP_DONE=1 (set by `test` for the stages it runs) skips it.
setup:
	@[ -n "$${SECURESTACK_SETUP_DONE:-}" ] || $(TIMED) setup scripts/setup.sh
	@scripts/collection-link.sh

lint: setup
	@$(TIMED) lint scripts/lint.sh

sanity: setup
	@$(TIMED) sanity scripts/sanity.sh

unit: setup
	@$(TIMED) unit .venv/bin/pytest tests/unit
	@$(TIMED) unit-engine-cryptography-38 .venv-engine-oldest/bin/python -m pytest -q tests/unit/plugins/module_utils
	@$(TIMED) unit-portal .venv-portal/bin/pytest -q portal/tests
	@$(TIMED) unit-pkilint .venv-pkilint/bin/python tests/unit/pkilint/lint_engine_output.py
	@$(TIMED) integration .venv/bin/ansible-playbook -i localhost, tests/integration/modules.yml

# The collection as users get it: build, install from the tarball into an
# empty path, run from there, Galaxy's import checks, changelog, EE.
galaxy-check: setup
	@$(TIMED) galaxy-check scripts/galaxy-check.sh --allow-no-repository

molecule: setup
	@$(TIMED) molecule scripts/molecule.sh

# The molecule jobs (containers, mostly waiting on docker exec and package
# downloads) start at once, beside the stages that only need the CPU and
# the venvs (lint, sanity, unit, galaxy-check, one after another). Every
# stage runs to its end; the target fails if any did.
test: setup
	@start=$$(date +%s); \
	scripts/timed molecule scripts/molecule.sh & molecule=$$!; \
	failed=(); export SECURESTACK_SETUP_DONE=1; \
	for stage in lint sanity unit galaxy-check; do \
	    $(MAKE) $$stage || failed+=($$stage); \
	done; \
	wait $$molecule || failed+=(molecule); \
	secs=$$(( $$(date +%s) - start )); \
	if [ $${#failed[@]} -gt 0 ]; then \
	    echo "== make test: FAILED: $${failed[*]} ($$((secs / 60))m$$((secs % 60))s after setup)" >&2; exit 1; \
	fi; \
	echo "== make test: all stages passed ($$((secs / 60))m$$((secs % 60))s after setup)"

bench: setup
	@$(TIMED) bench-sign .venv/bin/python tests/bench/bench_sign.py
	@$(TIMED) bench-rollout .venv/bin/python tests/bench/bench_rollout.py
	@$(TIMED) bench-tls .venv/bin/python tests/bench/bench_tls.py
	@$(TIMED) bench-portal-api .venv-portal/bin/python tests/bench/bench_portal_api.py

demo: setup
	@$(TIMED) demo bash demo/demo.sh

demo-down: setup
	@$(TIMED) demo-down bash demo/demo.sh down

# Removes what this checkout made (venvs, caches, molecule instances); keeps
# the docker images, the apt cache and the Debian packages.
clean:
	@for s in $$(scripts/molecule.sh --list 2>/dev/null); do \
	    .venv/bin/molecule destroy -s "$$s" > /dev/null 2>&1 || true; done
	rm -rf .venv .venv-lint .venv-sanity .venv-engine-oldest .venv-sslyze .venv-portal .venv-galaxy .venv-pkilint .cache .ansible .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
