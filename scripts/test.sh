#!/usr/bin/env bash
# The test command: set up the environment, then run the whole suite (unit, integration with real
# services on loopback, end-to-end pipeline on the ci preset). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 UNIPIC_NO_PROGRESS=1 PYTHONHASHSEED=0
exec .venv/bin/python -m pytest -q "$@"
