"""Estimate the body / organ region of a grey-level medical image.

Synthesised anomalies are confined to this region so that a lesion is never placed in the air around
a head or in the black margin of an ultrasound fan.

Rule (deliberately simple and predictable), on a smoothed copy at most ``work_size`` pixels wide:

1. ``low`` and ``high`` are the 0.5th and 99.5th grey-level percentiles. If ``high - low < min_contrast``
   (a constant or nearly constant image) there is **no foreground**: an all-False mask is returned.
2. *Air* is every pixel no brighter than ``low + air_level * (high - low)``, i.e. as dark as the darkest
   part of the image. The background is the air regions that touch the image border and cover at least
   ``min_air_area`` of the image (air around a head, the black margin of an ultrasound fan).
3. Everything else is foreground, so dark structures *enclosed* by tissue (ventricles, lungs, cysts) stay
   inside it, and an image with no dark border (a tightly cropped X-ray, a texture) is all foreground.
4. Thin bits are removed by a morphological opening and foreground components smaller than
   ``min_component`` times the largest one are dropped.

Tasks treat an empty foreground as "nothing to synthesise on" and return the image unchanged with an
empty mask (see :class:`~fusionmedclip_anomalib.synthesis.tasks.SynthesisTask`).
"""

from __future__ import annotations

import cv2
import numpy as np

from fusionmedclip_anomalib.synthesis.greyscale import to_grey


def estimate_foreground(
    image: np.ndarray,
    min_contrast: float = 10.0,
    air_level: float = 0.15,
    min_air_area: float = 0.005,
    min_component: float = 0.1,
    work_size: int = 128,
) -> np.ndarray:
    """Return a boolean (H, W) mask of the body / organ region of ``image`` (rule in the module docstring).

    Args:
        image: uint8 image, grey or colour (converted to grey).
        min_contrast: below this spread of grey levels (99.5th - 0.5th percentile) there is no foreground.
        air_level: air is at most this fraction of the grey-level spread above the darkest level.
        min_air_area: smallest border-touching air region, as a fraction of the image, counted as background.
        min_component: foreground components smaller than this fraction of the largest one are dropped.
        work_size: the estimate is made on a copy whose longer side is at most this many pixels (speed);
            the result is resized back to the input size.

    Returns:
        Boolean array of the input's height and width; all False when no foreground can be estimated.

    Example:
        >>> import numpy as np
        >>> img = np.zeros((64, 64), np.uint8); img[16:48, 16:48] = 200
        >>> fg = estimate_foreground(img)
        >>> bool(fg[32, 32]), bool(fg[2, 2])
        (True, False)
    """
    grey = to_grey(image)
    height, width = grey.shape
    scale = min(1.0, work_size / max(height, width))
    small = grey
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)
    cumulative = np.cumsum(np.bincount(small.ravel(), minlength=256))
    low = int(np.searchsorted(cumulative, 0.005 * small.size))
    high = int(np.searchsorted(cumulative, 0.995 * small.size))
    if high - low < min_contrast:
        return np.zeros((height, width), bool)

    side = min(small.shape)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_odd(0.03 * side), _odd(0.03 * side)))
    air = (small <= low + air_level * (high - low)).astype(np.uint8)
    air = cv2.morphologyEx(air, cv2.MORPH_OPEN, kernel)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(air, connectivity=8)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    border = [label for label in border if label > 0 and stats[label, cv2.CC_STAT_AREA] >= min_air_area * small.size]
    foreground = ~np.isin(labels, border) if border else np.ones(small.shape, bool)
    foreground = cv2.morphologyEx(foreground.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    foreground = _drop_small_components(foreground, min_component)
    if not foreground.any():
        return np.zeros((height, width), bool)
    if foreground.shape != (height, width):
        foreground = cv2.resize(foreground.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) > 0.5
    return foreground.astype(bool)


def _odd(value: float) -> int:
    return max(3, int(value) // 2 * 2 + 1)


def _drop_small_components(mask: np.ndarray, min_component: float) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= min_component * areas.max()) + 1
    return np.isin(labels, keep)


def foreground_depth(foreground: np.ndarray) -> np.ndarray:
    """Euclidean distance in pixels from each foreground pixel to the nearest background pixel or image edge.

    Zero outside the foreground. Tasks use it to place an anomaly (or take a patch) wholly inside tissue.
    """
    padded = np.pad(foreground.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
