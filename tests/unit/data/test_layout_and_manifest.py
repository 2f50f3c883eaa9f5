"""Sample lists of the prepared layout and k-shot support-set manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusionmedclip_anomalib.data.layout import SampleRecord, SamplesFormatError, read_samples, write_samples
from fusionmedclip_anomalib.data.manifest import (
    SupportSetError,
    build_manifest,
    load_manifest,
    save_manifest,
    select_support,
    verify_manifest,
)


def test_samples_round_trip_with_single_and_multiple_masks(tmp_path: Path) -> None:
    records = [
        SampleRecord("train/normal/a.jpg", 0, "busi"),
        SampleRecord("test/abnormal/b.jpg", 1, "busi", ("test/ground_true/b_mask.jpg",)),
        SampleRecord(
            "test/abnormal/c.jpg",
            1,
            "busi",
            ("test/ground_true/c_mask.png", "test/ground_true/c_1.png"),
            {"source": "benign/c.png"},
        ),
    ]
    path = tmp_path / "samples" / "test.json"
    write_samples(path, records)
    lines = path.read_text().splitlines()
    assert json.loads(lines[1])["mask"] == "test/ground_true/b_mask.jpg"  # MediCLIP's single-mask spelling
    assert json.loads(lines[2])["mask"] == ["test/ground_true/c_mask.png", "test/ground_true/c_1.png"]
    again = read_samples(path)
    assert again == records and again[2].extra == {"source": "benign/c.png"}
    first = path.read_bytes()
    write_samples(path, again)
    assert path.read_bytes() == first


def test_json_array_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "train.json"
    path.write_text(json.dumps([{"filename": "train/normal/x.png", "label": 0}]))
    assert read_samples(path)[0].filename == "train/normal/x.png"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"filename": "x.png", "label": 2}', "'label' must be 0"),
        ('{"label": 0}', "'filename'"),
        ("{not json", "not valid JSON"),
        ('{"filename": "x.png", "label": 1, "mask": 5}', "'mask'"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "test.json"
    path.write_text('{"filename": "ok.png", "label": 0}\n\n' + line + "\n")
    with pytest.raises(SamplesFormatError, match=rf"test.json, line 3.*{problem}"):
        read_samples(path)


POOL = [f"images/train/normal/{index:02d}.png" for index in range(20)]


def test_selection_is_seeded_nested_and_order_independent() -> None:
    four = select_support(POOL, 4, seed=0)
    assert four == select_support(list(reversed(POOL)), 4, seed=0)
    assert select_support(POOL, 8, seed=0)[:4] == four
    assert select_support(POOL, 4, seed=1) != four
    assert len(set(four)) == 4 and set(four) <= set(POOL)
    assert select_support(POOL, None, seed=3) == sorted(POOL)


def test_k_larger_than_pool_names_both_numbers() -> None:
    with pytest.raises(SupportSetError, match=r"k_shot=21.*20 normal images"):
        select_support(POOL, 21, seed=0)
    with pytest.raises(ValueError, match="positive"):
        select_support(POOL, 0, seed=0)


def _dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "toy"
    for name in POOL:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode())
    return folder


def test_manifest_round_trip_and_verification(tmp_path: Path) -> None:
    folder = _dataset(tmp_path)
    chosen = select_support(POOL, 4, seed=2)
    manifest = build_manifest("toy", folder, chosen, 4, 2, len(POOL))
    assert manifest["files"] == chosen and manifest["k_shot"] == 4 and manifest["seed"] == 2
    json.dumps(manifest)
    path = save_manifest(manifest, tmp_path / "runs" / "support_set.json")
    loaded = load_manifest(path)
    assert loaded == manifest
    assert verify_manifest(loaded, folder, POOL) == []

    (folder / chosen[1]).write_bytes(b"changed")
    with pytest.raises(SupportSetError, match=chosen[1]):
        verify_manifest(loaded, folder, POOL)
    assert len(verify_manifest(loaded, folder, POOL, check_hashes=False)) == 1

    (folder / chosen[2]).unlink()
    with pytest.raises(SupportSetError, match=f"missing.*{chosen[2]}"):
        verify_manifest(loaded, folder, POOL, check_hashes=False)


def test_bad_manifests_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_manifest(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"files": []}))
    with pytest.raises(SupportSetError, match="bad.json"):
        load_manifest(bad)
    bad.write_text(json.dumps({"files": ["a", "a"]}))
    with pytest.raises(SupportSetError, match="more than once"):
        load_manifest(bad)
