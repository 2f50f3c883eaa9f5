"""``fusionmedclip prepare``: raw layouts (nasty cases included) -> prepared layout, counts, determinism, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from medical_fakes import (
    add_corrupt_brain_file,
    expected_busi_mask,
    make_brain_raw,
    make_busi_raw,
    make_chexpert_raw,
    mask_array,
    save,
    tree_digest,
)

from fusionmedclip_anomalib.data.image_io import read_image, read_mask
from fusionmedclip_anomalib.data.layout import read_samples
from fusionmedclip_anomalib.data.prepare import PrepareError, prepare_dataset
from fusionmedclip_anomalib.data.prepare_cli import main


def _counts(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for split in ("train", "test"):
        for record in read_samples(folder / "samples" / f"{split}.json"):
            key = record.filename.rsplit("/", 1)[0]
            counts[key] = counts.get(key, 0) + 1
            assert (folder / "images" / record.filename).is_file()
            for mask in record.masks:
                assert (folder / "images" / mask).is_file()
    return counts


def _zip(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(folder.rglob("*")):
            handle.write(path, path.relative_to(folder).as_posix())
    return archive


def test_brainmri_corrupt_file_is_an_error_naming_it(tmp_path: Path) -> None:
    add_corrupt_brain_file(make_brain_raw(tmp_path / "raw"))
    with pytest.raises(PrepareError, match=r"broken.jpg.*--lenient"):
        prepare_dataset("brainmri", tmp_path / "raw", tmp_path / "out")
    assert not (tmp_path / "out" / "brainmri").exists()


def test_brainmri_lenient_layout_counts_and_duplicates(tmp_path: Path) -> None:
    add_corrupt_brain_file(make_brain_raw(tmp_path / "raw", n_yes=12, n_no=10))
    report = prepare_dataset("brainmri", tmp_path / "raw", tmp_path / "out", lenient=True)
    folder = tmp_path / "out" / "brainmri"
    assert _counts(folder) == {"train/normal": 3, "test/normal": 7, "test/abnormal": 12}  # round(10 * 65 / 98) = 7
    reasons = {reason for _, reason in report.skipped}
    assert "cannot be decoded" in reasons and "duplicate: same bytes as an earlier file" in reasons
    assert any(path.endswith("README.txt") for path, _ in report.skipped)
    assert sum(reason.startswith("duplicate") for _, reason in report.skipped) == 22  # the archive's second copy
    text = "\n".join(report.lines())
    assert "test/abnormal: 12" in text and "broken.jpg" in text
    rows = [json.loads(line) for line in (folder / "samples/train.json").read_text().splitlines()]
    assert all(row["label"] == 0 and row["clsname"] == "brainmri" and " " not in row["filename"] for row in rows)
    for record in read_samples(folder / "samples" / "test.json") + read_samples(folder / "samples" / "train.json"):
        image = read_image(folder / "images" / record.filename)
        assert image.shape[2] == 3 and (image == 1.0).mean() < 0.05
    # the EXIF-rotated JPEG was copied verbatim: still rotated on reading
    exif = next(
        r
        for r in read_samples(folder / "samples/test.json") + read_samples(folder / "samples/train.json")
        if r.extra["source"].endswith("3 no.jpeg")
    )
    assert read_image(folder / "images" / exif.filename).shape == (32, 24, 3)


def test_running_twice_gives_identical_output_and_zip_equals_folder(tmp_path: Path) -> None:
    make_brain_raw(tmp_path / "raw", n_yes=6, n_no=8)
    prepare_dataset("brainmri", tmp_path / "raw", tmp_path / "out")
    first = tree_digest(tmp_path / "out" / "brainmri")
    prepare_dataset("brainmri", tmp_path / "raw", tmp_path / "out")
    assert tree_digest(tmp_path / "out" / "brainmri") == first
    prepare_dataset("brainmri", _zip(tmp_path / "raw", tmp_path / "raw.zip"), tmp_path / "zipped")
    zipped = tree_digest(tmp_path / "zipped" / "brainmri")
    assert zipped.keys() == first.keys()
    assert all(zipped[key] == first[key] for key in first if key.startswith("images/"))
    prepare_dataset("brainmri", tmp_path / "raw", tmp_path / "other", seed=1)
    assert tree_digest(tmp_path / "other" / "brainmri") != first


def test_brainmri_paper_counts(tmp_path: Path) -> None:
    make_brain_raw(tmp_path / "raw", n_yes=155, n_no=98, nasty=False, duplicate_tree=True, size=(8, 8))
    prepare_dataset("brainmri", tmp_path / "raw", tmp_path / "out")
    assert _counts(tmp_path / "out" / "brainmri") == {"train/normal": 33, "test/normal": 65, "test/abnormal": 155}


def test_busi_masks_are_merged_resized_and_binarised(tmp_path: Path) -> None:
    make_busi_raw(tmp_path / "raw", n_benign=6, n_malignant=4, n_normal=8)
    prepare_dataset("busi", tmp_path / "raw", tmp_path / "out")
    folder = tmp_path / "out" / "busi"
    assert _counts(folder) == {"train/normal": 2, "test/normal": 6, "test/abnormal": 10}  # round(8 * 101 / 133)
    test = read_samples(folder / "samples" / "test.json")
    assert all(bool(r.masks) == (r.label == 1) for r in test)
    by_source = {Path(r.extra["source"]).stem: r for r in test}
    for name in ("benign (1)", "benign (2)", "benign (3)", "benign (4)", "malignant (2)"):
        record = by_source[name]
        mask = read_mask(folder / "images" / record.masks[0])
        assert mask.shape == (24, 32)
        assert np.array_equal(mask, expected_busi_mask(name)), name
    assert {Path(r.filename).name for r in test if r.label} >= {"benign_1.png", "malignant_1.png"}


def test_busi_mask_without_image_and_image_without_mask(tmp_path: Path) -> None:
    raw = make_busi_raw(tmp_path / "raw", n_benign=3, n_malignant=2, n_normal=6, nasty=False)
    orphan = save(raw / "Dataset_BUSI_with_GT/benign/benign (9)_mask.png", mask_array(24, 32, (0, 0, 4, 4)))
    with pytest.raises(PrepareError, match=r"mask without an image.*benign \(9\)_mask.png"):
        prepare_dataset("busi", raw, tmp_path / "out")
    report = prepare_dataset("busi", raw, tmp_path / "out", lenient=True)
    assert ("Dataset_BUSI_with_GT/benign/benign (9)_mask.png", "mask without an image") in report.skipped
    orphan.unlink()
    (raw / "Dataset_BUSI_with_GT/malignant/malignant (2)_mask.png").unlink()
    with pytest.raises(PrepareError, match=r"without a mask.*malignant \(2\).png"):
        prepare_dataset("busi", raw, tmp_path / "out2")


@pytest.mark.slow
def test_busi_paper_counts(tmp_path: Path) -> None:
    make_busi_raw(tmp_path / "raw", n_benign=437, n_malignant=210, n_normal=133, nasty=False)
    prepare_dataset("busi", tmp_path / "raw", tmp_path / "out")
    assert _counts(tmp_path / "out" / "busi") == {"train/normal": 32, "test/normal": 101, "test/abnormal": 647}


def test_chexpert_selection_and_patient_disjoint_split(tmp_path: Path) -> None:
    raw = make_chexpert_raw(tmp_path / "raw", n_normal_patients=10, n_abnormal_patients=8)
    report = prepare_dataset("chexpert", raw / "CheXpert-v1.0-small", tmp_path / "out", test_normal=4, test_abnormal=5)
    folder = tmp_path / "out" / "chexpert"
    counts = _counts(folder)
    assert counts["test/normal"] == 4 and counts["test/abnormal"] == 5
    train = read_samples(folder / "samples/train.json")
    test = read_samples(folder / "samples/test.json")

    def patients(records: list) -> set[str]:
        return {r.extra["source"].split("/")[-3] for r in records}

    assert not patients(train) & patients(test)
    assert counts["train/normal"] == 2 * (11 - 4) - 1  # 11 normal patients (one in valid.csv, one study each)
    reasons = {reason for _, reason in report.skipped}
    assert {"lateral view", "image listed in the CSV is not in the source"} <= reasons
    assert any(reason.startswith("neither No Finding") for reason in reasons)
    assert all("frontal" in r.filename for r in train + test)


@pytest.mark.slow
def test_chexpert_paper_counts(tmp_path: Path) -> None:
    raw = make_chexpert_raw(tmp_path / "raw", n_normal_patients=270, n_abnormal_patients=255, extra_rows=False)
    report = prepare_dataset("chexpert", raw, tmp_path / "out")
    counts = _counts(tmp_path / "out" / "chexpert")
    assert counts["test/normal"] == 250 and counts["test/abnormal"] == 250 and not report.notes


def test_source_and_target_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrepareError, match="does not look like"):
        prepare_dataset("busi", tmp_path / "empty", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        prepare_dataset("busi", tmp_path / "nowhere", tmp_path / "out")
    make_brain_raw(tmp_path / "raw", n_yes=3, n_no=4, nasty=False)
    occupied = tmp_path / "out" / "brainmri"
    occupied.mkdir(parents=True)
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(PrepareError, match="--force"):
        prepare_dataset("brainmri", tmp_path / "raw", tmp_path / "out")
    prepare_dataset("brainmri", tmp_path / "raw", tmp_path / "out", force=True)
    assert not (occupied / "notes.txt").exists()
    with pytest.raises(PrepareError, match="normal test images"):
        prepare_dataset("brainmri", tmp_path / "raw", tmp_path / "again", test_normal=10)


def test_cli_prints_counts_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_corrupt_brain_file(make_brain_raw(tmp_path / "raw", n_yes=4, n_no=6))
    args = ["brainmri", "--source", str(tmp_path / "raw"), "--output", str(tmp_path / "out")]
    assert main(args) == 1
    assert "broken.jpg" in capsys.readouterr().err
    assert main([*args, "--lenient", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "test/normal: 4" in out and "found: no (normal) 7, yes (abnormal) 4" in out and "cannot be decoded" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "fusionmedclip prepare" in capsys.readouterr().out


def test_cli_module_imports_light() -> None:
    code = (
        "import sys, fusionmedclip_anomalib.data.prepare_cli; "
        "heavy = [m for m in ('torch', 'anomalib', 'numpy', 'lightning') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
