"""The prepared dataset layout (SPEC §6, the MediCLIP layout) and its JSON-lines sample lists.

::

    <root>/<name>/images/train/normal/*.jpg
    <root>/<name>/images/test/normal/*.jpg
    <root>/<name>/images/test/abnormal/*.jpg
    <root>/<name>/images/test/ground_true/*          # masks, where the dataset has them
    <root>/<name>/samples/train.json                 # JSON lines, one sample per line
    <root>/<name>/samples/test.json

A sample line is ``{"filename": "test/abnormal/x.jpg", "label": 1, "clsname": "busi"}`` (paths relative to
``images/``); abnormal rows may carry ``"mask"``: one path or a list of paths, merged when read. Other keys are
kept but ignored. No heavy imports here: the preparation command uses this module.

Example:
    >>> records = read_samples(samples_file("datasets", "brainmri", "test"))  # doctest: +SKIP
    >>> records[0].filename, records[0].label
    ('test/abnormal/Y1.jpg', 1)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "IMAGES_DIR",
    "SAMPLES_DIR",
    "SampleRecord",
    "SamplesFormatError",
    "dataset_dir",
    "read_samples",
    "samples_file",
    "write_samples",
]

IMAGES_DIR = "images"
SAMPLES_DIR = "samples"
SPLITS = ("train", "test")
LABEL_NAMES = {0: "normal", 1: "abnormal"}


class SamplesFormatError(ValueError):
    """A sample list is malformed; the message names the file and line."""


@dataclass(frozen=True)
class SampleRecord:
    """One line of a sample list.

    Attributes:
        filename: Image path relative to ``<root>/<name>/images``.
        label: 0 normal, 1 abnormal.
        clsname: Dataset / class name as written by the preparer.
        masks: Mask paths relative to ``images/`` (empty for normal images and classification datasets).
        extra: Any other keys of the line, written back unchanged.
    """

    filename: str
    label: int
    clsname: str = ""
    masks: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> str:
        """One JSON line; keys in a fixed order so the same records always give the same bytes."""
        row: dict[str, Any] = {
            "filename": self.filename,
            "label": self.label,
            "label_name": LABEL_NAMES.get(self.label, str(self.label)),
            "clsname": self.clsname,
        }
        if self.masks:
            row["mask"] = self.masks[0] if len(self.masks) == 1 else list(self.masks)
        for key in sorted(self.extra):
            row.setdefault(key, self.extra[key])
        return json.dumps(row, ensure_ascii=False)


def dataset_dir(root: str | Path, name: str) -> Path:
    """``<root>/<name>``: the folder holding ``images/`` and ``samples/``."""
    return Path(root).expanduser() / name


def samples_file(root: str | Path, name: str, split: str) -> Path:
    """``<root>/<name>/samples/<split>.json``."""
    return dataset_dir(root, name) / SAMPLES_DIR / f"{split}.json"


def _parse_line(row: Any, path: Path, number: int) -> SampleRecord:
    where = f"{path}, line {number}"
    if not isinstance(row, dict):
        msg = f"{where}: expected a JSON object, got {type(row).__name__}"
        raise SamplesFormatError(msg)
    filename = row.get("filename")
    if not isinstance(filename, str) or not filename:
        msg = f"{where}: missing or empty 'filename'"
        raise SamplesFormatError(msg)
    label = row.get("label")
    if isinstance(label, bool) or label not in (0, 1):
        msg = f"{where}: 'label' must be 0 (normal) or 1 (abnormal), got {label!r}"
        raise SamplesFormatError(msg)
    raw_mask = row.get("mask")
    if raw_mask in (None, "", []):
        masks: tuple[str, ...] = ()
    elif isinstance(raw_mask, str):
        masks = (raw_mask,)
    elif isinstance(raw_mask, list) and all(isinstance(item, str) and item for item in raw_mask):
        masks = tuple(raw_mask)
    else:
        msg = f"{where}: 'mask' must be a path or a list of paths, got {raw_mask!r}"
        raise SamplesFormatError(msg)
    extra = {
        key: value for key, value in row.items() if key not in {"filename", "label", "label_name", "clsname", "mask"}
    }
    return SampleRecord(
        filename=filename, label=int(label), clsname=str(row.get("clsname", "")), masks=masks, extra=extra
    )


def read_samples(path: str | Path) -> list[SampleRecord]:
    """Read a JSON-lines sample list (a single JSON array is accepted too).

    Raises:
        FileNotFoundError: The file does not exist.
        SamplesFormatError: A line is not valid; the message names the file and line number.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"sample list not found: {path}"
        raise FileNotFoundError(msg)
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as error:
            msg = f"{path}: not valid JSON: {error}"
            raise SamplesFormatError(msg) from error
        return [_parse_line(row, path, number) for number, row in enumerate(rows, start=1)]
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            msg = f"{path}, line {number}: not valid JSON: {error}"
            raise SamplesFormatError(msg) from error
        records.append(_parse_line(row, path, number))
    return records


def write_samples(path: str | Path, records: Iterable[SampleRecord]) -> None:
    """Write a JSON-lines sample list atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(record.to_json() + "\n" for record in records), encoding="utf-8")
    os.replace(tmp, path)
