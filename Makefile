# Two entry points for a fresh Debian 12 machine (as root): `make demo` and `make test`. Both run set-up first.
.PHONY: setup models demo test clean-run
SHELL := /bin/bash

setup:
	@bash scripts/setup.sh

# The offline models the demo runs on: built once, then cached (idempotent). The adapter check loads the edge base for
# its fingerprint once, then reads it from the record beside the weights (models/lora.py base_identity).
models: setup
	@.venv/bin/netgpt models prepare
	@.venv/bin/netgpt models check --task complete || .venv/bin/netgpt models train --task complete  # missing, or for another edge base

demo: models
	@.venv/bin/netgpt demo

test: setup
	@.venv/bin/python -m pytest tests

clean-run:
	@.venv/bin/netgpt down
