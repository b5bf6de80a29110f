# Two entry points for a fresh Debian 12 machine (as root): `make demo` and `make test`. Both run set-up first.
.PHONY: setup demo test clean-run
SHELL := /bin/bash

setup:
	@bash scripts/setup.sh

demo: setup
	@.venv/bin/netgpt demo

test: setup
	@.venv/bin/python -m pytest tests

clean-run:
	@.venv/bin/netgpt down
