"""``MedicalFolder``: an anomalib datamodule over the prepared medical layout, with seeded k-shot support sets.

Splits follow the few-shot protocol of SPEC §6, not anomalib's defaults:

- **train** = exactly the k support images (normal), drawn from ``samples/train.json`` with a seeded generator
  or read back from a support-set manifest;
- **test** = every row of ``samples/test.json``, normal and abnormal, with masks where the dataset has them
  (anomalib's ``test_split_mode="none"`` would drop the normal test images; it is not used);
- **validation** never touches a test image: ``"synthetic"`` uses held-out normal training images (the pool
  minus the support set), each once as it is and once with a synthesised lesion; when nothing is held out it
  falls back to the support images themselves, with a warning. ``"none"`` gives no validation loop at all
  (anomalib's own ``"none"`` crashes ``Engine.fit``; here ``val_dataloader`` returns an empty list).

When the datamodule is attached to a trainer, the support-set manifest is written as ``support_set.json`` into
``trainer.default_root_dir``.

Example:
    >>> dm = MedicalFolder(root="datasets", name="brainmri", k_shot=4, seed=0)  # doctest: +SKIP
    >>> dm.setup()
    >>> len(dm.train_data), dm.support_manifest["files"][:1]
    (4, ['images/train/normal/no_12.jpg'])
    >>> dm.save_support_manifest("runs/brainmri_k4_s0.json")
    >>> again = MedicalFolder(root="datasets", name="brainmri", support_set="runs/brainmri_k4_s0.json")
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from anomalib import TaskType
from anomalib.data.datamodules.base.image import AnomalibDataModule
from anomalib.data.utils import ValSplitMode
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import Transform

from .dataset import MedicalDataset, SampleRow, samples_frame
from .image_io import ImageReadError, probe_image, read_grey_or_rgb
from .layout import IMAGES_DIR, dataset_dir, read_samples, samples_file
from .manifest import SupportSetError, build_manifest, load_manifest, save_manifest, select_support, verify_manifest

__all__ = ["MedicalFolder"]

logger = logging.getLogger(__name__)

SUPPORT_MANIFEST_NAME = "support_set.json"
MASK_DIR = "test/ground_true"
_VAL_MODES = (ValSplitMode.SYNTHETIC, ValSplitMode.NONE)


class DatasetLayoutError(ValueError):
    """The prepared layout is inconsistent (a row without its image, a mask without an image, ...)."""


class MedicalFolder(AnomalibDataModule):
    """Any dataset in the prepared layout ``<root>/<name>/{images,samples}`` (SPEC §6).

    Args:
        root: Folder that holds the dataset folder ``<name>``.
        name: Dataset folder name; also the datamodule name (anomalib's output folders use it).
        k_shot: Number of normal support images drawn from the train pool; ``None`` = the whole pool.
        seed: Seed of the support-set draw (and of the validation lesions).
        support_set: A manifest file written by an earlier run; when given, it fixes the support set and
            ``k_shot`` / ``seed`` only label the run.
        val_split_mode: ``"synthetic"`` (held-out normals with synthesised lesions) or ``"none"``.
        val_max_images: At most this many held-out normals go into validation (each twice: as is and lesioned).
        lenient: Skip unreadable images, orphan masks and abnormal rows without a mask, with a warning, instead
            of raising an error naming the file. Lenient mode decodes every image during setup to find them.
        train_batch_size: Training batch size.
        eval_batch_size: Validation / test batch size.
        num_workers: DataLoader workers (the training loader keeps them between epochs). FusionMedCLIP synthesises
            its training anomalies in them, overlapped with its forward and backward passes; with ``0`` synthesis
            runs in the main process, between steps. Synthesis draws its randomness per worker, so a run
            reproduces with the same ``num_workers``.
        train_augmentations: Extra training transforms (the model's Resize is appended by anomalib).
        val_augmentations: Extra validation transforms.
        test_augmentations: Extra test transforms.
        augmentations: Transforms for every split that has none of its own.

    Example:
        >>> dm = MedicalFolder(root="datasets", name="my_ct", k_shot=8, seed=1, val_split_mode="none")  # doctest: +SKIP
        >>> dm.setup(); batch = next(iter(dm.test_dataloader())); batch.gt_label.dtype
        torch.bool
    """

    def __init__(
        self,
        root: str | Path,
        name: str,
        k_shot: int | None = 16,
        seed: int = 0,
        support_set: str | Path | None = None,
        val_split_mode: str = "synthetic",
        val_max_images: int = 32,
        lenient: bool = False,
        train_batch_size: int = 8,
        eval_batch_size: int = 32,
        num_workers: int = 0,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
    ) -> None:
        mode = ValSplitMode(str(getattr(val_split_mode, "value", val_split_mode)).lower())
        if mode not in _VAL_MODES:
            msg = (
                f"val_split_mode={mode.value!r} is not offered: validation must never use test images "
                "(SPEC §6); use 'synthetic' or 'none'"
            )
            raise ValueError(msg)
        if k_shot is not None and k_shot < 1:
            msg = f"k_shot must be a positive number of images or None (the whole pool), got {k_shot}"
            raise ValueError(msg)
        super().__init__(
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
            val_split_mode=mode,
            seed=seed,
        )
        self.root = Path(root).expanduser()
        self._name = name
        self.k_shot = k_shot
        self.support_set = None if support_set is None else Path(support_set).expanduser()
        self.val_max_images = val_max_images
        self.lenient = lenient
        self._manifest: dict[str, Any] | None = None
        self._held_out: list[str] = []

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        """Dataset name (the folder under ``root``)."""
        return self._name

    @property
    def dataset_folder(self) -> Path:
        """``<root>/<name>``."""
        return dataset_dir(self.root, self._name)

    # ------------------------------------------------------------------ hooks for subclasses
    def ensure_prepared(self) -> None:
        """Make sure the prepared layout exists; subclasses generate or convert it here. Idempotent."""
        if not samples_file(self.root, self._name, "train").is_file():
            msg = (
                f"no prepared dataset at {self.dataset_folder} (expected samples/train.json and samples/test.json);"
                " convert a raw download with `fusionmedclip prepare <dataset> --source <raw> --output <root>`"
            )
            raise FileNotFoundError(msg)

    def prepare_data(self) -> None:
        """Lightning hook (rank 0): create the prepared layout if a subclass knows how."""
        self.ensure_prepared()

    # ------------------------------------------------------------------ support set
    def _train_pool(self) -> list[str]:
        """Normal training images listed in ``train.json``, as paths relative to the dataset folder, sorted."""
        pool = []
        for record in read_samples(samples_file(self.root, self._name, "train")):
            relative = f"{IMAGES_DIR}/{record.filename}"
            if record.label != 0:
                warnings.warn(
                    f"{relative}: abnormal row in train.json is not part of the normal train pool", stacklevel=3
                )
                continue
            pool.append(relative)
        if len(set(pool)) != len(pool):
            msg = f"{samples_file(self.root, self._name, 'train')} lists an image more than once"
            raise DatasetLayoutError(msg)
        return sorted(pool)

    def _resolve_support(self) -> dict[str, Any]:
        self.ensure_prepared()
        pool = self._train_pool()
        given: dict[str, Any] | None = None
        if self.support_set is not None:
            given = load_manifest(self.support_set)
            if given.get("dataset") not in (None, self._name):
                warnings.warn(
                    f"support-set manifest {self.support_set} was made for {given.get('dataset')!r}, "
                    f"used here for {self._name!r}",
                    stacklevel=3,
                )
            for note in verify_manifest(given, self.dataset_folder, pool, check_hashes=not self.lenient):
                warnings.warn(note, stacklevel=3)
        # Unreadable pool images: an error naming the file, or (lenient) dropped before the draw.
        pool = [name for name in pool if self._usable(self.dataset_folder / name, deep=self.lenient)]
        if not pool:
            msg = f"{samples_file(self.root, self._name, 'train')} lists no usable normal training image"
            raise DatasetLayoutError(msg)
        if given is not None:
            chosen = list(given["files"])
            missing = [name for name in chosen if name not in set(pool)]
            if missing:
                msg = f"support-set file {self.dataset_folder / missing[0]} cannot be read"
                raise SupportSetError(msg)
            k_shot, seed = given.get("k_shot", len(chosen)), given.get("seed")
        else:
            chosen = select_support(pool, self.k_shot, self.seed)
            k_shot, seed = self.k_shot, self.seed
        manifest = build_manifest(self._name, self.dataset_folder, chosen, k_shot, seed, len(pool))
        if self.support_set is not None:
            manifest["source_manifest"] = str(self.support_set.resolve())
        chosen_set = set(chosen)
        self._held_out = [name for name in pool if name not in chosen_set]
        return manifest

    @property
    def support_manifest(self) -> dict[str, Any]:
        """The support set as a JSON-serialisable dict: dataset, root, k_shot, seed, files (in draw order)."""
        if self._manifest is None:
            self._manifest = self._resolve_support()
        return self._manifest

    def save_support_manifest(self, path: str | Path) -> Path:
        """Write :attr:`support_manifest` to ``path`` (JSON); returns the path."""
        return save_manifest(self.support_manifest, path)

    # ------------------------------------------------------------------ file checks
    def _problem(self, message: str) -> None:
        if not self.lenient:
            raise DatasetLayoutError(message)
        warnings.warn(f"skipped: {message}", stacklevel=4)

    def _usable(self, path: Path, deep: bool) -> bool:
        """Whether an image file can be used; strict mode raises naming it, lenient mode warns and skips it."""
        try:
            if deep:
                read_grey_or_rgb(path)
            else:
                probe_image(path)
        except FileNotFoundError as error:
            if not self.lenient:
                raise
            warnings.warn(f"skipped: {error}", stacklevel=4)
            return False
        except ImageReadError as error:
            if not self.lenient:
                raise
            warnings.warn(f"skipped: {error}", stacklevel=4)
            return False
        return True

    def _test_rows(self) -> tuple[list[SampleRow], TaskType]:
        records = read_samples(samples_file(self.root, self._name, "test"))
        images = self.dataset_folder / IMAGES_DIR
        segmentation = any(record.masks for record in records)
        referenced: set[Path] = set()
        rows: list[SampleRow] = []
        for record in records:
            masks = tuple(images / mask for mask in record.masks)
            referenced.update(path.resolve() for path in masks)
            image_path = images / record.filename
            if not image_path.is_file():
                for mask in masks:
                    self._problem(f"mask {mask} has no image: {image_path} is missing")
                if not masks:
                    self._usable(image_path, deep=False)
                continue
            if not self._usable(image_path, deep=self.lenient):
                continue
            if segmentation and record.label == 1 and not masks:
                self._problem(f"abnormal test image {image_path} has no mask, but this dataset has masks")
                continue
            if record.label == 0 and masks:
                self._problem(f"normal test image {image_path} lists a mask {masks[0]}")
                continue
            missing = [mask for mask in masks if not mask.is_file()]
            if missing:
                self._problem(f"mask file not found: {missing[0]} (for {image_path})")
                continue
            if self.lenient and not all(self._usable(mask, deep=True) for mask in masks):
                continue
            rows.append(SampleRow(str(image_path), record.label, "test", tuple(str(mask) for mask in masks)))
        self._check_orphan_masks(referenced)
        if not rows:
            msg = f"{samples_file(self.root, self._name, 'test')} has no usable test image"
            raise DatasetLayoutError(msg)
        return rows, TaskType.SEGMENTATION if segmentation else TaskType.CLASSIFICATION

    def _check_orphan_masks(self, referenced: set[Path]) -> None:
        mask_dir = self.dataset_folder / IMAGES_DIR / MASK_DIR
        if not mask_dir.is_dir():
            return
        for path in sorted(mask_dir.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.resolve() not in referenced:
                self._problem(f"mask {path} belongs to no test image in samples/test.json")

    # ------------------------------------------------------------------ anomalib hooks
    def _setup(self, _stage: str | None = None) -> None:
        self._manifest = self._resolve_support()
        test_rows, task = self._test_rows()
        train_rows = [SampleRow(str(self.dataset_folder / name), 0, "train") for name in self._manifest["files"]]
        self.train_data = MedicalDataset(samples_frame(train_rows, task), name=self._name)
        self.test_data = MedicalDataset(samples_frame(test_rows, task), name=self._name)

    def _create_test_split(self) -> None:
        """The test split is exactly ``samples/test.json`` (anomalib's splitting would drop or halve it)."""

    def _create_val_split(self) -> None:
        if self.val_split_mode == ValSplitMode.NONE:
            if hasattr(self, "val_data"):
                del self.val_data
            return
        held_out = list(self._held_out)
        if held_out:
            order = np.random.default_rng(self.seed).permutation(len(held_out))[: self.val_max_images]
            sources = [held_out[int(index)] for index in order]
        else:
            sources = list(self._manifest["files"])[: self.val_max_images] if self._manifest else []
            warnings.warn(
                f"{self._name}: no held-out normal training images (the support set is the whole pool of "
                f"{len(sources)}); validation uses synthetic lesions on the support images themselves, so "
                "thresholds fitted on it may be optimistic. Use val_split_mode='none' to skip validation.",
                stacklevel=2,
            )
        seeds = np.random.SeedSequence([self.seed if self.seed is not None else 0, len(sources)]).generate_state(
            len(sources)
        )
        rows: list[SampleRow] = []
        for name, lesion_seed in zip(sources, seeds, strict=True):
            path = str(self.dataset_folder / name)
            rows.append(SampleRow(path, 0, "val"))
            rows.append(SampleRow(path, 1, "val", synthetic_seed=int(lesion_seed)))
        self.val_data = MedicalDataset(samples_frame(rows, TaskType.SEGMENTATION), name=self._name)

    def setup(self, stage: str | None = None) -> None:
        """Build the splits; when attached to a trainer, write ``support_set.json`` into its root dir."""
        super().setup(stage)
        trainer = getattr(self, "trainer", None)
        if trainer is not None and getattr(trainer, "default_root_dir", None):
            save_manifest(self.support_manifest, Path(trainer.default_root_dir) / SUPPORT_MANIFEST_NAME)

    def train_dataloader(self) -> DataLoader:
        """anomalib's training loader, with its workers kept from epoch to epoch: a few-shot epoch is a batch or two,
        so starting workers every epoch would cost more than the loading (and FusionMedCLIP's synthesis) they do."""
        return DataLoader(
            dataset=self.train_data,
            shuffle=True,
            batch_size=self.train_batch_size,
            num_workers=self.num_workers,
            collate_fn=self.external_collate_fn or self.train_data.collate_fn,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> Any:
        """Validation loader; an empty list (no validation loop) when ``val_split_mode="none"``."""
        if not hasattr(self, "val_data"):
            return []
        return super().val_dataloader()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, name={self._name!r}, k_shot={self.k_shot}, "
            f"seed={self.seed}, val_split_mode={self.val_split_mode.value!r})"
        )
