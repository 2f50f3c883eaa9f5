"""``Phantom``: the built-in dataset, generated on first use in the prepared layout.

The demo benchmark and CI use it, so nothing has to be downloaded. Files are written exactly like a prepared
real dataset (PNG images, PNG masks on abnormal rows, JSON-lines sample lists), so every code path of
:class:`MedicalFolder` is the real one. Generation is deterministic: the same settings give the same bytes, and
a dataset is regenerated only when its settings (or the generator version) change. Settings are recorded in
``<root>/<name>/phantom.json``.

Without ``root`` the files go to ``$XDG_CACHE_HOME/fusionmedclip/phantom/<settings-hash>`` (default
``~/.cache/...``), so variants with different settings live side by side.

Example:
    >>> dm = Phantom(modality="brain", k_shot=4, seed=0, root="/tmp/phantom")  # doctest: +SKIP
    >>> dm.setup(); len(dm.train_data), len(dm.test_data)
    (4, 32)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torchvision.transforms.v2 import Transform

from .layout import IMAGES_DIR, SampleRecord, dataset_dir, write_samples
from .medical_folder import MedicalFolder
from .phantom_render import MODALITIES, render_phantom

__all__ = ["GENERATOR_VERSION", "Phantom", "default_phantom_root", "generate_phantom"]

# Bump whenever the renderer's output changes, so cached datasets are regenerated.
GENERATOR_VERSION = 2
SETTINGS_FILE = "phantom.json"
_SPLIT_CODES = {"train": 0, "test_normal": 1, "test_abnormal": 2}


def default_phantom_root() -> Path:
    """``$XDG_CACHE_HOME/fusionmedclip/phantom`` (``~/.cache/fusionmedclip/phantom`` when unset)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "fusionmedclip" / "phantom"


def _save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG", optimize=False)


def generate_phantom(folder: str | Path, settings: dict[str, Any]) -> None:
    """Write a phantom dataset into ``folder`` (which must not exist yet).

    Args:
        folder: Target dataset folder ``<root>/<name>``.
        settings: ``modality``, ``n_train``, ``n_test_normal``, ``n_test_abnormal``, ``image_size``,
            ``generation_seed`` (as recorded in ``phantom.json``).
    """
    folder = Path(folder)
    modality, size, base = settings["modality"], int(settings["image_size"]), int(settings["generation_seed"])
    images = folder / IMAGES_DIR
    plan = [
        ("train", "train/normal", int(settings["n_train"]), False),
        ("test_normal", "test/normal", int(settings["n_test_normal"]), False),
        ("test_abnormal", "test/abnormal", int(settings["n_test_abnormal"]), True),
    ]
    train: list[SampleRecord] = []
    test: list[SampleRecord] = []
    name = f"phantom_{modality}"
    for split, subdir, count, abnormal in plan:
        for index in range(count):
            image, mask = render_phantom(modality, [base, _SPLIT_CODES[split], index], size, abnormal)
            stem = f"{modality}_{split}_{index:03d}"
            filename = f"{subdir}/{stem}.png"
            _save_png(image, images / filename)
            masks: tuple[str, ...] = ()
            if abnormal:
                masks = (f"test/ground_true/{stem}_mask.png",)
                _save_png(mask.astype(np.uint8) * 255, images / masks[0])
            record = SampleRecord(filename=filename, label=int(abnormal), clsname=name, masks=masks)
            (train if split == "train" else test).append(record)
    write_samples(folder / "samples" / "train.json", train)
    write_samples(folder / "samples" / "test.json", test)
    (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _read_settings(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


class Phantom(MedicalFolder):
    """Procedurally generated brain MRI, breast ultrasound or chest X-ray images with pixel-level lesions.

    Args:
        modality: ``"brain"`` (skull, ventricles, grey/white matter, Rician noise; tumour-like masses and
            cysts), ``"breast_us"`` (fan-shaped field, speckle, tissue layers; hypoechoic masses) or
            ``"chest_xray"`` (lungs, ribs, heart shadow; nodules, masses, consolidations).
        root: Where the dataset folder ``phantom_<modality>`` goes; default: a per-settings cache folder.
        k_shot: Support images drawn from the ``n_train`` normals; ``None`` = all.
        seed: Seed of the support-set draw (the images themselves depend only on ``generation_seed``).
        n_train: Normal training images (the pool).
        n_test_normal: Normal test images.
        n_test_abnormal: Abnormal test images (each with a mask).
        image_size: Side of the square images in pixels.
        generation_seed: Seed of the images.
        support_set: A support-set manifest to reuse (see :class:`MedicalFolder`).
        val_split_mode: ``"synthetic"`` or ``"none"``.
        val_max_images: Held-out normals used for validation at most.
        lenient: See :class:`MedicalFolder`.
        train_batch_size: Training batch size.
        eval_batch_size: Validation / test batch size.
        num_workers: DataLoader workers, kept between epochs (see :class:`MedicalFolder`).
        train_augmentations: Extra training transforms.
        val_augmentations: Extra validation transforms.
        test_augmentations: Extra test transforms.
        augmentations: Transforms for every split that has none of its own.

    Example:
        >>> dm = Phantom(modality="chest_xray", k_shot=8, seed=1)  # doctest: +SKIP
        >>> dm.setup(); batch = next(iter(dm.test_dataloader())); batch.gt_mask.shape
        torch.Size([32, 224, 224])
    """

    def __init__(
        self,
        modality: str = "brain",
        root: str | Path | None = None,
        k_shot: int | None = 16,
        seed: int = 0,
        n_train: int = 32,
        n_test_normal: int = 16,
        n_test_abnormal: int = 16,
        image_size: int = 224,
        generation_seed: int = 0,
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
        if modality not in MODALITIES:
            msg = f"unknown phantom modality {modality!r}; choose one of {', '.join(MODALITIES)}"
            raise ValueError(msg)
        for label, count in (
            ("n_train", n_train),
            ("n_test_normal", n_test_normal),
            ("n_test_abnormal", n_test_abnormal),
        ):
            if count < 1:
                msg = f"{label} must be at least 1, got {count}"
                raise ValueError(msg)
        self.modality = modality
        self.settings: dict[str, Any] = {
            "generator_version": GENERATOR_VERSION,
            "modality": modality,
            "n_train": int(n_train),
            "n_test_normal": int(n_test_normal),
            "n_test_abnormal": int(n_test_abnormal),
            "image_size": int(image_size),
            "generation_seed": int(generation_seed),
        }
        if root is None:
            digest = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:12]
            root = default_phantom_root() / digest
        super().__init__(
            root=root,
            name=f"phantom_{modality}",
            k_shot=k_shot,
            seed=seed,
            support_set=support_set,
            val_split_mode=val_split_mode,
            val_max_images=val_max_images,
            lenient=lenient,
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
        )

    def ensure_prepared(self) -> None:
        """Generate the files unless a dataset with the same settings is already there."""
        target = dataset_dir(self.root, self.name)
        if _read_settings(target) == self.settings:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        # Build beside the target and swap it in, so a concurrent reader never sees a half-written dataset.
        scratch = self.root / f".{self.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            generate_phantom(scratch, self.settings)
            if _read_settings(target) == self.settings:  # another process finished first
                return
            if target.exists():
                stale = self.root / f".{self.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                os.replace(target, stale)
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(scratch, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
