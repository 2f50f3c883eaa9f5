#!/usr/bin/env bash
# Create .venv and install the project with its test, ONNX, Ray and DICOM extras. Re-running is cheap: it reinstalls only
# when pyproject.toml changed. PYTHON selects the interpreter (default python3, 3.10+).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
stamp="$venv/.fusionmedclip-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# torch and torchvision first, as a matching pair (see README: Installation)
"$venv/bin/python" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
"$venv/bin/python" -m pip install --quiet -e ".[test,onnx,ray,dicom]"
echo "$want" > "$stamp"
