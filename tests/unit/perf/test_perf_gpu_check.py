"""benchmarks/gpu_check.sh: valid bash that runs the perf command at ViT-L/14, bf16, batch 8 and 32."""

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[3] / "benchmarks" / "gpu_check.sh"


def test_gpu_check_script_is_valid_bash():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    subprocess.run([bash, "-n", str(SCRIPT)], check=True)


def test_gpu_check_runs_the_perf_command_at_the_issue_settings():
    text = SCRIPT.read_text()
    assert "fusionmedclip_anomalib.cli perf" in text
    assert "--batch-sizes 8 32" in text and "--train-batch-sizes 8 32" in text
    assert '--loader-workers "${loader_workers}"' in text and 'loader_workers="${LOADER_WORKERS:-4}"' in text
    assert 'backbone="${BACKBONE:-ViT-L-14}"' in text and 'precision="${PRECISION:-bf16}"' in text
