"""The built-in Phantom dataset: deterministic, cached, masks on the visible lesions, not trivially separable."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from medical_fakes import tree_digest

from fusionmedclip_anomalib.data import Phantom
from fusionmedclip_anomalib.data.phantom import GENERATOR_VERSION, default_phantom_root, generate_phantom
from fusionmedclip_anomalib.data.phantom_render import MODALITIES, render_phantom

SMALL = {"n_train": 4, "n_test_normal": 2, "n_test_abnormal": 3, "image_size": 64}


def _auroc(negatives: list[float], positives: list[float]) -> float:
    neg, pos = np.asarray(negatives)[None, :], np.asarray(positives)[:, None]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


@pytest.mark.parametrize("modality", MODALITIES)
def test_same_settings_give_identical_bytes(tmp_path: Path, modality: str) -> None:
    settings = {"generator_version": GENERATOR_VERSION, "modality": modality, "generation_seed": 3, **SMALL}
    generate_phantom(tmp_path / "a", settings)
    generate_phantom(tmp_path / "b", settings)
    first, second = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b")
    assert first == second
    assert sum(name.startswith("images/test/ground_true/") for name in first) == 3
    generate_phantom(tmp_path / "c", {**settings, "generation_seed": 4})
    assert (
        tree_digest(tmp_path / "c")["images/train/normal/" + f"{modality}_train_000.png"]
        != first[f"images/train/normal/{modality}_train_000.png"]
    )


def test_generated_once_and_regenerated_when_settings_change(tmp_path: Path) -> None:
    dm = Phantom(modality="breast_us", root=tmp_path, k_shot=2, **SMALL)
    dm.setup()
    folder = tmp_path / "phantom_breast_us"
    marker = folder / "images/train/normal/breast_us_train_000.png"
    stamp = marker.stat().st_mtime_ns
    Phantom(modality="breast_us", root=tmp_path, k_shot=3, seed=1, **SMALL).setup()
    assert marker.stat().st_mtime_ns == stamp  # same settings: reused
    Phantom(modality="breast_us", root=tmp_path, k_shot=2, **{**SMALL, "n_train": 5}).setup()
    assert json.loads((folder / "phantom.json").read_text())["n_train"] == 5
    assert len((folder / "samples/train.json").read_text().splitlines()) == 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch folders left


def test_default_root_is_a_per_settings_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_phantom_root() == tmp_path / "fusionmedclip" / "phantom"
    one = Phantom(modality="brain", k_shot=2, **SMALL)
    other = Phantom(modality="brain", k_shot=2, **{**SMALL, "image_size": 48})
    assert one.root.parent == other.root.parent == default_phantom_root() and one.root != other.root


@pytest.mark.parametrize("modality", MODALITIES)
def test_datamodule_batches_have_labels_and_masks(tmp_path: Path, modality: str) -> None:
    dm = Phantom(modality=modality, root=tmp_path, k_shot=3, seed=0, eval_batch_size=8, **SMALL)
    dm.setup()
    assert len(dm.train_data) == 3 and len(dm.test_data) == 5 and dm.task.value == "segmentation"
    batch = next(iter(dm.test_dataloader()))
    assert batch.image.shape == (5, 3, 64, 64) and batch.gt_mask.shape == (5, 64, 64)
    assert batch.gt_label.tolist() == [True] * 3 + [False] * 2
    assert all(batch.gt_mask[i].any() for i in range(3)) and not batch.gt_mask[3:].any()
    assert len(dm.val_data) == 2 * (SMALL["n_train"] - 3)


@pytest.mark.parametrize("modality", MODALITIES)
def test_masks_cover_the_visible_lesion(modality: str) -> None:
    for index in range(8):
        lesioned, mask = render_phantom(modality, [0, 2, index], 224, abnormal=True)
        twin, empty = render_phantom(modality, [0, 2, index], 224, abnormal=False)
        assert mask.any() and not empty.any()
        change = np.abs(lesioned.astype(float) - twin.astype(float))
        near = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        assert change[mask].mean() > 10, "lesion must be visible"
        assert change[near].sum() > 0.7 * change.sum(), "the change must lie on the mask"
        assert change[mask].mean() > 50 * max(change[~near].mean(), 1e-3)


@pytest.mark.parametrize("modality", MODALITIES)
def test_intensity_baseline_is_not_perfect(modality: str) -> None:
    normals = [render_phantom(modality, [0, 1, i], 224)[0].astype(float) for i in range(16)]
    abnormals = [render_phantom(modality, [0, 2, i], 224, abnormal=True)[0].astype(float) for i in range(16)]
    for statistic in (np.mean, np.max, np.std):
        auroc = _auroc([statistic(x) for x in normals], [statistic(x) for x in abnormals])
        assert max(auroc, 1 - auroc) < 0.95, (statistic.__name__, auroc)


def test_normals_vary_in_pose_size_and_intensity() -> None:
    images = [render_phantom("brain", [0, 0, i], 128)[0].astype(float) for i in range(8)]
    means = [image.mean() for image in images]
    areas = [(image > 30).mean() for image in images]
    assert np.std(means) > 2 and np.std(areas) > 0.01
    assert torch.tensor(np.stack(images)).std(0).mean() > 10


def test_default_size_generation_takes_seconds(tmp_path: Path) -> None:
    start = time.perf_counter()
    generate_phantom(
        tmp_path / "x",
        {
            "generator_version": GENERATOR_VERSION,
            "modality": "chest_xray",
            "n_train": 32,
            "n_test_normal": 16,
            "n_test_abnormal": 16,
            "image_size": 224,
            "generation_seed": 0,
        },
    )
    assert time.perf_counter() - start < 15


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="modality"):
        Phantom(modality="retina")
    with pytest.raises(ValueError, match="n_train"):
        Phantom(modality="brain", n_train=0)
