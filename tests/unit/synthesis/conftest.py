"""Medical-looking test images made with numpy: a head slice, a chest film, an ultrasound fan, a texture."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

Phantom = Callable[..., np.ndarray]


def _smooth_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return noise / max(float(np.abs(noise).max()), 1e-6)


def head(height: int = 224, width: int = 224, seed: int = 0) -> np.ndarray:
    """Axial brain slice: bright skull ring, textured brain, dark enclosed ventricles, black air."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    ny, nx = (yy - height / 2) / (0.42 * height), (xx - width / 2) / (0.36 * width)
    radius = np.sqrt(ny**2 + nx**2)
    side = min(height, width)
    image = 120 + 40 * _smooth_noise((height, width), side / 60, rng) + 20 * _smooth_noise((height, width), 1.0, rng)
    image = np.where(radius > 0.92, 230.0, image)  # skull
    ventricles = (np.abs(nx) - 0.15) ** 2 / 0.01 + ny**2 / 0.09 < 1
    image = np.where(ventricles, 35.0, image)
    image = np.where(radius < 1.0, image, 0.0)
    return np.clip(image, 0, 255).astype(np.uint8)


def chest(height: int = 224, width: int = 224, seed: int = 0) -> np.ndarray:
    """Tight chest film: bright body filling the frame, two dark lungs enclosed by tissue, rib stripes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    ny, nx = yy / height, xx / width
    image = 170 + 25 * _smooth_noise((height, width), min(height, width) / 40, rng)
    for centre in (0.3, 0.7):
        lung = ((nx - centre) / 0.16) ** 2 + ((ny - 0.5) / 0.33) ** 2 < 1
        ribs = 15 * np.sin(ny * 60.0)
        image = np.where(lung, 60 + ribs + 15 * _smooth_noise((height, width), 2.0, rng), image)
    return np.clip(image, 0, 255).astype(np.uint8)


def ultrasound(height: int = 224, width: int = 224, seed: int = 0) -> np.ndarray:
    """Ultrasound fan: speckled wedge on black with a dark cyst-like region inside."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    dy, dx = yy + 0.1 * height, xx - width / 2
    angle, depth = np.arctan2(dx, dy), np.hypot(dx, dy) / height
    fan = (np.abs(angle) < 0.6) & (depth > 0.15) & (depth < 1.05)
    speckle = rng.rayleigh(1.0, (height, width)).astype(np.float32)
    speckle = cv2.GaussianBlur(speckle, (0, 0), 1.0)
    tissue = 90 + 45 * speckle * (1.0 - 0.4 * depth)
    cyst = ((yy - 0.55 * height) / (0.1 * height)) ** 2 + ((xx - 0.5 * width) / (0.12 * width)) ** 2 < 1
    image = np.where(fan, np.where(cyst, 25.0 + 5 * speckle, tissue), 0.0)
    return np.clip(image, 0, 255).astype(np.uint8)


def texture(height: int = 224, width: int = 224, seed: int = 0) -> np.ndarray:
    """A full-frame texture with no background at all."""
    rng = np.random.default_rng(seed)
    image = 128 + 80 * _smooth_noise((height, width), 3.0, rng) + 20 * _smooth_noise((height, width), 1.0, rng)
    return np.clip(image, 0, 255).astype(np.uint8)


PHANTOMS: dict[str, Phantom] = {"head": head, "chest": chest, "ultrasound": ultrasound, "texture": texture}


@pytest.fixture(params=sorted(PHANTOMS))
def phantom_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def phantoms() -> dict[str, Phantom]:
    return PHANTOMS


@pytest.fixture
def support() -> list[np.ndarray]:
    """Four normal images of other sizes than the targets."""
    return [head(256, 240, 11), head(180, 200, 12), head(300, 300, 13), head(160, 256, 14)]
