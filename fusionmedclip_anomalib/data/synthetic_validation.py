"""Synthesised anomalies for the validation split (never for training, never on test images).

anomalib's ``SyntheticAnomalyDataset`` is not used because it draws its sample with an unseeded
``DataFrame.sample``, writes temporary files, reads images with the 16-bit-saturating reader and pastes
natural-texture (DTD) patches. Validation here only has to give the post-processor a plausible score range and
threshold, so a deterministic, file-free lesion is enough: an irregular blob inside the body (estimated
foreground) whose intensity is raised or lowered with a soft edge and a little texture.

Example:
    >>> import numpy as np
    >>> image = np.full((64, 64, 3), 0.5, dtype=np.float32)
    >>> anomalous, mask = synthesize_anomaly(image, seed=3)
    >>> mask.dtype, bool(mask.any())
    (dtype('bool'), True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["estimate_foreground", "synthesize_anomaly"]


def estimate_foreground(grey: np.ndarray, min_fraction: float = 0.05) -> np.ndarray:
    """Pixels brighter than a small fraction of the bright end; the whole image when that is too little."""
    level = max(0.04, 0.12 * float(np.percentile(grey, 99)))
    foreground = grey > level
    if foreground.mean() < min_fraction:
        return np.ones_like(foreground, dtype=bool)
    return foreground


def synthesize_anomaly(image: np.ndarray, seed: int | np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """Add one lesion-like blob to an RGB float image.

    Args:
        image: float ``[H, W, 3]`` in ``[0, 1]``.
        seed: Seed of the blob's position, shape, size and contrast (same seed, same lesion).

    Returns:
        ``(image, mask)``: the altered float32 image in ``[0, 1]`` and a non-empty boolean ``[H, W]`` mask.
    """
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    grey = image.mean(axis=2)
    foreground = estimate_foreground(grey)
    ys, xs = np.nonzero(foreground)
    pick = rng.integers(len(ys))
    cy, cx = float(ys[pick]), float(xs[pick])
    radius = max(3.0, rng.uniform(0.05, 0.14) * min(height, width))
    aspect = rng.uniform(0.6, 1.0)
    angle = rng.uniform(0.0, np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / radius
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / (radius * aspect)
    theta = np.arctan2(v, u)
    wobble = np.ones_like(theta)
    for order in (2, 3, 5):
        wobble += rng.uniform(0.0, 0.12) * np.cos(order * theta + rng.uniform(0, 2 * np.pi))
    distance = np.sqrt(u * u + v * v) / wobble
    soft = 0.5 - 0.5 * np.tanh((distance - 1.0) / 0.16)
    soft = np.where(soft > 0.05, soft, 0.0) * foreground
    mask = soft > 0.5
    if not mask.any():
        mask = np.zeros((height, width), dtype=bool)
        mask[int(cy), int(cx)] = True
        soft = mask.astype(np.float32)

    local = float(grey[mask].mean())
    # Darken bright tissue and brighten dark tissue more often, so the blob is visible on either.
    sign = -1.0 if rng.random() < local else 1.0
    contrast = sign * rng.uniform(0.2, 0.45)
    texture = 1.0 + 0.15 * rng.standard_normal((height, width)).astype(np.float32)
    delta = (contrast * soft * texture)[..., None]
    altered = np.clip(image + delta, 0.0, 1.0).astype(np.float32)
    return altered, mask
