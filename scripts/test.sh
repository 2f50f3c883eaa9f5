#!/usr/bin/env bash
# The whole test suite, slow tests included (what CI runs). For a quick loop: scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q "$@"
