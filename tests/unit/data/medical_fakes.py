"""Generated files that mimic the raw and prepared layouts of the medical datasets, nasty cases included.

Used by ``tests/unit/data`` and ``tests/integration/data``. Every image is tiny and made from a seed, so the
fixtures are fast and reproducible.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image


# ---------------------------------------------------------------------------------------------------- pixels
def grey(seed: int, height: int = 24, width: int = 32) -> np.ndarray:
    """A structured uint8 greyscale image (a bright disc on a gradient), different per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < (0.25 * min(height, width)) ** 2
    image = 40 + 100 * xx / width + 90 * disc + rng.integers(0, 20, (height, width))
    return np.clip(image, 0, 255).astype(np.uint8)


def save(path: Path, array: np.ndarray, fmt: str | None = None, **kwargs) -> Path:
    """Save an array with Pillow (format from the suffix unless ``fmt`` says otherwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt, **kwargs)
    return path


def png_bytes_named_jpg(path: Path, seed: int) -> Path:
    """A ``.jpg`` file that holds PNG bytes."""
    return save(path, grey(seed), fmt="PNG")


def rgba_png(path: Path, seed: int, alpha: int = 255) -> Path:
    """An RGBA PNG (alpha constant)."""
    base = grey(seed)
    rgba = np.dstack([base, base, base, np.full_like(base, alpha)])
    return save(path, rgba, fmt="PNG")


def palette_png(path: Path, seed: int) -> Path:
    """A palette (mode P) PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grey(seed)).convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=32).save(path, "PNG")
    return path


def sixteen_bit_png(path: Path, seed: int, full_scale: int = 4095) -> Path:
    """A 16-bit greyscale PNG whose values go up to ``full_scale`` (12-bit data by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    values = (grey(seed).astype(np.float64) / 255.0 * full_scale).astype(np.uint16)
    Image.fromarray(values).save(path, format="PNG")
    return path


def exif_rotated_jpeg(path: Path, seed: int) -> Path:
    """A 24x32 JPEG stored with EXIF orientation 6 (display rotated 90 degrees: 32x24)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(grey(seed)).save(path, format="JPEG", exif=exif, quality=95)
    return path


def corrupt_file(path: Path) -> Path:
    """A file with an image name that holds no image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an image at all")
    return path


def truncated_png(path: Path, seed: int) -> Path:
    """A PNG cut in half: its header parses, its pixels do not."""
    buffer = io.BytesIO()
    Image.fromarray(grey(seed, 64, 64)).save(buffer, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def mask_array(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """0/255 uint8 mask with a filled rectangle ``(top, left, bottom, right)``."""
    mask = np.zeros((height, width), dtype=np.uint8)
    top, left, bottom, right = box
    mask[top:bottom, left:right] = 255
    return mask


# ---------------------------------------------------------------------------------------------------- raw layouts
def make_brain_raw(
    root: Path,
    n_yes: int = 12,
    n_no: int = 10,
    nasty: bool = True,
    duplicate_tree: bool = True,
    size: tuple[int, int] = (24, 32),
) -> Path:
    """Kaggle brain layout: ``brain_tumor_dataset/{yes,no}``, plus (like the archive) a duplicate top-level copy.

    With ``nasty``: PNG bytes in a .jpg, RGBA, palette, 16-bit, EXIF-rotated files among the images (counted in
    ``n_yes`` / ``n_no``), a corrupt ``no/broken.jpg`` (extra), an empty folder, a README and macOS junk.
    """
    top = root / "brain_tumor_dataset"
    height, width = size
    for index in range(n_yes):
        save(top / "yes" / f"Y{index + 1}.jpg", grey(1000 + index, height, width), fmt="JPEG", quality=95)
    for index in range(n_no):
        save(top / "no" / f"{index + 1} no.jpeg", grey(2000 + index, height, width), fmt="JPEG", quality=95)
    if nasty:
        png_bytes_named_jpg(top / "yes" / "Y1.jpg", 1000)
        rgba_png(top / "yes" / "Y2.png", 1001)
        (top / "yes" / "Y2.jpg").unlink()
        palette_png(top / "no" / "1 no.jpeg", 2000)
        sixteen_bit_png(top / "no" / "2 no.png", 2001)
        (top / "no" / "2 no.jpeg").unlink()
        exif_rotated_jpeg(top / "no" / "3 no.jpeg", 2002)
        (top / "empty_folder").mkdir(parents=True, exist_ok=True)
        (top / "README.txt").write_text("brain tumour images\n")
        (top / ".DS_Store").write_bytes(b"\x00junk")
        (root / "__MACOSX" / "brain_tumor_dataset").mkdir(parents=True, exist_ok=True)
        (root / "__MACOSX" / "brain_tumor_dataset" / "._Y1.jpg").write_bytes(b"junk")
    if duplicate_tree:
        for path in sorted(top.rglob("*")):
            if path.is_file() and path.parent.name in {"yes", "no"}:
                twin = root / path.relative_to(top)
                twin.parent.mkdir(parents=True, exist_ok=True)
                twin.write_bytes(path.read_bytes())
    return root


def add_corrupt_brain_file(root: Path) -> Path:
    """Add ``brain_tumor_dataset/no/broken.jpg`` holding no image."""
    return corrupt_file(root / "brain_tumor_dataset" / "no" / "broken.jpg")


def make_busi_raw(root: Path, n_benign: int = 6, n_malignant: int = 4, n_normal: int = 8, nasty: bool = True) -> Path:
    """BUSI layout ``Dataset_BUSI_with_GT/{benign,malignant,normal}`` with ``x (n).png`` + ``x (n)_mask.png``.

    With ``nasty``: ``benign (1)`` has a second mask ``_mask_1`` (merged), ``benign (2)``'s mask is twice the
    image size (resized with nearest neighbour), ``malignant (1)`` is RGBA, ``normal (1)`` is 16-bit and
    ``benign (3)``'s mask is a lossy JPEG named .png.
    """
    top = root / "Dataset_BUSI_with_GT"
    height, width = 24, 32
    for group, count, base_seed in (
        ("benign", n_benign, 3000),
        ("malignant", n_malignant, 4000),
        ("normal", n_normal, 5000),
    ):
        for index in range(1, count + 1):
            stem = f"{group} ({index})"
            save(top / group / f"{stem}.png", grey(base_seed + index, height, width), fmt="PNG")
            box = (2 + index % 5, 3 + index % 7, 12 + index % 5, 15 + index % 7) if group != "normal" else (0, 0, 0, 0)
            save(top / group / f"{stem}_mask.png", mask_array(height, width, box), fmt="PNG")
    if nasty:
        save(top / "benign" / "benign (1)_mask_1.png", mask_array(height, width, (16, 20, 22, 30)), fmt="PNG")
        save(top / "benign" / "benign (2)_mask.png", mask_array(2 * height, 2 * width, (8, 8, 24, 24)), fmt="PNG")
        save(top / "benign" / "benign (3)_mask.png", mask_array(height, width, (4, 4, 14, 14)), fmt="JPEG", quality=60)
        rgba_png(top / "malignant" / "malignant (1).png", 4001)
        sixteen_bit_png(top / "normal" / "normal (1).png", 5001, full_scale=65535)
        (top / "normal" / ".DS_Store").write_bytes(b"junk")
    return root


def expected_busi_mask(name: str, height: int = 24, width: int = 32) -> np.ndarray:
    """The merged boolean mask the preparer must write for a nasty BUSI image."""
    index = int(name.split("(")[1].split(")")[0])
    if name == "benign (1)":
        return (mask_array(height, width, (2 + 1, 3 + 1, 12 + 1, 15 + 1)) > 0) | (
            mask_array(height, width, (16, 20, 22, 30)) > 0
        )
    if name == "benign (2)":
        return mask_array(height, width, (4, 4, 12, 12)) > 0
    if name == "benign (3)":
        return mask_array(height, width, (4, 4, 14, 14)) > 0
    return mask_array(height, width, (2 + index % 5, 3 + index % 7, 12 + index % 5, 15 + index % 7)) > 0


CHEXPERT_COLUMNS = [
    "Path",
    "Sex",
    "Age",
    "Frontal/Lateral",
    "AP/PA",
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
]


def make_chexpert_raw(
    root: Path, n_normal_patients: int = 10, n_abnormal_patients: int = 8, extra_rows: bool = True
) -> Path:
    """CheXpert-small layout: ``CheXpert-v1.0-small/{train.csv,valid.csv,train/patientN/study1/view1_frontal.jpg}``.

    Normal patients have two frontal normal studies; abnormal patients one frontal abnormal image (+ a lateral).
    With ``extra_rows``: an uncertain-only row, a support-devices-only row, a row whose image is missing.
    """
    top = root / "CheXpert-v1.0-small"
    rows: list[dict[str, str]] = []

    def add(
        patient: int,
        study: int,
        view: str,
        no_finding: str,
        findings: dict[str, str],
        write: bool = True,
        split: str = "train",
    ) -> None:
        rel = f"CheXpert-v1.0-small/{split}/patient{patient:05d}/study{study}/view1_{view}.jpg"
        if write:
            save(root / rel, grey(patient * 10 + study, 20, 20), fmt="JPEG", quality=90)
        row = dict.fromkeys(CHEXPERT_COLUMNS, "")
        row.update(
            {
                "Path": rel,
                "Sex": "Female",
                "Age": "50",
                "Frontal/Lateral": view.capitalize(),
                "AP/PA": "PA" if view == "frontal" else "",
                "No Finding": no_finding,
            }
        )
        row.update(findings)
        rows.append(row)

    for patient in range(1, n_normal_patients + 1):
        add(patient, 1, "frontal", "1.0", {})
        add(patient, 2, "frontal", "1.0", {"Support Devices": "1.0"})
    for patient in range(10000, 10000 + n_abnormal_patients):
        add(patient, 1, "frontal", "", {"Lung Opacity": "1.0", "Edema": "-1.0"})
        add(patient, 1, "lateral", "", {"Lung Opacity": "1.0"})
    if extra_rows:
        add(900, 1, "frontal", "", {"Edema": "-1.0"})
        add(901, 1, "frontal", "", {"Support Devices": "1.0"})
        add(902, 1, "frontal", "1.0", {}, write=False)
    top.mkdir(parents=True, exist_ok=True)
    with (top / "train.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CHEXPERT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with (top / "valid.csv").open("w", newline="") as handle:  # a valid patient, listed with the same columns
        writer = csv.DictWriter(handle, fieldnames=CHEXPERT_COLUMNS)
        writer.writeheader()
        rows.clear()
        add(64541, 1, "frontal", "1.0", {}, split="valid")
        writer.writerows(rows)
    return root


# ---------------------------------------------------------------------------------------------------- prepared layout
def make_prepared(
    root: Path,
    name: str = "toy",
    n_train: int = 6,
    n_test_normal: int = 3,
    n_test_abnormal: int = 3,
    masks: bool = True,
    nasty: bool = True,
) -> Path:
    """A prepared dataset ``<root>/<name>`` in the SPEC §6 layout.

    With ``nasty``: the first train image is PNG bytes in a .jpg, the second RGBA, the third palette, the fourth
    16-bit; the first abnormal image has two mask files (merged) and the second a mask at twice the image size.
    """
    folder = root / name
    images = folder / "images"
    train_rows, test_rows = [], []
    for index in range(n_train):
        filename = f"train/normal/n{index:02d}.jpg"
        save(images / filename, grey(10 + index), fmt="JPEG", quality=95)
        train_rows.append({"filename": filename, "label": 0, "clsname": name})
    if nasty and n_train >= 4:
        png_bytes_named_jpg(images / "train/normal/n00.jpg", 10)
        rgba_png(images / "train/normal/n01.jpg", 11)
        palette_png(images / "train/normal/n02.jpg", 12)
        sixteen_bit_png(images / "train/normal/n03.jpg", 13)
    for index in range(n_test_normal):
        filename = f"test/normal/t{index:02d}.png"
        save(images / filename, grey(100 + index), fmt="PNG")
        test_rows.append({"filename": filename, "label": 0, "clsname": name})
    for index in range(n_test_abnormal):
        filename = f"test/abnormal/a{index:02d}.png"
        save(images / filename, grey(200 + index), fmt="PNG")
        row: dict = {"filename": filename, "label": 1, "clsname": name}
        if masks:
            mask_name = f"test/ground_true/a{index:02d}_mask.png"
            save(images / mask_name, mask_array(24, 32, (2, 2, 10, 10 + index)), fmt="PNG")
            row["mask"] = mask_name
            if nasty and index == 0:
                extra = "test/ground_true/a00_mask_1.png"
                save(images / extra, mask_array(24, 32, (14, 20, 20, 28)), fmt="PNG")
                row["mask"] = [mask_name, extra]
            if nasty and index == 1:
                save(images / mask_name, mask_array(48, 64, (4, 4, 20, 22 + 2 * index)), fmt="PNG")
        test_rows.append(row)
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    (folder / "samples" / "train.json").write_text("".join(json.dumps(row) + "\n" for row in train_rows))
    (folder / "samples" / "test.json").write_text("".join(json.dumps(row) + "\n" for row in test_rows))
    return folder


def tree_digest(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, keyed by relative POSIX path."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()
    }
