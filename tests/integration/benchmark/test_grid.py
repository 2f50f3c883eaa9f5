"""The harness end to end through the real Engine: records, resume, re-run of a deleted record, failures, gate."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fusionmedclip_anomalib.benchmark import cli
from fusionmedclip_anomalib.benchmark.config import ALL_METRICS, load_config

from .conftest import FUSIONMEDCLIP, PATCHCORE, TinyGrid, tiny_config, write_config

pytestmark = pytest.mark.slow

METRIC_COLUMNS = [f"{m}_{stat}" for m in ALL_METRICS for stat in ("mean", "std")]


def _records(output: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted((output / "runs").glob("*.json"))}


def test_grid_writes_one_complete_record_per_run(tiny_grid: TinyGrid) -> None:
    assert tiny_grid.exit_code == 0
    records = _records(tiny_grid.output)
    assert sorted(records) == sorted(spec.run_id for spec in load_config(tiny_grid.config).runs())
    assert len(records) == 2 * 2
    for record in records.values():
        assert record["status"] == "ok", record.get("error")
        assert record["weights"] == "random"
        assert record["test_passes"] == 1
        assert record["splits"]["train"] == 2 and record["splits"]["test"] == 6
        assert record["has_masks"] is True
        assert set(record["metrics"]) == set(ALL_METRICS)
        assert all(0.0 <= value <= 1.0 for value in record["metrics"].values())
        assert record["timings"]["fit_s"] > 0 and record["timings"]["test_images_per_s"] > 0
        assert record["memory"]["peak_rss_mb"] > 0
        assert record["versions"]["anomalib"].startswith("2.7")
        assert (tiny_grid.output / record["support"]["manifest"]).is_file()
        assert (tiny_grid.output / record["samples"]).is_file()
    # every model of the same (dataset, k, seed) trained on the same support set
    for seed in (0, 1):
        hashes = {r["support"]["sha256"] for r in records.values() if r["seed"] == seed}
        assert len(hashes) == 1
    table = pd.read_csv(tiny_grid.output / "leaderboard.csv")
    assert list(table["model"]) == ["PatchCore", "FusionMedCLIP"] and list(table["n_seeds"]) == [2, 2]
    assert (tiny_grid.output / "leaderboard.md").read_text().count("(random weights)") >= 2
    assert (tiny_grid.output / "plots" / "image_AUROC.png").is_file()
    assert (tiny_grid.output / "gallery").is_dir()


def test_rerunning_a_finished_grid_runs_nothing(tiny_grid: TinyGrid, tmp_path: Path, run_counter) -> None:
    output = tiny_grid.copy_output(tmp_path / "out")
    before = {path.name: path.stat().st_mtime_ns for path in (output / "runs").iterdir()}
    assert cli.main([str(tiny_grid.config), "--output", str(output)]) == 0
    assert run_counter.run_ids == []
    assert {path.name: path.stat().st_mtime_ns for path in (output / "runs").iterdir()} == before


def test_deleting_a_record_reruns_exactly_that_run(tiny_grid: TinyGrid, tmp_path: Path, run_counter) -> None:
    output = tiny_grid.copy_output(tmp_path / "out")
    victim = "FusionMedCLIP__phantom__k2__s1__random"
    deleted = json.loads((output / "runs" / f"{victim}.json").read_text())
    (output / "runs" / f"{victim}.json").unlink()
    others = {p.name: p.stat().st_mtime_ns for p in (output / "runs").iterdir()}
    assert cli.main([str(tiny_grid.config), "--output", str(output)]) == 0
    assert run_counter.run_ids == [victim]
    assert {p.name: p.stat().st_mtime_ns for p in (output / "runs").iterdir() if p.name in others} == others
    again = json.loads((output / "runs" / f"{victim}.json").read_text())
    assert again["metrics"] == pytest.approx(deleted["metrics"], abs=1e-6)  # seeded: the same run gives the same


def test_failing_run_is_recorded_and_the_grid_goes_on(
    tiny_grid: TinyGrid, tmp_path: Path, capsys: pytest.CaptureFixture, run_counter
) -> None:
    output = tiny_grid.copy_output(tmp_path / "out")
    broken = {
        "name": "Broken",
        "class_path": "anomalib.models.Patchcore",
        "init_args": {"backbone": "no_such_backbone_anywhere"},
    }
    config = write_config(
        tmp_path / "with-broken.yaml", tiny_config(tiny_grid.phantom_root, models=[broken, PATCHCORE, FUSIONMEDCLIP])
    )
    assert cli.main([str(config), "--output", str(output)]) == cli.EXIT_FAILED_RUNS
    assert run_counter.run_ids == ["Broken__phantom__k2__s0__random", "Broken__phantom__k2__s1__random"]
    records = _records(output)
    failed = records["Broken__phantom__k2__s0__random"]
    assert failed["status"] == "failed"
    assert "no_such_backbone_anywhere" in failed["error"]["message"]
    assert "Traceback" in failed["error"]["traceback"]
    assert sum(r["status"] == "ok" for r in records.values()) == 4
    err = capsys.readouterr().err
    assert "2 run(s) failed" in err and "Broken__phantom__k2__s1__random" in err
    table = pd.read_csv(output / "leaderboard.csv")
    broken_row = table[table["model"] == "Broken"].iloc[0]
    assert broken_row["n_seeds"] == 0 and broken_row["n_failed"] == 2
    # failed runs are tried again on the next invocation
    run_counter.run_ids.clear()
    assert cli.main([str(config), "--output", str(output)]) == cli.EXIT_FAILED_RUNS
    assert len(run_counter.run_ids) == 2


def test_check_passes_on_own_output_and_names_a_raised_cell(
    tiny_grid: TinyGrid, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tiny_grid.copy_output(tmp_path / "out")
    reference = tiny_grid.output / "leaderboard.csv"
    assert (
        cli.main([str(tiny_grid.config), "--output", str(output), "--check", str(reference), "--tolerance", "0"]) == 0
    )
    assert "Regression gate passed" in capsys.readouterr().out
    raised = pd.read_csv(reference)
    row = raised.index[raised["model"] == "FusionMedCLIP"][0]
    raised.loc[row, "image_AUROC_mean"] = raised.loc[row, "image_AUROC_mean"] + 0.05
    raised.to_csv(tmp_path / "raised.csv", index=False)
    status = cli.main(
        [str(tiny_grid.config), "--output", str(output), "--check", str(tmp_path / "raised.csv"), "--tolerance", "0.02"]
    )
    assert status == cli.EXIT_REGRESSION
    err = capsys.readouterr().err
    assert "Regression gate FAILED" in err
    assert "FusionMedCLIP [random] / phantom / k=2 / image_AUROC" in err
    assert "PatchCore" not in err


def test_leaderboard_command_redraws_from_the_folder(
    tiny_grid: TinyGrid, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from fusionmedclip_anomalib.benchmark import leaderboard_cli

    output = tiny_grid.copy_output(tmp_path / "out")
    run_id = "PatchCore__phantom__k2__s1__random"
    assert leaderboard_cli.main([str(output), "--gallery", run_id]) == 0
    printed = capsys.readouterr().out
    assert "| phantom | 2 | PatchCore (random weights) |" in printed
    assert (output / "gallery" / f"{run_id}.png").is_file()
    pd.testing.assert_frame_equal(
        pd.read_csv(output / "leaderboard.csv"), pd.read_csv(tiny_grid.output / "leaderboard.csv")
    )
    assert leaderboard_cli.main([str(output), "--gallery", "nope"]) == 2
