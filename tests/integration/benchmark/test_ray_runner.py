"""The Ray runner on a local Ray instance writes the same store as the local runner."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from fusionmedclip_anomalib.benchmark.config import ALL_METRICS, load_config
from fusionmedclip_anomalib.benchmark.leaderboard import write_leaderboard
from fusionmedclip_anomalib.benchmark.progress import GridProgress
from fusionmedclip_anomalib.benchmark.runners import RayRunner, run_grid
from fusionmedclip_anomalib.benchmark.store import ResultStore

from .conftest import TinyGrid

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture
def local_ray():
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_runner_writes_the_same_store(tiny_grid: TinyGrid, tmp_path: Path, local_ray: None) -> None:
    config = load_config(tiny_grid.config)
    store = ResultStore(tmp_path / "out")
    progress = GridProgress(stream=io.StringIO())
    records = run_grid(config.runs(), store, RayRunner(), progress)
    assert [r["status"] for r in records] == ["ok"] * 4, [r.get("error") for r in records]
    assert sorted(p.name for p in store.runs_dir.iterdir()) == sorted(
        p.name for p in (tiny_grid.output / "runs").iterdir()
    )
    assert sorted(p.name for p in store.support_dir.iterdir()) == sorted(
        p.name for p in (tiny_grid.output / "support").iterdir()
    )
    for record in records:
        local = json.loads((tiny_grid.output / "runs" / f"{record['run_id']}.json").read_text())
        assert record["spec_hash"] == local["spec_hash"]
        assert record["metrics"] == pytest.approx(local["metrics"], abs=1e-6)
    columns = ["model", "k_shot", "n_seeds"] + [f"{m}_mean" for m in ALL_METRICS]
    written = write_leaderboard(store, config, gallery_runs=[])
    pd.testing.assert_frame_equal(
        pd.read_csv(written.csv)[columns], pd.read_csv(tiny_grid.output / "leaderboard.csv")[columns], atol=1e-6
    )
    assert "[4/4] ok" in progress.stream.getvalue()


def test_a_dead_worker_is_a_failed_run(
    tiny_grid: TinyGrid, tmp_path: Path, local_ray: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fusionmedclip_anomalib.benchmark import runners

    def die(spec_data: dict) -> None:
        import os

        os._exit(1)

    monkeypatch.setattr(runners, "_execute_remote", die)
    spec = load_config(tiny_grid.config).runs()[0]
    store = ResultStore(tmp_path / "out")
    records = run_grid([spec], store, RayRunner(), GridProgress(stream=io.StringIO()))
    assert records[0]["status"] == "failed"
    assert records[0]["error"]["type"]
