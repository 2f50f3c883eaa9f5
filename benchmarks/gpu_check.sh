#!/usr/bin/env bash
# FusionMedCLIP performance check for a machine with one GPU, in under 5 minutes:
# ViT-L/14 at bf16, inference and training step at batch 8 and 32, against the bare open_clip tower and anomalib's
# WinCLIP and PatchCore (random weights: no downloads needed). Writes <out>/<device>-<backbone>-<precision>.json and
# .md; the JSON is rewritten after every section, so a run cut short keeps what it measured.
#
# Usage:  benchmarks/gpu_check.sh [OUT_DIR]            (default OUT_DIR: benchmarks/perf)
# Overrides (environment), e.g. a CPU dry run of the same Python path:
#   BACKBONE=fmc-tiny DEVICE=cpu PRECISION=fp32 REPEATS=2 THREADS=1 BASELINES=--no-baselines \
#       benchmarks/gpu_check.sh /tmp/perf
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${root}/benchmarks/perf}"
backbone="${BACKBONE:-ViT-L-14}"
device="${DEVICE:-cuda}"
precision="${PRECISION:-bf16}"
repeats="${REPEATS:-10}"
loader_workers="${LOADER_WORKERS:-4}"   # synthesis keeps up with a GPU step only with several workers
baselines="${BASELINES:---baselines}"
threads=()
if [[ -n "${THREADS:-}" ]]; then threads=(--threads "${THREADS}"); fi
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${root}/.venv/bin/python" ]]; then PYTHON="${root}/.venv/bin/python"; else PYTHON=python3; fi
fi
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"

if [[ "${device}" == cuda* ]]; then
    "${PYTHON}" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "no CUDA device visible to torch")'
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    fi
fi

mkdir -p "${out}"
name="${device%%:*}-${backbone}-${precision}"
start=${SECONDS}
"${PYTHON}" -m fusionmedclip_anomalib.cli perf \
    --backbone "${backbone}" \
    --device "${device}" \
    --precision "${precision}" \
    --batch-sizes 8 32 \
    --train-batch-sizes 8 32 \
    --repeats "${repeats}" \
    --warmup 3 \
    --baseline-repeats 3 \
    --loader-workers "${loader_workers}" \
    "${baselines}" \
    --startup-repeats 3 \
    ${threads[@]+"${threads[@]}"} \
    --output "${out}/${name}.json" \
    --markdown-out "${out}/${name}.md"
echo "gpu_check: ${out}/${name}.json and .md written in $((SECONDS - start)) s" >&2
