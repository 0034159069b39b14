#!/usr/bin/env bash
# Create or update the project's virtual environment (.venv) from requirements.lock.
# Idempotent: does nothing when the lock and pyproject have not changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 required, found {sys.version}"' \
  || { echo "error: UniPic needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 2; }

VENV=.venv
STAMP=$VENV/.unipic-installed
WANT=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PY" -m venv "$VENV"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
echo "==> installing dependencies into $VENV (first time: a few minutes)"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first and pinned: a loose torch requirement pulls a multi-GB CUDA build (notes/feas_ops.md).
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
# DeepSpeed builds as pure Python; its CPU ops are JIT-compiled on first use.
DS_BUILD_OPS=0 "$VENV/bin/python" -m pip install -q -r requirements.lock
"$VENV/bin/python" -m pip install -q --no-deps -e .
"$VENV/bin/python" -m pip check
echo "$WANT" > "$STAMP"
echo "==> environment ready: $VENV"
