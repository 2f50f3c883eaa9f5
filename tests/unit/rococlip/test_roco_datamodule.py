"""ROCO datamodule: release layout, own pairs files, counted skips, clear errors, tokens and transforms."""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fusionmedclip_anomalib.data.roco import ROCO, ROCODataError


def _module(root: Path, **kwargs) -> ROCO:
    return ROCO(root, backbone="fmc-tiny", num_workers=0, **kwargs)


def test_reads_the_release_layout_with_ids_as_file_names(roco_synthetic, roco_root: Path):
    datamodule = _module(roco_root)
    datamodule.setup("fit")
    train = datamodule.pairs("train")
    assert len(train) == 32 and len(datamodule.pairs("validation")) == 32
    assert train[0].pair_id == "ROCO_00000" and train[0].image.name == "ROCO_00000.png"
    # The caption is stripped of the space that follows the tab in captions.txt.
    assert train[0].caption == roco_synthetic.caption_of("ct", "small", "bright", "round", "upper")
    report = datamodule.reports["train"]
    assert (report.listed, report.used, report.missing_images, report.empty_captions) == (32, 32, [], [])


def test_reads_images_named_by_fetch_script_through_dlinks(roco_synthetic, tmp_path: Path):
    roco_synthetic.write_roco_split(tmp_path, "train", image_names="fetch")
    pairs = _module(tmp_path).pairs("train")
    assert len(pairs) == 32
    assert pairs[3].image.name == "PMC1000003_fig-3.jpg"


def test_root_may_be_the_data_folder_and_subset_is_selectable(roco_synthetic, tmp_path: Path):
    roco_synthetic.write_roco_split(tmp_path, "train", subset="non-radiology")
    assert len(_module(tmp_path / "data", subset="non-radiology").pairs("train")) == 32
    with pytest.raises(FileNotFoundError, match="radiology"):
        _module(tmp_path).pairs("train")


def test_missing_captions_file_is_an_error_naming_the_path(roco_synthetic, tmp_path: Path):
    roco_synthetic.write_roco_split(tmp_path, "train")
    captions = tmp_path / "data" / "train" / "radiology" / "captions.txt"
    captions.unlink()
    with pytest.raises(FileNotFoundError) as error:
        _module(tmp_path).setup("fit")
    assert str(captions) in str(error.value)


def test_missing_images_and_empty_captions_are_counted_and_logged(roco_synthetic, tmp_path: Path, caplog):
    rows = roco_synthetic.write_roco_split(tmp_path, "train")
    folder = tmp_path / "data" / "train" / "radiology"
    for pair_id, _ in rows[:3]:
        (folder / "images" / f"{pair_id}.png").unlink()
    lines = (folder / "captions.txt").read_text().splitlines()
    lines[5] = f"{rows[5][0]}\t   "
    lines[6] = rows[6][0]  # no tab, no caption
    (folder / "captions.txt").write_text("\n".join(lines) + "\n")
    datamodule = _module(tmp_path)
    with caplog.at_level(logging.WARNING):
        pairs = datamodule.pairs("train")
    report = datamodule.reports["train"]
    assert len(pairs) == 27 == report.used
    assert report.missing_images == [pid for pid, _ in rows[:3]]
    assert report.empty_captions == [rows[5][0], rows[6][0]]
    assert "27 of 32 pairs" in caplog.text and "3 with missing image" in caplog.text
    assert "2 with empty caption" in caplog.text


def test_on_invalid_error_raises_instead_of_skipping(roco_synthetic, tmp_path: Path):
    rows = roco_synthetic.write_roco_split(tmp_path, "train")
    (tmp_path / "data" / "train" / "radiology" / "images" / f"{rows[0][0]}.png").unlink()
    with pytest.raises(ROCODataError, match=f"missing image.*{rows[0][0]}"):
        _module(tmp_path, on_invalid="error").pairs("train")


def test_a_split_without_any_usable_pair_is_an_error(roco_synthetic, tmp_path: Path):
    roco_synthetic.write_roco_split(tmp_path, "train")
    shutil.rmtree(tmp_path / "data" / "train" / "radiology" / "images")
    with pytest.raises(ROCODataError, match="no usable"):
        _module(tmp_path).pairs("train")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_own_pairs_files(tmp_path: Path, suffix: str):
    (tmp_path / "img").mkdir()
    records = []
    for number in range(4):
        Image.new("L", (20, 30), color=number * 40).save(tmp_path / "img" / f"{number}.png")
        records.append({"image": f"img/{number}.png", "caption": f"x-ray number {number}"})
    records.append({"image": "img/absent.png", "caption": "lost"})
    records.append({"image": "img/0.png", "caption": ""})
    if suffix == ".csv":
        lines = ["image,caption"] + [f"{r['image']},{r['caption']}" for r in records]
        (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    else:
        (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    datamodule = _module(tmp_path, val_fraction=0.25)
    datamodule.setup("fit")
    report = datamodule.reports["train"]
    assert report.missing_images == [f"train{suffix}:5"] and report.empty_captions == [f"train{suffix}:6"]
    # No validation split: a seeded quarter of the 4 usable pairs is held out.
    assert len(datamodule.pairs("train")) == 3 and len(datamodule.pairs("validation")) == 1


def test_pairs_file_without_a_caption_column_is_an_error(tmp_path: Path):
    (tmp_path / "train.csv").write_text("image,label\na.png,1\n")
    with pytest.raises(ROCODataError, match="caption"):
        _module(tmp_path).pairs("train")


def test_no_validation_and_no_hold_out_is_an_error(roco_synthetic, tmp_path: Path):
    roco_synthetic.write_roco_split(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="validation"):
        _module(tmp_path, val_fraction=0.0).setup("fit")


def test_samples_carry_77_tokens_normalised_images_and_caption_ids(roco_synthetic, roco_root: Path):
    datamodule = _module(roco_root, batch_size=4, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    datamodule.setup("fit")
    batch = next(iter(datamodule.val_dataloader()))
    assert batch["image"].shape == (4, 3, 224, 224) and batch["image"].dtype == torch.float32
    assert batch["text"].shape == (4, 77) and batch["text"].dtype == torch.long
    assert batch["index"].tolist() == [0, 1, 2, 3]
    # Normalised with the given stats: grey pixels in [0, 1] map into [-2, 2].
    assert batch["image"].min() >= -2.0 - 1e-5 and batch["image"].max() <= 2.0 + 1e-5
    tokens = datamodule.tokenizer([roco_synthetic.caption_of("ct", "small", "bright", "round", "upper")])[0]
    assert torch.equal(batch["text"][0], tokens)
    assert len(set(datamodule.dataset("train").caption_ids)) == 32
    train = next(iter(datamodule.train_dataloader()))
    assert train["image"].shape == (4, 3, 224, 224)


def test_duplicate_captions_share_a_caption_id(roco_synthetic, tmp_path: Path):
    roco_synthetic.write_roco_split(tmp_path, "train", repeats=2)
    datamodule = _module(tmp_path)
    ids = datamodule.dataset("train").caption_ids
    assert len(ids) == 64 and ids[:32] == ids[32:]


def test_transforms_follow_spec(roco_root: Path):
    datamodule = _module(roco_root)
    train_names = [type(step).__name__ for step in datamodule.train_transform().transforms]
    assert train_names[1:6] == [
        "RandomRotation",
        "RandomResizedCrop",
        "RandomHorizontalFlip",
        "ColorJitter",
        "RandomGrayscale",
    ]
    eval_names = [type(step).__name__ for step in datamodule.eval_transform().transforms]
    assert eval_names[1:3] == ["Resize", "CenterCrop"] and eval_names[-1] == "Normalize"
    wide = torch.full((3, 100, 300), 0.5)
    assert datamodule.eval_transform()(wide).shape == (3, 224, 224)


def test_awkward_image_files_decode_to_normalised_rgb_samples(tmp_path: Path):
    sixteen = Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16))
    sixteen.save(tmp_path / "a.png")
    Image.new("P", (10, 10)).save(tmp_path / "b.png")
    Image.new("RGBA", (10, 10), (10, 20, 30, 0)).save(tmp_path / "c.jpg", format="PNG")  # PNG bytes behind .jpg
    lines = ["image,caption", "a.png,sixteen bit scan", "b.png,palette scan", "c.jpg,transparent scan"]
    (tmp_path / "test.csv").write_text("\n".join(lines) + "\n")
    dataset = ROCO(tmp_path, backbone="fmc-tiny").dataset("test")
    for index in range(3):
        image = dataset[index]["image"]
        assert image.shape == (3, 224, 224) and torch.isfinite(image).all()


def test_malformed_json_line_is_an_error_naming_the_line(tmp_path: Path):
    (tmp_path / "train.jsonl").write_text('{"image": "a.png", "caption": "x"}\n{"image": \n')
    with pytest.raises(ROCODataError, match="line 2 of .*train.jsonl"):
        ROCO(tmp_path, backbone="fmc-tiny").pairs("train")
