"""MedicalFolder: splits, batches, masks, k-shot manifests, validation without test images, errors naming files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from medical_fakes import corrupt_file, make_prepared, mask_array, save, truncated_png

from fusionmedclip_anomalib.data import BUSI, BrainMRI, MedicalFolder
from fusionmedclip_anomalib.data.image_io import ImageReadError
from fusionmedclip_anomalib.data.manifest import SupportSetError
from fusionmedclip_anomalib.data.medical_folder import DatasetLayoutError


def _module(root: Path, **kwargs) -> MedicalFolder:
    kwargs.setdefault("k_shot", 3)
    return MedicalFolder(root=root, name="toy", eval_batch_size=16, **kwargs)


def test_splits_labels_and_masks(tmp_path: Path) -> None:
    make_prepared(tmp_path)
    dm = _module(tmp_path, seed=0)
    dm.setup()
    assert len(dm.train_data) == 3 and set(dm.train_data.samples.label_index) == {0}
    assert len(dm.test_data) == 6 and dm.test_data.samples.label_index.sum() == 3
    assert dm.task.value == "segmentation" and dm.name == "toy" and dm.category == ""

    batch = next(iter(dm.test_dataloader()))
    assert batch.image.shape == (6, 3, 24, 32) and batch.image.dtype == torch.float32
    assert batch.gt_label.dtype == torch.bool and batch.gt_label.tolist() == [True] * 3 + [False] * 3
    assert batch.gt_mask.dtype == torch.bool and batch.gt_mask.shape == (6, 24, 32)
    assert not batch.gt_mask[~batch.gt_label].any()  # normal test images: all-zero masks
    expected = [
        (mask_array(24, 32, (2, 2, 10, 10)) > 0) | (mask_array(24, 32, (14, 20, 20, 28)) > 0),  # two files merged
        mask_array(24, 32, (2, 2, 10, 12)) > 0,  # stored at 48x64, resized with nearest neighbour
        mask_array(24, 32, (2, 2, 10, 12)) > 0,
    ]
    for index, mask in enumerate(expected):
        assert torch.equal(batch.gt_mask[index], torch.from_numpy(mask)), index

    train = next(iter(dm.train_dataloader()))
    assert train.image.max() <= 1.0 and (train.image == 1.0).float().mean() < 0.05  # 16-bit image not saturated
    assert not train.gt_label.any()


def test_training_loader_keeps_its_workers_between_epochs(tmp_path: Path) -> None:
    make_prepared(tmp_path)
    for workers in (0, 1):
        dm = _module(tmp_path, num_workers=workers, train_batch_size=2)
        dm.setup()
        loader = dm.train_dataloader()
        assert (loader.num_workers, loader.persistent_workers, loader.batch_size) == (workers, workers > 0, 2)
        assert sorted(len(batch.image) for batch in loader) == [1, 2]


def test_classification_dataset_has_no_masks(tmp_path: Path) -> None:
    make_prepared(tmp_path, masks=False)
    dm = _module(tmp_path, val_split_mode="none")
    dm.setup()
    assert dm.task.value == "classification"
    batch = next(iter(dm.test_dataloader()))
    assert batch.gt_mask is None and batch.gt_label.sum() == 3


def test_support_set_is_seeded_and_manifest_round_trips(tmp_path: Path) -> None:
    make_prepared(tmp_path, n_train=10)
    first = _module(tmp_path, seed=0)
    first.setup()
    manifest = first.support_manifest
    json.dumps(manifest)
    assert manifest["dataset"] == "toy" and manifest["k_shot"] == 3 and manifest["seed"] == 0
    assert manifest["pool_size"] == 10 and all(name.startswith("images/train/normal/") for name in manifest["files"])
    assert sorted(Path(p).name for p in first.train_data.samples.image_path) == sorted(
        Path(p).name for p in manifest["files"]
    )
    assert _module(tmp_path, seed=0).support_manifest["files"] == manifest["files"]
    assert _module(tmp_path, seed=1).support_manifest["files"] != manifest["files"]

    path = first.save_support_manifest(tmp_path / "run" / "support.json")
    again = MedicalFolder(root=tmp_path, name="toy", k_shot=None, seed=5, support_set=path)
    again.setup()
    assert again.support_manifest["files"] == manifest["files"]
    assert list(again.train_data.samples.image_path) == list(first.train_data.samples.image_path)

    (tmp_path / "toy" / manifest["files"][1]).unlink()
    with pytest.raises(SupportSetError, match=Path(manifest["files"][1]).name):
        MedicalFolder(root=tmp_path, name="toy", support_set=path).setup()


def test_k_shot_none_and_too_large(tmp_path: Path) -> None:
    make_prepared(tmp_path, n_train=5)
    assert len(_module(tmp_path, k_shot=None, val_split_mode="none").support_manifest["files"]) == 5
    with pytest.raises(ValueError, match=r"k_shot=6.*5 normal images"):
        _module(tmp_path, k_shot=6).setup()


def test_synthetic_validation_never_uses_test_or_support_images(tmp_path: Path) -> None:
    make_prepared(tmp_path, n_train=8)
    dm = _module(tmp_path, k_shot=3, seed=0)
    dm.setup()
    val_paths = set(dm.val_data.samples.image_path)
    assert not val_paths & set(dm.test_data.samples.image_path)
    assert not val_paths & set(dm.train_data.samples.image_path)
    assert len(val_paths) == 5 and len(dm.val_data) == 10
    batch = next(iter(dm.val_dataloader()))
    assert batch.gt_label.sum() == 5
    assert all(batch.gt_mask[i].any() == batch.gt_label[i] for i in range(len(batch.gt_label)))
    # the synthetic lesion changes the image inside its mask only
    items = {(item.image_path, bool(item.gt_label)): item for item in (dm.val_data[i] for i in range(len(dm.val_data)))}
    path = min(val_paths)
    normal, lesioned = items[(path, False)], items[(path, True)]
    change = (normal.image - lesioned.image).abs().sum(0)
    assert change.sum() > 0 and change[lesioned.gt_mask.bool()].sum() > 0.8 * change.sum()
    again = _module(tmp_path, k_shot=3, seed=0)
    again.setup()
    assert torch.equal(again.val_data[1].image, dm.val_data[1].image)


def test_validation_falls_back_to_support_images_with_a_warning(tmp_path: Path) -> None:
    make_prepared(tmp_path, n_train=4)
    dm = _module(tmp_path, k_shot=None)
    with pytest.warns(UserWarning, match="no held-out normal"):
        dm.setup()
    assert set(dm.val_data.samples.image_path) == set(dm.train_data.samples.image_path)


def test_val_split_none_and_test_only_modes(tmp_path: Path) -> None:
    make_prepared(tmp_path)
    dm = _module(tmp_path, val_split_mode="none")
    dm.setup()
    assert dm.val_dataloader() == [] and not hasattr(dm, "val_data")
    for mode in ("same_as_test", "from_test"):
        with pytest.raises(ValueError, match="never use test images"):
            _module(tmp_path, val_split_mode=mode)


def test_corrupt_and_truncated_images(tmp_path: Path) -> None:
    folder = make_prepared(tmp_path, n_train=6)
    corrupt_file(folder / "images/train/normal/n05.jpg")
    with pytest.raises(ImageReadError, match="n05.jpg"):
        _module(tmp_path).setup()
    dm = _module(tmp_path, lenient=True, k_shot=None, val_split_mode="none")
    with pytest.warns(UserWarning, match="n05.jpg"):
        dm.setup()
    assert len(dm.train_data) == 5

    corrupt_file(folder / "images/train/normal/n05.jpg").unlink()
    (folder / "samples/train.json").write_text(
        "".join(line + "\n" for line in (folder / "samples/train.json").read_text().splitlines()[:5])
    )
    truncated_png(folder / "images/test/normal/t00.png", seed=1)
    dm = _module(tmp_path, val_split_mode="none")
    dm.setup()  # the header parses: found when decoded, and named
    with pytest.raises(ImageReadError, match="t00.png"):
        list(dm.test_dataloader())
    lenient = _module(tmp_path, val_split_mode="none", lenient=True)
    with pytest.warns(UserWarning, match="t00.png"):
        lenient.setup()
    assert len(lenient.test_data) == 5


def test_layout_errors_name_the_file(tmp_path: Path) -> None:
    folder = make_prepared(tmp_path)
    orphan = save(folder / "images/test/ground_true/zz_mask.png", mask_array(24, 32, (0, 0, 2, 2)))
    with pytest.raises(DatasetLayoutError, match="zz_mask.png"):
        _module(tmp_path).setup()
    with pytest.warns(UserWarning, match="zz_mask.png"):
        _module(tmp_path, lenient=True).setup()
    orphan.unlink()

    (folder / "images/test/abnormal/a02.png").unlink()
    with pytest.raises(DatasetLayoutError, match=r"a02_mask.png has no image.*a02.png"):
        _module(tmp_path).setup()

    rows = [json.loads(line) for line in (folder / "samples/test.json").read_text().splitlines()]
    rows = [row for row in rows if row["filename"] != "test/abnormal/a02.png"]
    rows[-1].pop("mask")
    (folder / "samples/test.json").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "images/test/ground_true/a02_mask.png").unlink()
    with pytest.raises(DatasetLayoutError, match="a01.png has no mask"):
        _module(tmp_path).setup()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm = _module(tmp_path, lenient=True)
        dm.setup()
    assert any("a01.png" in str(w.message) for w in caught)
    assert len(dm.test_data) == 4

    with pytest.raises(FileNotFoundError, match="fusionmedclip prepare"):
        MedicalFolder(root=tmp_path, name="absent").setup()


@pytest.mark.parametrize("split", ["train", "test"])
def test_empty_sample_list_is_an_error_naming_it(tmp_path: Path, split: str) -> None:
    folder = make_prepared(tmp_path)
    (folder / "samples" / f"{split}.json").write_text("")
    with pytest.raises(DatasetLayoutError, match=f"{split}.json"):
        _module(tmp_path, k_shot=None).setup()


def test_paper_datamodules_read_their_folder(tmp_path: Path) -> None:
    make_prepared(tmp_path, name="busi")
    make_prepared(tmp_path, name="brainmri", masks=False)
    busi = BUSI(root=tmp_path, k_shot=2)
    busi.setup()
    assert busi.name == "busi" and busi.task.value == "segmentation" and len(busi.train_data) == 2
    brain = BrainMRI(root=tmp_path, k_shot=2, val_split_mode="none")
    brain.setup()
    assert brain.name == "brainmri" and brain.task.value == "classification"
