"""A grid killed with SIGKILL in the middle of a run resumes to the same final table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fusionmedclip_anomalib.benchmark import cli
from fusionmedclip_anomalib.benchmark.config import ALL_METRICS
from fusionmedclip_anomalib.benchmark.store import ResultStore

from .conftest import TinyGrid

pytestmark = pytest.mark.slow

METRIC_COLUMNS = ["model", "weights", "dataset", "k_shot", "n_seeds"] + [
    f"{m}_{stat}" for m in ALL_METRICS for stat in ("mean", "std")
]


def test_sigkill_mid_run_loses_only_that_run(tiny_grid: TinyGrid, tmp_path: Path, run_counter) -> None:
    output = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "fusionmedclip_anomalib.benchmark.cli", str(tiny_grid.config), "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if len(ResultStore(output).records()) >= 1:
                break
            time.sleep(0.2)
        time.sleep(0.5)  # the second run is under way now
        assert process.poll() is None, "the grid ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    survivors = ResultStore(output).records()
    assert 1 <= len(survivors) < 4
    assert all(record["status"] == "ok" for record in survivors)

    assert cli.main([str(tiny_grid.config), "--output", str(output)]) == 0
    assert len(run_counter.run_ids) == 4 - len(survivors)
    assert not {record["run_id"] for record in survivors} & set(run_counter.run_ids)
    assert not list(output.rglob(".*.tmp"))
    resumed = pd.read_csv(output / "leaderboard.csv")[METRIC_COLUMNS]
    uninterrupted = pd.read_csv(tiny_grid.output / "leaderboard.csv")[METRIC_COLUMNS]
    pd.testing.assert_frame_equal(resumed, uninterrupted, atol=1e-6)
