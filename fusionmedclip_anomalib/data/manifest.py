"""Seeded k-shot support sets and their manifests.

The support set is drawn from the train pool (normal images) sorted by file name, so the order of lines in
``train.json`` does not matter: ``numpy.random.default_rng(seed).permutation(len(pool))[:k]``. For one seed the
sets are nested (the 4-shot set is the first four of the 8-shot set), which keeps k-sweeps comparable.

A manifest is a small JSON file recording what was drawn, so that a run can be repeated exactly::

    {"format": "fusionmedclip-support-set/1", "dataset": "brainmri", "root": "/data/medical", "k_shot": 4,
     "seed": 0, "pool_size": 33, "files": ["images/train/normal/no_12.jpg", ...], "sha256": ["9f2c...", ...]}

``files`` are relative to the dataset folder ``<root>/<name>`` and listed in the order they were drawn.

Example:
    >>> chosen = select_support(["a.png", "b.png", "c.png"], k_shot=2, seed=0)
    >>> len(chosen)
    2
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MANIFEST_FORMAT",
    "SupportSetError",
    "build_manifest",
    "file_sha256",
    "load_manifest",
    "save_manifest",
    "select_support",
    "verify_manifest",
]

MANIFEST_FORMAT = "fusionmedclip-support-set/1"


class SupportSetError(ValueError):
    """A support set cannot be drawn or a manifest does not match the data; the message says which file."""


def select_support(pool: Sequence[str], k_shot: int | None, seed: int) -> list[str]:
    """Draw ``k_shot`` items from ``pool`` with a seeded generator (``None``: the whole pool, sorted).

    Raises:
        SupportSetError: ``k_shot`` is larger than the pool or not positive (the message gives both numbers).
    """
    ordered = sorted(pool)
    if k_shot is None:
        return ordered
    if k_shot < 1:
        msg = f"k_shot must be a positive number of images, got {k_shot}"
        raise SupportSetError(msg)
    if k_shot > len(ordered):
        msg = f"k_shot={k_shot} is larger than the train pool of {len(ordered)} normal images"
        raise SupportSetError(msg)
    order = np.random.default_rng(seed).permutation(len(ordered))[:k_shot]
    return [ordered[int(index)] for index in order]


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(
    dataset: str, dataset_folder: str | Path, files: Sequence[str], k_shot: int | None, seed: int | None, pool_size: int
) -> dict[str, Any]:
    """Build the JSON-serialisable manifest of a drawn support set (``files`` relative to ``dataset_folder``)."""
    folder = Path(dataset_folder)
    return {
        "format": MANIFEST_FORMAT,
        "dataset": dataset,
        "root": str(folder.parent.resolve()),
        "k_shot": k_shot,
        "seed": seed,
        "pool_size": pool_size,
        "files": list(files),
        "sha256": [file_sha256(folder / name) for name in files],
    }


def save_manifest(manifest: dict[str, Any], path: str | Path) -> Path:
    """Write a manifest as indented JSON, atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check a manifest file.

    Raises:
        FileNotFoundError: No such manifest.
        SupportSetError: The file is not a support-set manifest (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        msg = f"support-set manifest not found: {path}"
        raise FileNotFoundError(msg)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        msg = f"{path}: not a JSON support-set manifest: {error}"
        raise SupportSetError(msg) from error
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list) or not files or not all(isinstance(name, str) for name in files):
        msg = f"{path}: a support-set manifest needs a non-empty list of file names under 'files'"
        raise SupportSetError(msg)
    if len(set(files)) != len(files):
        msg = f"{path}: the manifest lists a file more than once"
        raise SupportSetError(msg)
    return manifest


def verify_manifest(
    manifest: dict[str, Any], dataset_folder: str | Path, pool: Sequence[str], check_hashes: bool = True
) -> list[str]:
    """Check that every listed file exists, belongs to the train pool and (optionally) has the recorded bytes.

    Args:
        manifest: A loaded manifest.
        dataset_folder: ``<root>/<name>`` of the datamodule that uses it (may differ from the manifest's root).
        pool: The train pool, as paths relative to ``dataset_folder``.
        check_hashes: Compare SHA-256 digests where the manifest has them.

    Returns:
        Problems that do not stop the run (hash mismatches are returned here when ``check_hashes`` is False).

    Raises:
        SupportSetError: A listed file is missing, is not a normal training image, or changed (naming it).
    """
    folder = Path(dataset_folder)
    pool_set = set(pool)
    hashes = manifest.get("sha256") or [None] * len(manifest["files"])
    notes = []
    for name, digest in zip(manifest["files"], hashes, strict=False):
        path = folder / name
        if not path.is_file():
            msg = f"support-set file listed in the manifest is missing: {path}"
            raise SupportSetError(msg)
        if name not in pool_set:
            msg = f"support-set file {name} is not a normal image of the train pool of {folder}"
            raise SupportSetError(msg)
        if digest and file_sha256(path) != digest:
            msg = f"support-set file {path} differs from the manifest (SHA-256 mismatch)"
            if check_hashes:
                raise SupportSetError(msg + "; pass lenient=True to use it anyway")
            notes.append(msg)
    return notes
