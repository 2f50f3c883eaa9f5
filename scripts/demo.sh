#!/usr/bin/env bash
# The main job: the packaged demo benchmark on the built-in Phantom dataset (CPU, random weights, < 10 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} .venv/bin/fusionmedclip bench "$@"
