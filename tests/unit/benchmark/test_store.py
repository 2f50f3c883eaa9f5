"""The result store: atomic records, resume rules, stale and failed runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fusionmedclip_anomalib.benchmark.config import parse_config
from fusionmedclip_anomalib.benchmark.run import RunResult, new_record
from fusionmedclip_anomalib.benchmark.store import ResultStore, atomic_write_json


def _spec(x: int = 1):
    return parse_config(
        {
            "models": [{"name": "A", "class_path": "pkg.A", "init_args": {"x": x}}],
            "datasets": [{"name": "D", "class_path": "pkg.D"}],
        }
    ).runs()[0]


def _result(spec, status: str = "ok", gallery: bool = True) -> RunResult:
    record = new_record(spec)
    record["status"] = status
    record["metrics"] = {"image_AUROC": 0.75}
    samples = {"image": np.zeros((1, 4, 4, 3), np.uint8), "anomaly_map": np.ones((1, 4, 4), np.float32)}
    return RunResult(record, {"k_shot": 4, "seed": 0, "files": ["a.png"]}, samples if gallery else {})


def test_atomic_write_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "x.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


def test_interrupted_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.json"
    atomic_write_json(target, {"a": 1})

    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("fusionmedclip_anomalib.benchmark.store.os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert not list(tmp_path.glob(".*.tmp"))


def test_save_writes_support_samples_then_record(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    spec = _spec()
    path = store.save(_result(spec))
    record = json.loads(path.read_text())
    assert record["support"]["manifest"] == "support/D__k4__s0.json"
    assert record["samples"] == f"samples/{spec.run_id}.npz"
    assert json.loads((tmp_path / record["support"]["manifest"]).read_text())["files"] == ["a.png"]
    with np.load(tmp_path / record["samples"]) as samples:
        assert samples["anomaly_map"].shape == (1, 4, 4)


def test_finished_means_ok_and_same_spec(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    spec = _spec()
    assert not store.is_finished(spec)
    store.save(_result(spec, status="failed", gallery=False))
    assert not store.is_finished(spec), "failed runs are retried"
    store.save(_result(spec))
    assert store.is_finished(spec)
    assert not store.is_finished(_spec(x=2)), "a changed spec makes the record stale"


def test_unreadable_records_and_temporaries_are_ignored(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    spec = _spec()
    store.save(_result(spec))
    (store.runs_dir / "broken.json").write_text("{not json")
    (store.runs_dir / f".{spec.run_id}.json.abc.tmp").write_text("{half")
    assert [r["run_id"] for r in store.records()] == [spec.run_id]
    assert store.load("broken") is None
    removed = store.remove_stale_temporaries()
    assert [p.name for p in removed] == [f".{spec.run_id}.json.abc.tmp"]
