"""The regression gate on leaderboard tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fusionmedclip_anomalib.benchmark.check import check_files, compare

TABLE = pd.DataFrame(
    {
        "dataset": ["brain", "brain"],
        "k_shot": [4, 4],
        "model": ["Ours", "PatchCore"],
        "weights": ["random", "random"],
        "n_seeds": [2, 2],
        "image_AUROC_mean": [0.80, 0.60],
        "image_AUROC_std": [0.01, 0.02],
        "pixel_AUROC_mean": [0.90, float("nan")],
        "fit_s_mean": [3.0, 1.0],
    }
)


def test_a_table_passes_against_itself() -> None:
    assert compare(TABLE, TABLE, tolerance=0.0) == []


def test_raised_reference_fails_naming_the_cell() -> None:
    reference = TABLE.copy()
    reference.loc[1, "image_AUROC_mean"] = 0.70
    regressions = compare(TABLE, reference, tolerance=0.02)
    assert len(regressions) == 1
    text = str(regressions[0])
    assert regressions[0].cell == "PatchCore [random] / brain / k=4 / image_AUROC"
    assert text.startswith("PatchCore [random] / brain / k=4 / image_AUROC: 0.6000 < reference 0.7000")


def test_drops_within_tolerance_and_improvements_pass() -> None:
    current = TABLE.copy()
    current.loc[0, "image_AUROC_mean"] = 0.785
    current.loc[1, "image_AUROC_mean"] = 0.99
    assert compare(current, TABLE, tolerance=0.02) == []
    assert [r.metric for r in compare(current, TABLE, tolerance=0.01)] == ["image_AUROC"]


def test_missing_cells_regress_and_nan_references_are_skipped() -> None:
    current = TABLE.iloc[[1]].copy()
    regressions = compare(current, TABLE, tolerance=0.5)
    assert {(r.model, r.metric, r.current) for r in regressions} == {
        ("Ours", "image_AUROC", None),
        ("Ours", "pixel_AUROC", None),
    }
    assert "missing" in str(regressions[0])


def test_check_files_reads_csv(tmp_path: Path) -> None:
    TABLE.to_csv(tmp_path / "a.csv", index=False)
    assert check_files(tmp_path / "a.csv", tmp_path / "a.csv", 0.0) == []
    with pytest.raises(ValueError, match="tolerance"):
        check_files(tmp_path / "a.csv", tmp_path / "a.csv", -1)
