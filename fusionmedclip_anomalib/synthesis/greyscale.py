"""Bring any 8-bit image the synthesis tasks receive to one grey-level channel."""

from __future__ import annotations

import cv2
import numpy as np


def to_grey(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a contiguous grey-level ``uint8`` array of shape (H, W).

    Accepts (H, W), (H, W, 1), RGB (H, W, 3) and RGBA (H, W, 4) arrays of dtype ``uint8``. Colour is
    converted with the ITU-R BT.601 luma weights (OpenCV's ``RGB2GRAY``); the alpha channel is dropped.
    A grey input is returned as is (no copy) when it is already contiguous.

    Raises:
        TypeError: if ``image`` is not a ``uint8`` numpy array.
        ValueError: if its shape is not one of the above or it is empty.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image in [0, 255], got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGBA2GRAY)
    if image.ndim != 2:
        raise ValueError(f"expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image of shape {image.shape}")
    return np.ascontiguousarray(image)
