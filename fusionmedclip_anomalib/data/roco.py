"""ROCO image–caption pairs for stage 1 (ROCOCLIP) contrastive fine-tuning.

Two layouts are read, chosen per split:

1. ROCO as released (github.com/razorx89/roco-dataset, images fetched by its ``scripts/fetch.py``)::

       <root>/[data/]<split>/<subset>/captions.txt   # "ROCO_00020<TAB> caption text" per line
       <root>/[data/]<split>/<subset>/dlinks.txt     # "ROCO_00020<TAB>wget ... PMC4083729.tar.gz ...<TAB>f1.jpg"
       <root>/[data/]<split>/<subset>/images/        # PMC4083729_f1.jpg (fetch.py) or ROCO_00020.jpg

   with ``<split>`` in ``train``, ``validation``, ``test`` and ``<subset>`` ``radiology`` (default) or
   ``non-radiology``. An id's image is ``<pmcid>_<name>`` from ``dlinks*.txt`` when that file is there, else
   ``<id>.jpg`` / ``.jpeg`` / ``.png``.
2. Your own pairs: ``<root>/<split>.csv`` (header ``image,caption``) or ``<root>/<split>.jsonl``
   (``{"image": "...", "caption": "..."}`` per line); image paths relative to the file's folder or absolute.

A listed image that is not on disk and an empty caption are skipped, counted and reported (a logged summary and
:attr:`ROCO.reports`), or raise with ``on_invalid="error"``; nothing is dropped silently. A missing captions file is an
error naming the path that was looked for.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode, v2

from fusionmedclip_anomalib.data.image_io import read_image

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_IMAGE_COLUMNS = ("image", "filename", "file", "path", "name")
_CAPTION_COLUMNS = ("caption", "text")
_EXAMPLES_SHOWN = 5


class ROCODataError(ValueError):
    """The image–caption pairs cannot be used: none usable, or invalid ones with ``on_invalid="error"``."""


@dataclass(frozen=True)
class CaptionedImage:
    """One image–caption pair.

    Attributes:
        pair_id: the ROCO id (``ROCO_00020``) or ``<file name>:<record number>`` (1-based) for a pairs file.
        image: path of the image file.
        caption: the caption text, stripped.
    """

    pair_id: str
    image: Path
    caption: str


@dataclass
class SplitReport:
    """What was read for one split and what was skipped.

    Attributes:
        split: ``train``, ``validation`` or ``test``.
        source: the captions or pairs file that was read.
        listed: pairs listed in the source.
        missing_images: ids of pairs whose image file is not on disk.
        empty_captions: ids of pairs with an empty caption (an image both missing and uncaptioned counts here).
    """

    split: str
    source: Path
    listed: int = 0
    missing_images: list[str] = field(default_factory=list)
    empty_captions: list[str] = field(default_factory=list)

    @property
    def used(self) -> int:
        """Pairs kept for training or evaluation."""
        return self.listed - len(self.missing_images) - len(self.empty_captions)

    def summary(self) -> str:
        """One line for the log."""
        text = f"ROCO {self.split}: {self.used} of {self.listed} pairs used from {self.source}"
        for what, ids in (("missing image", self.missing_images), ("empty caption", self.empty_captions)):
            if ids:
                text += f"; skipped {len(ids)} with {what} (e.g. {', '.join(ids[:_EXAMPLES_SHOWN])})"
        return text


def read_roco_split(split_dir: Path, split: str = "train") -> tuple[list[CaptionedImage], SplitReport]:
    """Read one split folder of the released ROCO layout (see the module docstring)."""
    captions_file = _find_listing(split_dir, "captions")
    if captions_file is None:
        raise FileNotFoundError(
            f"ROCO captions file {split_dir / 'captions.txt'} not found. Expected the ROCO release layout "
            f"<root>/<split>/<subset>/captions.txt with images in <root>/<split>/<subset>/images/, or a pairs file "
            f"<root>/{split}.csv / <root>/{split}.jsonl with columns image,caption."
        )
    captions: dict[str, str] = {}
    for line in captions_file.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        pair_id, _, caption = line.partition("\t")
        captions.setdefault(pair_id.strip(), caption.strip())
    image_dir = split_dir / "images"
    on_disk = set(os.listdir(image_dir)) if image_dir.is_dir() else set()
    fetched_names = _fetched_image_names(split_dir)
    report = SplitReport(split, captions_file, listed=len(captions))
    pairs = []
    for pair_id, caption in captions.items():
        candidates = [fetched_names[pair_id]] if pair_id in fetched_names else []
        candidates += [pair_id + suffix for suffix in IMAGE_SUFFIXES]
        found = next((name for name in candidates if name in on_disk), None)
        if not caption:
            report.empty_captions.append(pair_id)
        elif found is None:
            report.missing_images.append(pair_id)
        else:
            pairs.append(CaptionedImage(pair_id, image_dir / found, caption))
    return pairs, report


def read_pairs_file(path: Path, split: str = "train") -> tuple[list[CaptionedImage], SplitReport]:
    """Read a ``.csv`` (header ``image,caption``) or ``.jsonl`` pairs file."""
    if not path.is_file():
        raise FileNotFoundError(f"pairs file {path} not found")
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    elif path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ROCODataError(f"line {number} of {path} is not JSON: {error}") from error
    else:
        raise ValueError(f"pairs file must be .csv or .jsonl, got {path}")
    image_key = _column(path, rows, _IMAGE_COLUMNS)
    caption_key = _column(path, rows, _CAPTION_COLUMNS)
    report = SplitReport(split, path, listed=len(rows))
    pairs = []
    for number, row in enumerate(rows, start=1):
        pair_id = f"{path.name}:{number}"
        caption = str(row.get(caption_key) or "").strip()
        image = Path(str(row.get(image_key) or "").strip())
        image = image if image.is_absolute() else path.parent / image
        if not caption:
            report.empty_captions.append(pair_id)
        elif not image.is_file():
            report.missing_images.append(pair_id)
        else:
            pairs.append(CaptionedImage(pair_id, image, caption))
    return pairs, report


class CaptionedImageDataset(Dataset):
    """Image–caption pairs as ``{"image", "text", "index", "caption_id"}`` samples.

    Images are decoded by :func:`~fusionmedclip_anomalib.data.image_io.read_image` (any container, 16-bit, alpha,
    EXIF rotation) to RGB float ``[3, H, W]`` in ``[0, 1]`` before ``transform``. ``text`` is the caption's token ids (``(context_length,)`` long), ``index`` the pair's position in the split and
    ``caption_id`` the same integer for identical caption texts (retrieval counts those as interchangeable).

    Example:
        >>> dataset = CaptionedImageDataset(pairs, transform, tokenizer)  # doctest: +SKIP
        >>> sample = dataset[0]
    """

    def __init__(
        self,
        pairs: Sequence[CaptionedImage],
        transform: Callable[[torch.Tensor], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
    ) -> None:
        self.pairs = list(pairs)
        self.transform = transform
        self.tokenizer = tokenizer
        ids: dict[str, int] = {}
        self.caption_ids = [ids.setdefault(pair.caption, len(ids)) for pair in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        pair = self.pairs[index]
        return {
            "image": self.transform(read_image(pair.image, as_tensor=True)),
            "text": self.tokenizer([pair.caption])[0],
            "index": index,
            "caption_id": self.caption_ids[index],
        }


class ROCO(LightningDataModule):
    """ROCO (or your own) image–caption pairs, tokenised for an open_clip backbone, with SPEC §5 transforms.

    Train transforms: rotation, RandomResizedCrop, horizontal flip, colour jitter, random greyscale; evaluation:
    shorter-side resize then centre crop; both normalise with the backbone's mean/std. The validation split is
    ``validation``; when the root has none, ``val_fraction`` of the training pairs is held out (seeded).

    Args:
        root: the ROCO folder (the repository clone or its ``data/`` folder) or a folder of ``<split>.csv|jsonl``.
        backbone: open_clip architecture whose tokenizer encodes the captions.
        subset: ROCO subset folder, ``radiology`` or ``non-radiology``.
        image_size: side of the square model input.
        context_length: caption length in tokens (longer captions are truncated).
        batch_size: training batch size per device.
        eval_batch_size: validation/test batch size per device (``None``: ``batch_size``).
        num_workers: data-loading processes per device.
        mean: RGB normalisation mean (``None``: OpenAI CLIP's; ``fusionmedclip pretrain`` passes the backbone's
            ``preprocess_stats``).
        std: RGB normalisation std (``None``: OpenAI CLIP's).
        crop_scale: area range of RandomResizedCrop.
        hflip_prob: probability of a horizontal flip (captions saying "left"/"right" are not flipped with it).
        color_jitter: brightness / contrast / saturation jitter strength (0 disables).
        rotation_degrees: maximum absolute rotation in degrees (0 disables).
        grayscale_prob: probability of converting to greyscale.
        val_fraction: share of training pairs held out when no validation split exists (0: none, then error).
        split_seed: seed of that hold-out.
        on_invalid: ``"skip"`` missing images / empty captions (counted, reported) or ``"error"``.

    Attributes:
        reports: ``{split: SplitReport}`` of every split read, with the skipped ids.

    Example:
        >>> datamodule = ROCO("/data/roco-dataset", backbone="ViT-L-14", batch_size=32)
        >>> datamodule.setup("fit")  # doctest: +SKIP
        >>> datamodule.reports["train"].missing_images  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | Path,
        backbone: str = "ViT-L-14",
        subset: Literal["radiology", "non-radiology"] = "radiology",
        image_size: int = 224,
        context_length: int = 77,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 8,
        mean: tuple[float, float, float] | None = None,
        std: tuple[float, float, float] | None = None,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        hflip_prob: float = 0.5,
        color_jitter: float = 0.2,
        rotation_degrees: float = 10.0,
        grayscale_prob: float = 0.2,
        val_fraction: float = 0.05,
        split_seed: int = 0,
        on_invalid: Literal["skip", "error"] = "skip",
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.backbone = backbone
        self.subset = subset
        self.image_size = image_size
        self.context_length = context_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.mean = tuple(mean) if mean is not None else OPENAI_CLIP_MEAN
        self.std = tuple(std) if std is not None else OPENAI_CLIP_STD
        self.crop_scale = tuple(crop_scale)
        self.hflip_prob = hflip_prob
        self.color_jitter = color_jitter
        self.rotation_degrees = rotation_degrees
        self.grayscale_prob = grayscale_prob
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.on_invalid = on_invalid
        self.reports: dict[str, SplitReport] = {}
        self._pairs: dict[str, list[CaptionedImage]] = {}
        self._tokenizer: Callable[[list[str]], torch.Tensor] | None = None

    # --- transforms --------------------------------------------------------------------------------------------------

    def train_transform(self) -> v2.Compose:
        """Rotation, RandomResizedCrop, flip, colour jitter, greyscale, then tensor + normalisation."""
        steps: list[Callable] = [_to_uint8()]
        if self.rotation_degrees:
            steps.append(v2.RandomRotation(self.rotation_degrees, interpolation=InterpolationMode.BILINEAR))
        steps.append(
            v2.RandomResizedCrop(
                self.image_size, scale=self.crop_scale, interpolation=InterpolationMode.BICUBIC, antialias=True
            )
        )
        if self.hflip_prob:
            steps.append(v2.RandomHorizontalFlip(self.hflip_prob))
        if self.color_jitter:
            steps.append(v2.ColorJitter(self.color_jitter, self.color_jitter, self.color_jitter))
        if self.grayscale_prob:
            steps.append(v2.RandomGrayscale(self.grayscale_prob))
        return v2.Compose([*steps, *self._to_normalised_tensor()])

    def eval_transform(self) -> v2.Compose:
        """Shorter side to ``image_size``, centre crop, then tensor + normalisation."""
        return v2.Compose(
            [
                _to_uint8(),
                v2.Resize(self.image_size, interpolation=InterpolationMode.BICUBIC, antialias=True),
                v2.CenterCrop(self.image_size),
                *self._to_normalised_tensor(),
            ]
        )

    def _to_normalised_tensor(self) -> list[Callable]:
        return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)]

    # --- reading -----------------------------------------------------------------------------------------------------

    @property
    def tokenizer(self) -> Callable[[list[str]], torch.Tensor]:
        """The backbone's open_clip tokenizer at ``context_length``."""
        if self._tokenizer is None:
            import open_clip

            from fusionmedclip_anomalib.clip import register_bundled_configs

            register_bundled_configs()
            self._tokenizer = open_clip.get_tokenizer(self.backbone, context_length=self.context_length)
        return self._tokenizer

    def split_source(self, split: str) -> Path | None:
        """The pairs file or ROCO split folder of ``split`` under ``root``, or ``None`` when there is none."""
        for suffix in (".csv", ".jsonl"):
            if (self.root / f"{split}{suffix}").is_file():
                return self.root / f"{split}{suffix}"
        for base in (self.root / "data", self.root):
            if (base / split / self.subset).is_dir():
                return base / split / self.subset
        return None

    def pairs(self, split: str) -> list[CaptionedImage]:
        """The usable pairs of a split (read once, then cached)."""
        if split not in self._pairs:
            self._read(split)
        return self._pairs[split]

    def _read(self, split: str) -> None:
        if not self.root.is_dir():
            raise FileNotFoundError(f"ROCO root {self.root} is not a folder")
        source = self.split_source(split)
        if source is None and split == "validation" and self.val_fraction > 0:
            self._hold_out_validation()
            return
        if source is None:
            raise FileNotFoundError(
                f"no {split} split under {self.root}: looked for {self.root}/{split}.csv, {self.root}/{split}.jsonl "
                f"and {self.root}/[data/]{split}/{self.subset}/captions.txt"
            )
        pairs, report = read_pairs_file(source, split) if source.is_file() else read_roco_split(source, split)
        self._accept(split, pairs, report)

    def _accept(self, split: str, pairs: list[CaptionedImage], report: SplitReport) -> None:
        self.reports[split] = report
        skipped = len(report.missing_images) + len(report.empty_captions)
        if skipped and self.on_invalid == "error":
            raise ROCODataError(f"{report.summary()} (on_invalid='error')")
        (logger.warning if skipped else logger.info)(report.summary())
        if not pairs:
            raise ROCODataError(f"{report.summary()}: no usable image–caption pairs")
        self._pairs[split] = pairs

    def _hold_out_validation(self) -> None:
        train = self.pairs("train")
        count = round(len(train) * self.val_fraction)
        if count < 1 or count >= len(train):
            raise ROCODataError(
                f"no validation split under {self.root} and val_fraction={self.val_fraction} of {len(train)} training "
                "pairs leaves no validation or no training pairs"
            )
        order = np.random.default_rng(self.split_seed).permutation(len(train))
        self._pairs["validation"] = [train[i] for i in sorted(order[:count])]
        self._pairs["train"] = [train[i] for i in sorted(order[count:])]
        logger.info("no validation split under %s: holding out %d of %d training pairs", self.root, count, len(train))

    # --- Lightning hooks ---------------------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Read the splits the stage needs (fit: train + validation; validate: validation; test: test)."""
        needed = {"fit": ("train", "validation"), "validate": ("validation",), "test": ("test",)}
        for split in needed.get(stage or "fit", ("train", "validation")):
            self.pairs(split)

    def dataset(self, split: str) -> CaptionedImageDataset:
        """The dataset of a split, with the train or evaluation transform."""
        transform = self.train_transform() if split == "train" else self.eval_transform()
        return CaptionedImageDataset(self.pairs(split), transform, self.tokenizer)

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset("train")
        # Contrastive batches must be full: a batch of one has no negatives, and DDP gathers equal shapes.
        drop_last = len(dataset) >= self.batch_size
        if not drop_last:
            logger.warning(
                "only %d training pairs for batch size %d: one short batch per epoch", len(dataset), self.batch_size
            )
        return self._loader(dataset, self.batch_size, shuffle=True, drop_last=drop_last)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("validation"), self.eval_batch_size, shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("test"), self.eval_batch_size, shuffle=False, drop_last=False)

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool, drop_last: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )


def _to_uint8() -> v2.ToDtype:
    """8-bit like CLIP's own PIL preprocessing: bicubic resizing then clamps instead of overshooting [0, 1]."""
    return v2.ToDtype(torch.uint8, scale=True)


def _find_listing(split_dir: Path, stem: str) -> Path | None:
    """``<stem>.txt``, else the first ``<stem>*.txt`` (ROCO's revised lists, e.g. ``dlinks_tp_test_revised.txt``)."""
    exact = split_dir / f"{stem}.txt"
    if exact.is_file():
        return exact
    matches = sorted(split_dir.glob(f"{stem}*.txt"))
    return matches[0] if matches else None


def _fetched_image_names(split_dir: Path) -> dict[str, str]:
    """``{ROCO id: <pmcid>_<name>}``, the file names ``scripts/fetch.py`` writes, from ``dlinks*.txt``."""
    dlinks = _find_listing(split_dir, "dlinks")
    if dlinks is None:
        return {}
    names = {}
    for line in dlinks.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        archive = next((token for token in " ".join(parts[1:-1]).split() if token.endswith(".tar.gz")), None)
        if len(parts) >= 3 and archive:
            pmc_id = archive.rsplit("/", 1)[-1][: -len(".tar.gz")]
            names[parts[0].strip()] = f"{pmc_id}_{parts[-1].strip()}"
    return names


def _column(path: Path, rows: list[dict], accepted: Sequence[str]) -> str:
    present = set(rows[0]) if rows else set()
    for name in accepted:
        if name in present:
            return name
    raise ROCODataError(
        f"{path} has no {accepted[0]!r} column (accepted: {', '.join(accepted)}; found: "
        f"{', '.join(sorted(present)) or 'no rows'})"
    )
