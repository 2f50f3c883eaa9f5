"""Intensity and density tasks: lesions that differ from tissue by brightness or texture, not structure."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from fusionmedclip_anomalib.synthesis.masks import MaskSampler, MaskShape, expand_window, fractal_noise, paste
from fusionmedclip_anomalib.synthesis.ranges import check_range
from fusionmedclip_anomalib.synthesis.tasks.base import SynthesisTask, pixel_scale


class GaussIntensityChange(SynthesisTask):
    """Add smooth Gaussian-filtered noise, scaled by gamma, to the pixels inside the mask (MediCLIP's task).

    White noise is blurred with a sigma drawn from ``sigmas`` and rescaled to a peak of 1 inside the mask; the image in
    [0, 1] gets ``gamma * noise`` inside the (hard) mask, with |gamma| drawn from ``gamma`` and a random sign,
    and is clipped back to [0, 1].

    Args:
        size: anomaly extent as a fraction of the image side (per axis).
        shape: mask shape family (see :class:`~fusionmedclip_anomalib.synthesis.masks.MaskSampler`).
        count: inclusive range of anomalies per image.
        sigmas: blur sigmas in pixels for a 224 px image, one drawn per anomaly.
        gamma: range of the absolute intensity factor on the [0, 1] scale.

    Example:
        >>> import numpy as np
        >>> img = np.full((64, 64), 120, np.uint8)
        >>> out, mask = GaussIntensityChange()(img, np.random.default_rng(0), foreground=np.ones((64, 64), bool))
        >>> out.shape, mask.dtype, bool(mask.any())
        ((64, 64), dtype('float32'), True)
    """

    name = "gauss_intensity_change"

    def __init__(
        self,
        size: tuple[float, float] = (0.3, 0.8),
        shape: MaskShape = "ellipse",
        count: tuple[int, int] = (1, 1),
        sigmas: Sequence[float] = (4.0, 7.0),
        gamma: tuple[float, float] = (0.4, 0.6),
    ) -> None:
        self.sampler = MaskSampler(shape=shape, size=tuple(size), count=tuple(count))
        if not sigmas or min(sigmas) <= 0:
            raise ValueError(f"sigmas must be a non-empty list of positive values, got {sigmas}")
        self.sigmas = tuple(float(s) for s in sigmas)
        self.gamma = check_range("gamma", gamma, 0.0, 1.0)

    def synthesise(
        self, image: np.ndarray, foreground: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        out = image.copy()
        mask = np.zeros(image.shape, np.float32)
        scale = pixel_scale(image.shape)
        for blob in self.sampler.sample_blobs(foreground, rng):
            sigma = self.sigmas[int(rng.integers(len(self.sigmas)))] * scale
            gamma = rng.uniform(*self.gamma) * (1.0 if rng.random() < 0.5 else -1.0)
            noise = smooth_noise(blob.pixels.shape, sigma, rng)
            noise /= max(float(np.abs(noise[blob.pixels]).max()), 1e-6)  # gamma is the peak change inside
            window = out[blob.window].astype(np.float32)
            changed = np.clip(window + (255.0 * gamma) * noise, 0.0, 255.0)
            out[blob.window] = np.where(blob.pixels, np.rint(changed), window).astype(np.uint8)
            mask[blob.window] = np.maximum(mask[blob.window], blob.pixels)
        return out, mask


def smooth_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """White noise blurred with a Gaussian of ``sigma`` pixels, rescaled to a maximum absolute value of 1.

    The noise is drawn on a grid ``sigma / 2`` times coarser, blurred there and upsampled (cubic): the result
    has the same band limit as blurring full-resolution noise, at a fraction of the cost for large sigmas.
    """
    step = max(1.0, sigma / 2.0)
    coarse = (max(2, math.ceil(shape[0] / step) + 1), max(2, math.ceil(shape[1] / step) + 1))
    noise = rng.standard_normal(coarse).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigma / step, borderType=cv2.BORDER_REFLECT_101)
    if coarse != shape:
        noise = cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    peak = float(np.abs(noise).max())
    return noise / peak if peak > 0 else noise


class EnhancedDensity(SynthesisTask):
    """Blend a synthetic lesion texture into the image through a blurred mask.

    With the blurred mask ``M = G_sigma * mask`` (cut to the foreground) and a texture ``T``,
    ``out = X * (1 - M) + (X * (1 - beta) + beta * T) * M``. The texture is the mean tissue grey level under the
    mask shifted up (denser, brighter lesion) or down (cyst-like, darker) by ``shift`` and modulated by
    fractal noise of amplitude ``texture``; the direction is random unless only one fits in [0, 255]. The mask
    returned is ``M`` itself (soft edges).

    Args:
        size: anomaly extent as a fraction of the image side (per axis).
        shape: mask shape family.
        count: inclusive range of anomalies per image.
        edge_sigma: range of the mask blur in pixels for a 224 px image.
        beta: range of the mixing weight of the texture.
        shift: range of the texture's mean offset from the tissue, as a fraction of 255.
        texture: range of the texture's noise amplitude, as a fraction of 255.

    Example:
        >>> import numpy as np
        >>> img = np.full((64, 64), 120, np.uint8)
        >>> out, mask = EnhancedDensity()(img, np.random.default_rng(0), foreground=np.ones((64, 64), bool))
        >>> 0.0 <= float(mask.min()) <= float(mask.max()) <= 1.0
        True
    """

    name = "enhanced_density"

    def __init__(
        self,
        size: tuple[float, float] = (0.1, 0.5),
        shape: MaskShape = "perlin",
        count: tuple[int, int] = (1, 1),
        edge_sigma: tuple[float, float] = (1.0, 4.0),
        beta: tuple[float, float] = (0.5, 0.9),
        shift: tuple[float, float] = (0.15, 0.4),
        texture: tuple[float, float] = (0.05, 0.2),
    ) -> None:
        self.sampler = MaskSampler(shape=shape, size=tuple(size), count=tuple(count))
        self.edge_sigma = check_range("edge_sigma", edge_sigma, 0.0)
        self.beta = check_range("beta", beta, 0.0, 1.0)
        self.shift = check_range("shift", shift, 0.0, 1.0)
        self.texture = check_range("texture", texture, 0.0, 1.0)

    def synthesise(
        self, image: np.ndarray, foreground: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        out = image.astype(np.float32)
        mask = np.zeros(image.shape, np.float32)
        scale = pixel_scale(image.shape)
        for blob in self.sampler.sample_blobs(foreground, rng):
            sigma = rng.uniform(*self.edge_sigma) * scale
            window = expand_window(blob.window, math.ceil(3.0 * sigma) + 1, image.shape)
            soft = paste(blob.window, blob.pixels.astype(np.float32), window)
            if sigma > 0:
                soft = cv2.GaussianBlur(
                    soft, (2 * math.ceil(3.0 * sigma) + 1,) * 2, sigma, borderType=cv2.BORDER_CONSTANT
                )
            soft = np.clip(soft, 0.0, 1.0) * foreground[window]

            tissue = float(image[blob.window][blob.pixels].mean())
            offset = 255.0 * rng.uniform(*self.shift)
            direction = 1.0 if rng.random() < 0.5 else -1.0
            if not 0.0 <= tissue + direction * offset <= 255.0:
                direction = -direction
            noise = fractal_noise(soft.shape, int(rng.integers(2, 6)), rng, octaves=4)
            texture = np.clip(tissue + direction * offset + 255.0 * rng.uniform(*self.texture) * noise, 0.0, 255.0)
            beta = rng.uniform(*self.beta)
            current = out[window]
            out[window] = current + (beta * soft) * (texture - current)
            mask[window] = np.maximum(mask[window], soft)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask
