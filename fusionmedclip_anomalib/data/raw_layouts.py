"""Recognise the raw upstream layouts of the paper's datasets and list their labelled images.

- **BrainMRI** (Kaggle "Brain MRI Images for Brain Tumor Detection"): class folders ``yes/`` (tumour, abnormal)
  and ``no/`` (normal), anywhere in the tree (the Kaggle archive holds them twice: at the top and under
  ``brain_tumor_dataset/``; identical files are dropped later by content).
- **BUSI** (Al-Dhabyani et al. 2020): ``benign/``, ``malignant/`` (abnormal) and ``normal/`` folders with images
  ``benign (n).png`` and masks ``benign (n)_mask.png``, sometimes also ``_mask_1.png``, ``_mask_2.png`` (merged).
- **CheXpert** (Irvin et al. 2019): ``train.csv`` / ``valid.csv`` with columns ``Path``, ``Frontal/Lateral``,
  ``No Finding`` and 13 observation columns (1 positive, 0 negative, -1 uncertain, blank unmentioned). Normal =
  frontal view with ``No Finding`` = 1; abnormal = frontal view with ``No Finding`` != 1 and at least one
  pathology observation = 1 (``Support Devices`` is not a pathology); other rows are skipped with a reason.

Scanners return :class:`Candidate` lists and record what they skip; nothing is decoded here.

Example:
    >>> with SourceTree("Dataset_BUSI_with_GT") as tree:  # doctest: +SKIP
    ...     candidates = scan_busi(tree, skipped := [])
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from .source_tree import SourceTree

__all__ = ["CHEXPERT_PATHOLOGIES", "SCANNERS", "Candidate", "scan_brainmri", "scan_busi", "scan_chexpert"]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm", ".dcm", ".dicom"}
)
CHEXPERT_PATHOLOGIES = (
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
)
_MASK_STEM = re.compile(r"^(?P<base>.+?)_mask(?:_\d+)?$", re.IGNORECASE)


class RawLayoutError(ValueError):
    """The source does not look like the named dataset, or a file breaks its layout (the message names it)."""


@dataclass(frozen=True)
class Candidate:
    """A labelled raw image.

    Attributes:
        source: Path of the image inside the source tree.
        label: 0 normal, 1 abnormal.
        group: Raw class it was found in (``yes``, ``benign``, ``No Finding``, ...), for the report.
        masks: Mask files for the image inside the source tree (merged when written).
        subject: Images of one subject never end up on both sides of the train/test split.
        out_stem: Stem to use for the prepared file name (sanitised later).
    """

    source: str
    label: int
    group: str
    masks: tuple[str, ...] = ()
    subject: str = ""
    out_stem: str = ""


def _class_of(path: str, classes: dict[str, int]) -> str | None:
    """The innermost folder of ``path`` that is a class name (case-insensitive), or None."""
    for part in reversed(PurePosixPath(path).parts[:-1]):
        if part.lower() in classes:
            return part.lower()
    return None


def _is_image_name(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES


def scan_brainmri(tree: SourceTree, skipped: list[tuple[str, str]], lenient: bool = False) -> list[Candidate]:
    """Images under ``yes/`` (abnormal) and ``no/`` (normal)."""
    classes = {"yes": 1, "no": 0}
    candidates = []
    for path in tree.files():
        group = _class_of(path, classes)
        if group is None:
            skipped.append((path, "not inside a yes/ or no/ folder"))
            continue
        if not _is_image_name(path):
            skipped.append((path, "not an image file name"))
            continue
        candidates.append(Candidate(path, classes[group], group, subject=path, out_stem=PurePosixPath(path).stem))
    if not candidates:
        msg = f"{tree.location} does not look like the Kaggle brain MRI download: no images under yes/ or no/"
        raise RawLayoutError(msg)
    return candidates


def scan_busi(tree: SourceTree, skipped: list[tuple[str, str]], lenient: bool = False) -> list[Candidate]:
    """Images under ``benign/``, ``malignant/`` (abnormal) and ``normal/``, with their ``_mask*`` files."""
    classes = {"benign": 1, "malignant": 1, "normal": 0}
    images: dict[tuple[str, str], str] = {}  # (folder, stem) -> path
    masks: dict[tuple[str, str], list[str]] = {}
    for path in tree.files():
        group = _class_of(path, classes)
        if group is None:
            skipped.append((path, "not inside a benign/, malignant/ or normal/ folder"))
            continue
        if not _is_image_name(path):
            skipped.append((path, "not an image file name"))
            continue
        pure = PurePosixPath(path)
        match = _MASK_STEM.match(pure.stem)
        if match:
            masks.setdefault((str(pure.parent), match["base"]), []).append(path)
        else:
            images[(str(pure.parent), pure.stem)] = path
    for key, mask_paths in sorted(masks.items()):
        if key not in images:
            for mask in sorted(mask_paths):
                message = f"mask without an image: {tree.display(mask)} (no {key[1]}.* beside it)"
                if not lenient:
                    raise RawLayoutError(message)
                skipped.append((mask, "mask without an image"))
    candidates = []
    for (folder, stem), path in sorted(images.items(), key=lambda item: item[1]):
        group = _class_of(path, classes)
        assert group is not None
        label = classes[group]
        image_masks = tuple(sorted(masks.get((folder, stem), []), key=_mask_order))
        if label == 1 and not image_masks:
            message = f"abnormal BUSI image without a mask: {tree.display(path)}"
            if not lenient:
                raise RawLayoutError(message)
            skipped.append((path, "abnormal image without a mask"))
            continue
        # Normal BUSI images come with empty masks; the prepared layout gives normal rows no mask.
        candidates.append(Candidate(path, label, group, image_masks if label else (), subject=path, out_stem=stem))
    if not candidates:
        msg = f"{tree.location} does not look like the BUSI download: no images under benign/, malignant/, normal/"
        raise RawLayoutError(msg)
    return candidates


def _mask_order(path: str) -> tuple[int, str]:
    """``x_mask`` before ``x_mask_1`` before ``x_mask_2`` (and ``_mask_10`` after ``_mask_9``)."""
    number = re.search(r"_mask(?:_(\d+))?$", PurePosixPath(path).stem, re.IGNORECASE)
    return (int(number.group(1)) if number and number.group(1) else 0, path)


def _chexpert_value(row: dict[str, str], column: str) -> float | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _resolve_chexpert_path(tree: SourceTree, csv_path: str, listed: str) -> str | None:
    """CSV paths start with the release folder (``CheXpert-v1.0-small/train/...``); the source may be above it,
    be it, or hold the CSV elsewhere. Try the spellings in a fixed order."""
    listed = listed.strip().lstrip("/")
    parts = PurePosixPath(listed).parts
    csv_parent = PurePosixPath(csv_path).parent
    options = [listed, *(str(PurePosixPath(*parts[i:])) for i in range(1, len(parts)))]
    options += [str(csv_parent / option) for option in options]
    options += [str(csv_parent.parent / option) for option in options[: len(parts)]]
    for option in options:
        if tree.exists(option):
            return option
    return None


def scan_chexpert(tree: SourceTree, skipped: list[tuple[str, str]], lenient: bool = False) -> list[Candidate]:
    """Frontal views from every CheXpert label CSV of the tree (``train.csv``, ``valid.csv``)."""
    csv_files = [path for path in tree.files() if path.lower().endswith(".csv")]
    candidates: dict[str, Candidate] = {}
    used_csv = 0
    for csv_path in csv_files:
        text = tree.read_bytes(csv_path).decode("utf-8-sig", errors="replace")
        reader = csv.DictReader(io.StringIO(text))
        columns = set(reader.fieldnames or [])
        if not {"Path", "No Finding", "Frontal/Lateral"} <= columns:
            skipped.append((csv_path, "CSV without the CheXpert columns Path, Frontal/Lateral, No Finding"))
            continue
        used_csv += 1
        for line, row in enumerate(reader, start=2):
            listed = (row.get("Path") or "").strip()
            where = f"{csv_path}:{line} {listed}"
            if (row.get("Frontal/Lateral") or "").strip().lower() != "frontal":
                skipped.append((where, "lateral view"))
                continue
            no_finding = _chexpert_value(row, "No Finding")
            positives = [name for name in CHEXPERT_PATHOLOGIES if _chexpert_value(row, name) == 1.0]
            if no_finding == 1.0:
                label, group = 0, "No Finding"
            elif positives:
                label, group = 1, "pathology"
            else:
                skipped.append((where, "neither No Finding nor a positive pathology (uncertain or unmentioned)"))
                continue
            resolved = _resolve_chexpert_path(tree, csv_path, listed)
            if resolved is None:
                skipped.append((where, "image listed in the CSV is not in the source"))
                continue
            if resolved in candidates:
                skipped.append((where, "listed twice"))
                continue
            parts = PurePosixPath(resolved).parts
            subject = next((part for part in parts if part.lower().startswith("patient")), resolved)
            tail = [part for part in parts if part.lower().startswith(("patient", "study"))]
            stem = "_".join([*tail, PurePosixPath(resolved).stem]) if tail else PurePosixPath(resolved).stem
            candidates[resolved] = Candidate(resolved, label, group, subject=subject, out_stem=stem)
    if not used_csv:
        msg = f"{tree.location} does not look like CheXpert: no CSV with columns Path, Frontal/Lateral, No Finding"
        raise RawLayoutError(msg)
    return [candidates[key] for key in sorted(candidates)]


SCANNERS: dict[str, Callable[[SourceTree, list[tuple[str, str]], bool], list[Candidate]]] = {
    "brainmri": scan_brainmri,
    "busi": scan_busi,
    "chexpert": scan_chexpert,
}
