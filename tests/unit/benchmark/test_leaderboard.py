"""Leaderboard: aggregation against a hand-computed table, best-per-column marks, labels, files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionmedclip_anomalib.benchmark.leaderboard import (
    aggregate,
    best_mask,
    records_frame,
    render_gallery,
    to_latex,
    to_markdown,
    write_leaderboard,
)
from fusionmedclip_anomalib.benchmark.store import ResultStore, atomic_write_json


def _record(
    model: str,
    k: int,
    seed: int,
    auroc: float | None,
    weights: str = "random",
    status: str = "ok",
    dataset: str = "brain",
) -> dict:
    return {
        "run_id": f"{model}__{dataset}__k{k}__s{seed}__{weights}",
        "status": status,
        "model": model,
        "dataset": dataset,
        "k_shot": k,
        "seed": seed,
        "weights": weights,
        "metrics": None if status != "ok" else {"image_AUROC": auroc, "pixel_AUROC": None},
        "timings": {"fit_s": 2.0 * (seed + 1), "test_s": 1.0, "test_images_per_s": 10.0},
        "memory": {"peak_rss_mb": 100.0 + seed},
    }


RECORDS = [
    _record("Ours", 4, 0, 0.80),
    _record("Ours", 4, 1, 0.90),
    _record("Ours", 4, 2, 0.70),
    _record("PatchCore", 4, 0, 0.60),
    _record("PatchCore", 4, 1, 0.64),
    _record("PatchCore", 4, 2, None, status="failed"),
    _record("Ours", 16, 0, 0.95),
    _record("PatchCore", 16, 0, 0.97),
]


def test_mean_and_std_over_seeds_match_a_hand_computed_table() -> None:
    table = aggregate(records_frame(RECORDS), ("image_AUROC",), model_order=["Ours", "PatchCore"])
    expected = pd.DataFrame(
        {
            "dataset": ["brain"] * 4,
            "k_shot": [4, 4, 16, 16],
            "model": ["Ours", "PatchCore", "Ours", "PatchCore"],
            "weights": ["random"] * 4,
            "n_seeds": [3, 2, 1, 1],
            "n_failed": [0, 1, 0, 0],
            # means by hand: (0.8 + 0.9 + 0.7) / 3, (0.6 + 0.64) / 2; sample std (ddof=1): 0.1, sqrt(0.0008)
            "image_AUROC_mean": [0.8, 0.62, 0.95, 0.97],
            "image_AUROC_std": [0.1, math.sqrt(0.0008), np.nan, np.nan],
            "fit_s_mean": [4.0, 3.0, 2.0, 2.0],
            "test_images_per_s_mean": [10.0] * 4,
            "peak_rss_mb_max": [102.0, 101.0, 100.0, 100.0],
        }
    )
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, atol=1e-12)


def test_group_of_only_failed_runs_is_kept_with_no_value() -> None:
    records = [_record("Broken", 4, 0, None, status="failed"), _record("Ours", 4, 0, 0.5)]
    table = aggregate(records_frame(records), ("image_AUROC",), model_order=["Ours", "Broken"])
    assert list(table["model"]) == ["Ours", "Broken"]
    assert table.loc[1, "n_seeds"] == 0 and table.loc[1, "n_failed"] == 1
    assert math.isnan(table.loc[1, "image_AUROC_mean"])


def test_best_is_marked_per_dataset_and_k_block() -> None:
    table = aggregate(records_frame(RECORDS), ("image_AUROC",), model_order=["Ours", "PatchCore"])
    assert list(best_mask(table, "image_AUROC")) == [True, False, False, True]
    markdown = to_markdown(table, ["image_AUROC"])
    assert "| brain | 4 | Ours (random weights) | **80.0 ± 10.0** |" in markdown
    assert "| brain | 4 | PatchCore (random weights) | 62.0 ± 2.8 |" in markdown
    assert "| brain | 16 | PatchCore (random weights) | **97.0** |" in markdown
    assert "2 (1 failed)" in markdown
    assert "test the pipeline only" in markdown
    latex = to_latex(table, ["image_AUROC"])
    assert r"\textbf{80.0 $\pm$ 10.0}" in latex and r"\textbf{97.0}" in latex
    assert r"\toprule" in latex and "Ours (random weights)" in latex


def test_pretrained_rows_carry_no_random_label() -> None:
    table = aggregate(records_frame([_record("Ours", 4, 0, 0.8, weights="pretrained")]), ("image_AUROC",))
    markdown = to_markdown(table)
    assert "random" not in markdown


def test_write_leaderboard_files(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    for record in RECORDS:
        atomic_write_json(store.record_path(record["run_id"]), record)
    run_id = RECORDS[0]["run_id"]
    rng = np.random.default_rng(0)
    store.samples_dir.mkdir(parents=True)
    np.savez_compressed(
        store.samples_path(run_id),
        image=rng.integers(0, 255, (2, 16, 16, 3), dtype=np.uint8),
        anomaly_map=rng.normal(size=(2, 16, 16)).astype(np.float32) * 30 + 100,
        mask=np.zeros((2, 16, 16), dtype=bool),
        score=np.array([130.0, 99.0]),
        label=np.array([1, 0]),
        image_path=np.array(["a.png", "b.png"]),
    )
    files = write_leaderboard(store, gallery_runs=[run_id])
    csv = pd.read_csv(files.csv)
    assert list(csv["model"]) == ["Ours", "PatchCore", "Ours", "PatchCore"]
    assert csv.loc[0, "image_AUROC_mean"] == pytest.approx(0.8)
    assert files.markdown_path.read_text() == files.markdown
    assert [p.name for p in files.plots] == ["image_AUROC.png"]
    assert files.plots[0].stat().st_size > 1000
    assert files.galleries == [tmp_path / "gallery" / f"{run_id}.png"]
    with pytest.raises(FileNotFoundError, match="no gallery samples"):
        write_leaderboard(store, gallery_runs=["nope"])


def test_gallery_png_has_one_row_of_three_panels_per_image(tmp_path: Path) -> None:
    from matplotlib import image as mpimg

    samples = tmp_path / "s.npz"
    masks = np.zeros((4, 8, 8), dtype=bool)
    masks[0, 2:5, 2:5] = True
    np.savez(
        samples,
        image=np.zeros((4, 8, 8, 3), np.uint8),
        anomaly_map=np.random.rand(4, 8, 8).astype(np.float32),
        mask=masks,
        score=np.arange(4.0),
        label=np.array([1, 1, 0, 0]),
        image_path=np.array(list("abcd")),
    )
    picture = mpimg.imread(render_gallery(samples, tmp_path / "g.png", "run - random weights"))
    height, width = picture.shape[:2]
    assert height / width == pytest.approx(4 / 3, rel=0.02)  # 4 rows x (image | map | ground truth)
