"""Convert a raw download (folder or zip) into the prepared layout with a deterministic split.

Rule of the split (documented in ``datasets/*.md``):

1. The scanner lists labelled images (:mod:`.raw_layouts`). Files with identical bytes are kept once (the first
   by path); the Kaggle brain archive, for one, ships every image twice.
2. Subjects (CheXpert patients; otherwise each image is its own subject) are sorted and shuffled with
   ``numpy.random.default_rng(seed)``. Walking that order, each subject gives its first usable abnormal image to
   the abnormal test set until it is full, then, among the remaining subjects, its first usable normal image to
   the normal test set until that is full; the normal images of all other subjects form the train pool (capped
   at ``max_train``, in the same order). No subject is on both sides.
3. Default sizes reproduce the paper's test counts (SPEC §6) when the source is the paper's:
   BrainMRI all 155 abnormal, ``round(n_normal * 65 / 98)`` = 65 normal (33 train);
   BUSI all 647 abnormal, ``round(n_normal * 101 / 133)`` = 101 normal (32 train);
   CheXpert 250 abnormal and 250 normal (a smaller source: every abnormal subject, half the normal ones),
   the normals of all other patients form the train pool.

Image bytes are copied verbatim (the reader decodes by content); BUSI masks are merged and written as 0/255
PNGs. Everything is written into a scratch folder and swapped in, so the result is identical on every run.

Example:
    >>> report = prepare_dataset("busi", "Dataset_BUSI_with_GT.zip", "datasets")  # doctest: +SKIP
    >>> report.written["test/abnormal"]
    647
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from .image_io import ImageReadError, binarize_mask, decode_bytes, merge_masks
from .layout import IMAGES_DIR, SampleRecord, dataset_dir, samples_file, write_samples
from .raw_layouts import SCANNERS, Candidate, RawLayoutError
from .source_tree import SourceTree

__all__ = ["DATASETS", "PrepareError", "PrepareReport", "prepare_dataset"]


@dataclass(frozen=True)
class SplitDefaults:
    """Test-set sizes: a fraction of the usable normals (or an absolute count) and the abnormal count."""

    test_normal_fraction: float | None
    test_normal_count: int | None
    test_abnormal_count: int | None  # None: every abnormal image


DATASETS: dict[str, SplitDefaults] = {
    "brainmri": SplitDefaults(65 / 98, None, None),
    "busi": SplitDefaults(101 / 133, None, None),
    "chexpert": SplitDefaults(None, 250, 250),
}
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_FORMAT_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp", "GIF": ".gif"}


class PrepareError(ValueError):
    """Preparation cannot go on; the message names the offending file or setting."""


@dataclass
class PrepareReport:
    """What preparation found, skipped and wrote."""

    dataset: str
    source: str
    output: Path
    found: Counter = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    written: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def lines(self, verbose: bool = False, examples: int = 10) -> list[str]:
        """Human-readable summary; skipped files grouped by reason (all of them when ``verbose``)."""
        found = ", ".join(f"{group} {count}" for group, count in sorted(self.found.items()))
        out = [f"prepare {self.dataset}: {self.source}", f"found: {found or 'nothing'}"]
        by_reason: dict[str, list[str]] = {}
        for path, reason in self.skipped:
            by_reason.setdefault(reason, []).append(path)
        out.append(f"skipped: {len(self.skipped)}")
        for reason, paths in sorted(by_reason.items()):
            out.append(f"  {reason}: {len(paths)}")
            shown = paths if verbose else paths[:examples]
            out.extend(f"    {path}" for path in shown)
            if len(shown) < len(paths):
                out.append(f"    ... {len(paths) - len(shown)} more (--verbose lists all)")
        out.append(f"written to {self.output}:")
        for key in ("train/normal", "test/normal", "test/abnormal", "test/ground_true"):
            out.append(f"  {key}: {self.written.get(key, 0)}")
        out.extend(f"note: {note}" for note in self.notes)
        return out


def _safe_stem(stem: str) -> str:
    return _SAFE.sub("_", stem).strip("._") or "image"


def _suffix_for(path: str, data: bytes) -> str:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix:
        return ".jpg" if suffix == ".jpeg" else suffix
    if len(data) >= 132 and data[128:132] == b"DICM":
        return ".dcm"
    try:
        from io import BytesIO

        with Image.open(BytesIO(data)) as image:
            return _FORMAT_SUFFIX.get(image.format or "", ".img")
    except (OSError, ValueError, SyntaxError):  # undecodable files are rejected later with a clear message
        return ".img"


class _Preparer:
    def __init__(self, tree: SourceTree, report: PrepareReport, lenient: bool) -> None:
        self.tree = tree
        self.report = report
        self.lenient = lenient
        self._usable: dict[str, bool] = {}
        self._shape: dict[str, tuple[int, int]] = {}

    def fail_or_skip(self, path: str, reason: str, message: str) -> None:
        if not self.lenient:
            raise PrepareError(message + " (use --lenient to skip such files)")
        self.report.skipped.append((path, reason))

    def usable(self, candidate: Candidate) -> bool:
        """Decode the image and its masks once; remember the verdict."""
        if candidate.source in self._usable:
            return self._usable[candidate.source]
        ok = True
        try:
            data = self.tree.read_bytes(candidate.source)
            array = decode_bytes(data, self.tree.display(candidate.source))
            self._shape[candidate.source] = (int(array.shape[0]), int(array.shape[1]))
        except ImageReadError as error:
            self.fail_or_skip(candidate.source, "cannot be decoded", str(error))
            ok = False
        if ok:
            for mask in candidate.masks:
                try:
                    decode_bytes(self.tree.read_bytes(mask), self.tree.display(mask))
                except ImageReadError as error:
                    self.fail_or_skip(mask, "mask cannot be decoded (its image is skipped too)", str(error))
                    self.report.skipped.append((candidate.source, "its mask cannot be decoded"))
                    ok = False
                    break
        self._usable[candidate.source] = ok
        return ok

    def is_known_unusable(self, candidate: Candidate) -> bool:
        return self._usable.get(candidate.source) is False

    def merged_mask(self, candidate: Candidate) -> np.ndarray:
        masks = [
            binarize_mask(decode_bytes(self.tree.read_bytes(path), self.tree.display(path))) for path in candidate.masks
        ]
        return merge_masks(masks, self._shape[candidate.source])


def _drop_duplicates(tree: SourceTree, candidates: list[Candidate], report: PrepareReport) -> list[Candidate]:
    seen: dict[str, str] = {}
    kept = []
    for candidate in candidates:
        digest = hashlib.sha256(tree.read_bytes(candidate.source)).hexdigest()
        if digest in seen:
            report.skipped.append(
                (f"{candidate.source} (= {seen[digest]})", "duplicate: same bytes as an earlier file")
            )
            continue
        seen[digest] = candidate.source
        kept.append(candidate)
    return kept


def _split(
    candidates: list[Candidate],
    preparer: _Preparer,
    seed: int,
    test_normal: int | None,
    test_abnormal: int | None,
    max_train: int | None,
    defaults: SplitDefaults,
    validate_all: bool,
) -> dict[str, list[Candidate]]:
    by_subject: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        by_subject.setdefault(candidate.subject, []).append(candidate)
    subjects = sorted(by_subject)
    order = [subjects[int(i)] for i in np.random.default_rng(seed).permutation(len(subjects))]

    if validate_all:  # small datasets: decode all first, so the default fractions count usable images only
        for candidate in candidates:
            preparer.usable(candidate)
    n_normal_usable = sum(1 for c in candidates if c.label == 0 and not preparer.is_known_unusable(c))
    n_normal_subjects = sum(1 for s in subjects if any(c.label == 0 for c in by_subject[s]))
    n_abnormal_subjects = sum(1 for s in subjects if any(c.label == 1 for c in by_subject[s]))
    if test_normal is None:
        if defaults.test_normal_fraction is not None:
            test_normal = round(n_normal_usable * defaults.test_normal_fraction)
        else:
            wanted = defaults.test_normal_count or 0
            test_normal = wanted if n_normal_subjects > wanted else n_normal_subjects // 2
            if test_normal < wanted:
                preparer.report.notes.append(
                    f"only {n_normal_subjects} subjects with normal images: {test_normal} normal test images "
                    f"instead of {defaults.test_normal_count}"
                )
    if test_abnormal is None and defaults.test_abnormal_count is not None:
        test_abnormal = min(defaults.test_abnormal_count, n_abnormal_subjects)
        if test_abnormal < defaults.test_abnormal_count:
            preparer.report.notes.append(
                f"only {n_abnormal_subjects} subjects with abnormal images: {test_abnormal} abnormal test images "
                f"instead of {defaults.test_abnormal_count}"
            )

    splits: dict[str, list[Candidate]] = {"test/abnormal": [], "test/normal": [], "train/normal": []}
    test_subjects: set[str] = set()

    def first_usable(subject: str, label: int) -> Candidate | None:
        return next(
            (c for c in sorted(by_subject[subject], key=lambda c: c.source) if c.label == label and preparer.usable(c)),
            None,
        )

    if test_abnormal is None:  # every usable abnormal image (each image is its own subject here)
        for subject in order:
            for candidate in by_subject[subject]:
                if candidate.label == 1 and preparer.usable(candidate):
                    splits["test/abnormal"].append(candidate)
                    test_subjects.add(subject)
    else:
        for subject in order:
            if len(splits["test/abnormal"]) >= test_abnormal:
                break
            chosen = first_usable(subject, 1)
            if chosen is not None:
                splits["test/abnormal"].append(chosen)
                test_subjects.add(subject)
    for subject in order:
        if len(splits["test/normal"]) >= test_normal:
            break
        if subject in test_subjects:
            continue
        chosen = first_usable(subject, 0)
        if chosen is not None:
            splits["test/normal"].append(chosen)
            test_subjects.add(subject)
    for subject in order:
        if subject in test_subjects:
            continue
        for candidate in sorted(by_subject[subject], key=lambda c: c.source):
            if max_train is not None and len(splits["train/normal"]) >= max_train:
                break
            if candidate.label == 0 and preparer.usable(candidate):
                splits["train/normal"].append(candidate)
    if len(splits["test/normal"]) < test_normal:
        msg = f"asked for {test_normal} normal test images but only {len(splits['test/normal'])} usable ones remain"
        raise PrepareError(msg)
    if test_abnormal is not None and len(splits["test/abnormal"]) < test_abnormal:
        msg = f"asked for {test_abnormal} abnormal test images but only {len(splits['test/abnormal'])} are usable"
        raise PrepareError(msg)
    if not splits["train/normal"]:
        msg = "no normal image is left for the train pool; lower --test-normal"
        raise PrepareError(msg)
    return splits


def _write(folder: Path, name: str, splits: dict[str, list[Candidate]], preparer: _Preparer) -> None:
    images = folder / IMAGES_DIR
    records: dict[str, list[SampleRecord]] = {"train": [], "test": []}
    for key in ("train/normal", "test/normal", "test/abnormal"):
        used: set[str] = set()
        for candidate in sorted(splits[key], key=lambda c: c.source):
            data = preparer.tree.read_bytes(candidate.source)
            stem = _safe_stem(candidate.out_stem or PurePosixPath(candidate.source).stem)
            suffix = _suffix_for(candidate.source, data)
            unique, number = stem, 1
            while unique.lower() in used:
                number += 1
                unique = f"{stem}_{number}"
            used.add(unique.lower())
            filename = f"{key}/{unique}{suffix}"
            target = images / filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            masks: tuple[str, ...] = ()
            if candidate.label == 1 and candidate.masks:
                mask_name = f"test/ground_true/{unique}_mask.png"
                mask_path = images / mask_name
                mask_path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(preparer.merged_mask(candidate).astype(np.uint8) * 255).save(mask_path, format="PNG")
                masks = (mask_name,)
                preparer.report.written["test/ground_true"] += 1
            extra = {"source": candidate.source, "group": candidate.group}
            split = key.split("/")[0]
            records[split].append(SampleRecord(filename, candidate.label, name, masks, extra))
            preparer.report.written[key] += 1
    write_samples(folder / "samples" / "train.json", records["train"])
    write_samples(folder / "samples" / "test.json", records["test"])


def prepare_dataset(
    dataset: str,
    source: str | Path,
    output: str | Path,
    seed: int = 0,
    name: str | None = None,
    test_normal: int | None = None,
    test_abnormal: int | None = None,
    max_train: int | None = None,
    lenient: bool = False,
    force: bool = False,
) -> PrepareReport:
    """Convert a raw download into ``<output>/<name>`` (default name: the dataset's).

    Args:
        dataset: ``"brainmri"``, ``"busi"`` or ``"chexpert"``.
        source: Raw download: folder or zip archive.
        output: Root of prepared datasets.
        seed: Seed of the train/test split.
        name: Folder name under ``output``.
        test_normal: Normal test images (default: the paper's rule, see module docstring).
        test_abnormal: Abnormal test images (default: all for BrainMRI / BUSI, 250 for CheXpert).
        max_train: Cap on the train pool.
        lenient: Skip undecodable files, masks without images and abnormal BUSI images without masks (reported)
            instead of stopping with an error naming the file.
        force: Replace an existing non-prepared folder at the target.

    Returns:
        What was found, skipped and written.

    Raises:
        PrepareError, RawLayoutError: naming the offending file or setting.
    """
    if dataset not in DATASETS:
        msg = f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}"
        raise PrepareError(msg)
    for label, value in (("test_normal", test_normal), ("test_abnormal", test_abnormal), ("max_train", max_train)):
        if value is not None and value < (1 if label == "max_train" else 0):
            msg = f"{label} must not be {value}"
            raise PrepareError(msg)
    name = name or dataset
    target = dataset_dir(output, name)
    if target.exists() and not samples_file(output, name, "train").is_file() and any(target.iterdir()) and not force:
        msg = f"{target} exists and is not a prepared dataset; choose another --output or pass --force"
        raise PrepareError(msg)
    report = PrepareReport(dataset=dataset, source=str(source), output=target)
    with SourceTree(source) as tree:
        try:
            candidates = SCANNERS[dataset](tree, report.skipped, lenient)
        except RawLayoutError as error:
            raise PrepareError(str(error)) from error
        validate_all = dataset != "chexpert"
        if validate_all:
            candidates = _drop_duplicates(tree, candidates, report)
        for candidate in candidates:
            report.found[f"{candidate.group} ({'abnormal' if candidate.label else 'normal'})"] += 1
        preparer = _Preparer(tree, report, lenient)
        splits = _split(
            candidates, preparer, seed, test_normal, test_abnormal, max_train, DATASETS[dataset], validate_all
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.parent / f".{name}.prepare-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            _write(scratch, name, splits, preparer)
            if target.exists():
                stale = target.parent / f".{name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                os.replace(target, stale)
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(scratch, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return report
