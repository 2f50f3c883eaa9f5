"""What every synthesis task shares: input conversion, the foreground and the empty-foreground rule."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from fusionmedclip_anomalib.synthesis.foreground import estimate_foreground
from fusionmedclip_anomalib.synthesis.greyscale import to_grey

#: Pixel-valued parameters (blur sigmas) are given for an image whose shorter side is this long and
#: scale linearly with the shorter side, so a 448 px image gets twice the blur of a 224 px one.
REFERENCE_SIDE = 224


class SynthesisTask(ABC):
    """A way of turning a normal image into an (anomalous image, anomaly mask) pair.

    ``task(image, rng)`` converts the image to grey, estimates its foreground (unless one is given) and
    returns ``(out, mask)``: ``out`` uint8 (H, W), ``mask`` float32 (H, W) in [0, 1].

    **Empty-foreground rule**: when no foreground can be estimated (a constant or nearly constant image,
    see :func:`~fusionmedclip_anomalib.synthesis.foreground.estimate_foreground`) or the task finds no room
    for an anomaly, the image is returned unchanged with an all-zero mask, exactly as Identity would.
    """

    #: The name used in pool weights and YAML configs.
    name: str = ""

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator, foreground: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Synthesise one pair.

        Args:
            image: uint8 (H, W), (H, W, 3) or (H, W, 4); colour is converted to grey.
            rng: the only source of randomness.
            foreground: optional precomputed boolean (H, W) foreground (e.g. cached by a dataset).
        """
        check_rng(rng)
        grey = to_grey(image)
        if foreground is None:
            foreground = estimate_foreground(grey)
        elif foreground.shape != grey.shape:
            raise ValueError(f"foreground shape {foreground.shape} differs from image shape {grey.shape}")
        foreground = foreground.astype(bool, copy=False)
        if not foreground.any():
            return unchanged(grey)
        return self.synthesise(grey, foreground, rng)

    @abstractmethod
    def synthesise(
        self, image: np.ndarray, foreground: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Task-specific work on a grey image with a non-empty foreground; must not modify ``image``."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def check_rng(rng: object) -> None:
    """Reject anything but a ``numpy.random.Generator``: a bare seed would silently mean other draws."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")


def unchanged(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Identity result: a copy of the image and an all-zero mask."""
    return image.copy(), np.zeros(image.shape, np.float32)


def pixel_scale(shape: tuple[int, int]) -> float:
    """Factor applied to pixel-valued parameters for an image of ``shape`` (see :data:`REFERENCE_SIDE`)."""
    return min(shape) / REFERENCE_SIDE
