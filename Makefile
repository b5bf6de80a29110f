# Two entry points for a fresh Debian 12 machine (as root): `make demo` and `make test`. Both run set-up first.
.PHONY: setup models demo test clean-run
SHELL := /bin/bash
CACHE := $(or $(NETGPT_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/netgpt)

setup:
	@bash scripts/setup.sh

# The offline models the demo runs on: built once, then cached (idempotent, ~1 s when cached).
models: setup
	@.venv/bin/netgpt models prepare
	@test -f $(CACHE)/adapters/complete/adapter_config.json || .venv/bin/netgpt models train --task complete

demo: models
	@.venv/bin/netgpt demo

test: setup
	@.venv/bin/python -m pytest tests

clean-run:
	@.venv/bin/netgpt down
