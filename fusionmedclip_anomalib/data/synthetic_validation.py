"""Synthesised anomalies for the validation split (never for training, never on test images).

anomalib's ``SyntheticAnomalyDataset`` is not used because it draws its sample with an unseeded
``DataFrame.sample``, writes temporary files, reads images with the 16-bit-saturating reader and pastes
natural-texture (DTD) patches. Validation only has to give the post-processor a plausible score range and
threshold, so a deterministic, file-free lesion from the synthesis library is enough: a smooth intensity change
(``GaussIntensityChange``) inside the estimated body, added to the RGB image so pixels outside the lesion keep their
full precision.

Example:
    >>> import numpy as np
    >>> image = np.full((64, 64, 3), 0.5, dtype=np.float32)
    >>> anomalous, mask = synthesize_anomaly(image, seed=3)
    >>> mask.dtype, bool(mask.any())
    (dtype('bool'), True)
"""

from __future__ import annotations

import numpy as np

from fusionmedclip_anomalib.synthesis import GaussIntensityChange, estimate_foreground

__all__ = ["synthesize_anomaly"]

VALIDATION_LESION = GaussIntensityChange(size=(0.1, 0.3))


def synthesize_anomaly(image: np.ndarray, seed: int | np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """Add one lesion to an RGB float image.

    Args:
        image: float ``[H, W, 3]`` in ``[0, 1]``.
        seed: Seed of the lesion's position, shape, size and contrast (same seed, same lesion).

    Returns:
        ``(image, mask)``: the altered float32 image in ``[0, 1]`` and a non-empty boolean ``[H, W]`` mask. An image
        without an estimable body (e.g. constant) gets its lesion anywhere.
    """
    rng = np.random.default_rng(seed)
    grey = np.rint(image.mean(axis=2) * 255).astype(np.uint8)
    foreground = estimate_foreground(grey)
    if not foreground.any():
        foreground = np.ones_like(foreground)
    altered, soft_mask = VALIDATION_LESION.synthesise(grey, foreground, rng)
    delta = (altered.astype(np.float32) - grey.astype(np.float32)) / 255.0
    return np.clip(image + delta[..., None], 0.0, 1.0).astype(np.float32), soft_mask > 0.5
