#!/usr/bin/env bash
# The main job: set up the environment, start the embedded services (SeaweedFS on 127.0.0.1), and run
# the UniPic 2.0 pipeline under kfp.local on the given preset (default: ci). Extra args go to `unipic run`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export HF_HUB_OFFLINE=1
preset=${1:-ci}
shift || true
exec .venv/bin/unipic run --preset "$preset" "$@"
