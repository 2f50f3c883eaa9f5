"""Tiny generated image–caption pairs in the ROCO layout; fixtures shared by ROCOCLIP's unit and integration tests.

Loaded by file path from both test folders' conftest.py (no package, no sys.path changes); tests reach the helpers
through the ``roco_synthetic`` fixture.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ATTRIBUTES = {
    "modality": ("ct", "mri"),
    "size": ("small", "large"),
    "brightness": ("bright", "dark"),
    "shape": ("round", "square"),
    "position": ("upper", "lower"),
}


def caption_of(modality: str, size: str, brightness: str, shape: str, position: str) -> str:
    return f"{modality} scan of the chest showing a {size} {brightness} {shape} lesion in the {position} lobe"


def draw_case(
    modality: str, size: str, brightness: str, shape: str, position: str, rng: np.random.Generator, side: int = 64
) -> Image.Image:
    """A grey image whose content follows its caption (flip-invariant, so horizontal flips keep it true)."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    background = 0.35 + (0.15 * np.sin(12 * xx) * np.sin(12 * yy) if modality == "mri" else 0.1 * yy)
    image = background + rng.normal(0, 0.03, (side, side))
    radius = 0.22 if size == "large" else 0.1
    cy, cx = (0.3 if position == "upper" else 0.7), 0.5 + rng.uniform(-0.05, 0.05)
    if shape == "round":
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
    else:
        inside = (np.abs(yy - cy) < radius) & (np.abs(xx - cx) < radius)
    image[inside] = 0.95 if brightness == "bright" else 0.02
    return Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8), mode="L")


def write_roco_split(
    root: Path, split: str, seed: int = 0, repeats: int = 1, subset: str = "radiology", image_names: str = "id"
) -> list[tuple[str, str]]:
    """Write ``<root>/data/<split>/<subset>/{captions.txt, images/}`` with one pair per attribute combination.

    ``image_names="id"`` names images ``ROCO_xxxxx.png``; ``"fetch"`` writes a ``dlinks.txt`` and names them the way
    ROCO's ``scripts/fetch.py`` does (``PMC<n>_<figure>.jpg``).
    """
    rng = np.random.default_rng(seed)
    folder = root / "data" / split / subset
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows, dlinks = [], []
    combos = list(itertools.product(*ATTRIBUTES.values())) * repeats
    for number, combo in enumerate(combos):
        pair_id = f"ROCO_{seed * 1000 + number:05d}"
        image = draw_case(*combo, rng=rng)
        if image_names == "fetch":
            pmc = f"PMC{1000000 + seed * 1000 + number}"
            name = f"fig-{number}.jpg"
            image.save(folder / "images" / f"{pmc}_{name}", quality=95)
            dlinks.append(
                f"{pair_id}\twget -r ftp://ftp.example.org/pub/pmc/oa_package/aa/bb/{pmc}.tar.gz "
                f"-P /path/to/Dir\t{name}"
            )
        else:
            image.save(folder / "images" / f"{pair_id}.png")
        rows.append((pair_id, caption_of(*combo)))
    (folder / "captions.txt").write_text("".join(f"{pid}\t {caption}\n" for pid, caption in rows))
    if dlinks:
        (folder / "dlinks.txt").write_text("\n".join(dlinks) + "\n")
    return rows


@pytest.fixture(scope="session")
def roco_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 training pairs and the same 32 pairs as validation (so validation recall measures the training pairs)."""
    root = tmp_path_factory.mktemp("roco")
    write_roco_split(root, "train", seed=0)
    write_roco_split(root, "validation", seed=0)
    write_roco_split(root, "test", seed=1)
    return root


@pytest.fixture(scope="session")
def initial_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random fmc-tiny open_clip state dict: the 'original weights' that fine-tuning starts from."""
    from fusionmedclip_anomalib.clip import load_clip

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clip = load_clip("fmc-tiny", None)
    path = tmp_path_factory.mktemp("weights") / "fmc-tiny-initial.pt"
    torch.save(clip.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def roco_synthetic():
    """This module: ``write_roco_split``, ``caption_of``, ``draw_case``, ``ATTRIBUTES``."""
    import sys

    return sys.modules[__name__]
