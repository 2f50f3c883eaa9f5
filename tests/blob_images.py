"""Generated images for model tests: textured discs ("organs") on black, anomalies are bright blobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 128


def disc_image(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A grey textured disc of random radius and position on black, uint8 HxW."""
    yy, xx = np.mgrid[:size, :size]
    cy, cx = size / 2 + rng.uniform(-6, 6, 2)
    radius = size * rng.uniform(0.36, 0.44)
    disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < radius**2
    texture = 90 + 25 * np.sin(xx / rng.uniform(3, 6)) * np.cos(yy / rng.uniform(3, 6)) + rng.normal(0, 6, (size, size))
    return np.where(disc, texture, 0).clip(0, 255).astype(np.uint8)


def add_blob(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A bright blob inside the disc; returns (image, mask)."""
    size = image.shape[0]
    yy, xx = np.mgrid[:size, :size]
    cy, cx = size / 2 + rng.uniform(-size * 0.2, size * 0.2, 2)
    radius = size * rng.uniform(0.07, 0.12)
    mask = ((yy - cy) ** 2 + (xx - cx) ** 2) < radius**2
    out = image.astype(np.float32)
    out[mask] = 215 + rng.normal(0, 8, mask.sum())
    return out.clip(0, 255).astype(np.uint8), mask


def write_blob_folder(root: Path, n_train: int = 16, n_test: int = 8, seed: int = 0) -> Path:
    """anomalib Folder layout: train/normal, test/normal, test/abnormal, masks (mask files named like images)."""
    rng = np.random.default_rng(seed)
    for folder in ("train/normal", "test/normal", "test/abnormal", "masks"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(n_train):
        Image.fromarray(disc_image(rng)).save(root / "train/normal" / f"{i:03d}.png")
    for i in range(n_test):
        Image.fromarray(disc_image(rng)).save(root / "test/normal" / f"{i:03d}.png")
        image, mask = add_blob(disc_image(rng), rng)
        Image.fromarray(image).save(root / "test/abnormal" / f"{i:03d}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"{i:03d}.png")
    return root


def blob_folder_datamodule(root: Path, **kwargs):
    """anomalib's own Folder datamodule over :func:`write_blob_folder`'s layout; validation never uses test images."""
    from anomalib.data import Folder

    options = {
        "name": "blobs",
        "root": root,
        "normal_dir": "train/normal",
        "abnormal_dir": "test/abnormal",
        "normal_test_dir": "test/normal",
        "mask_dir": "masks",
        "train_batch_size": 8,
        "eval_batch_size": 8,
        "num_workers": 0,
        "val_split_mode": "synthetic",
        "val_split_ratio": 0.25,
        "seed": 0,
    }
    options.update(kwargs)
    return Folder(**options)
