# Two entry points for a fresh Debian 12 machine (as root): `make demo` and `make test`. Both run set-up first.
.PHONY: setup models reader demo test clean-run
SHELL := /bin/bash

setup:
	@bash scripts/setup.sh

# The offline models the demo runs on: built once, then cached (idempotent). The edge LM's `complete` adapter is the one
# shipped in models/adapters/complete (trained here; its README says how), checked against the edge base's fingerprint
# (loaded once, then read from the record beside the weights: models/lora.py base_identity); one is trained (5 minutes)
# only for another edge base (NETGPT_EDGE_BASE). The `forecast` adapter (the opt-in edge_lm forecasting method,
# models/adapters/forecast) is installed when it fits the edge base, and never trained here: without it edge_lm says why
# it is unavailable and the forecaster goes on without it.
models: setup
	@.venv/bin/netgpt models prepare
	@.venv/bin/netgpt models install --task complete || .venv/bin/netgpt models train --task complete
	@.venv/bin/netgpt models install --task forecast || echo "forecast adapter not installed: edge_lm stays unavailable"

demo: models
	@.venv/bin/netgpt demo

# The operator-intent LM reader (netgpt intent train: about 23 minutes on 2 cores, once; then cached).
reader: models
	@.venv/bin/netgpt intent train --if-missing

# The tests against the real models (the demo, the edge LM's completion, the intent reader) need them built: without
# them they skip, which a fresh machine (CI) would not show as a failure.
test: models reader
	@.venv/bin/python -m pytest tests

clean-run:
	@.venv/bin/netgpt down
