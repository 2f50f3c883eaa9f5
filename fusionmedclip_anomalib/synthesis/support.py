"""The normal support images that structural tasks take their source patches from."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from fusionmedclip_anomalib.synthesis.foreground import estimate_foreground, foreground_depth
from fusionmedclip_anomalib.synthesis.greyscale import to_grey


class SupportSet:
    """Grey-level source images for CutPaste and Enhanced structural, fitted to any target size.

    A support image of another size is scaled to cover the target (aspect ratio kept) and centre-cropped.
    The fitted image and its foreground depth (:func:`~fusionmedclip_anomalib.synthesis.foreground.foreground_depth`)
    are cached per (image, target size).

    **Empty support rule**: when no support image is given, the target image itself is the source, so the
    patch comes from another place of the same image (rotated and scaled by the task).

    Args:
        images: grey or colour uint8 images (converted to grey once).
        cache_size: number of fitted (image, size) pairs kept in memory.

    Example:
        >>> support = SupportSet([np.full((40, 60), 90, np.uint8)])
        >>> target = np.zeros((32, 32), np.uint8)
        >>> source, depth = support.draw(target, np.zeros((32, 32), bool), np.random.default_rng(0))
        >>> source.shape
        (32, 32)
    """

    def __init__(self, images: Sequence[np.ndarray] = (), cache_size: int = 256) -> None:
        self.images = [to_grey(np.asarray(image)) for image in images]
        self.cache_size = cache_size
        self._cache: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.images)

    def draw(
        self, target: np.ndarray, target_foreground: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """A random support image fitted to ``target`` 's size and its foreground depth (the target if empty)."""
        if not self.images:
            return target, foreground_depth(target_foreground)
        index = int(rng.integers(len(self.images)))
        key = (index, *target.shape)
        if key not in self._cache:
            if len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)))
            fitted = fit_to_shape(self.images[index], target.shape)
            self._cache[key] = (fitted, foreground_depth(estimate_foreground(fitted)))
        return self._cache[key]


def fit_to_shape(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to cover ``shape`` keeping its aspect ratio, then centre-crop to exactly ``shape``."""
    height, width = shape
    if image.shape == (height, width):
        return image
    scale = max(height / image.shape[0], width / image.shape[1])
    new_h, new_w = max(height, round(image.shape[0] * scale)), max(width, round(image.shape[1] * scale))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])
