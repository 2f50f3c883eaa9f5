"""Deformation tasks: tissue displaced by a mass (source) or a smooth non-rigid distortion (guided)."""

from __future__ import annotations

import math
from abc import abstractmethod

import numpy as np

from fusionmedclip_anomalib.synthesis.deformation import Displacement, radial_source_field, smooth_random_field
from fusionmedclip_anomalib.synthesis.foreground import estimate_foreground, foreground_depth
from fusionmedclip_anomalib.synthesis.greyscale import to_grey
from fusionmedclip_anomalib.synthesis.masks import Region, sample_centre
from fusionmedclip_anomalib.synthesis.ranges import check_range
from fusionmedclip_anomalib.synthesis.tasks.base import SynthesisTask, unchanged


class DeformationTask(SynthesisTask):
    """A task whose anomaly is a warp; :meth:`sample_displacement` exposes the field it applies."""

    def sample_displacement(
        self, image: np.ndarray, rng: np.random.Generator, foreground: np.ndarray | None = None
    ) -> Displacement | None:
        """The displacement ``task(image, rng)`` would apply with the same ``rng`` state (None: no room)."""
        grey = to_grey(image)
        foreground = estimate_foreground(grey) if foreground is None else foreground.astype(bool, copy=False)
        if not foreground.any():
            return None
        return self.displacement(foreground, rng)

    @abstractmethod
    def displacement(self, foreground: np.ndarray, rng: np.random.Generator) -> Displacement | None:
        """Draw the displacement for a non-empty boolean foreground (None: no room for one)."""

    def synthesise(
        self, image: np.ndarray, foreground: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        displacement = self.displacement(foreground, rng)
        if displacement is None:
            return unchanged(image)
        return displacement.apply(image), displacement.mask.astype(np.float32)


class SourceDeformation(DeformationTask):
    """Push tissue away from a centre, as a growing mass would (MediCLIP's "source" task).

    An ellipse whose full extent is a ``size`` fraction of the image side is placed wholly inside the
    foreground (shrunk to the largest that fits if needed; the image is returned unchanged if not even a
    ``min_radius`` pixel one fits). Inside it, the output at normalised radius t samples the input at
    ``s(t) = t - strength * (t - t**f) * (1 - t**2)`` with f = 2^U(``log2_exponent``): see
    :func:`~fusionmedclip_anomalib.synthesis.deformation.radial_source_field` for why this form of the
    SPEC's d' = d^f / d_max^(f-1) law. The mask is the (binary) ellipse.

    Args:
        size: range of the ellipse extent as a fraction of the image side (per axis).
        log2_exponent: f = 2 ** U(low, high); the SPEC's f = 2^U(0.5, 2).
        strength: range of the centre compression; the centre is magnified by 1 / (1 - strength).
        min_radius: smallest semi-axis in pixels worth deforming.

    Example:
        >>> import numpy as np
        >>> img = (np.indices((64, 64)).sum(0) * 2).astype(np.uint8)
        >>> out, mask = SourceDeformation()(img, np.random.default_rng(0), foreground=np.ones((64, 64), bool))
        >>> bool((out[mask == 0] == img[mask == 0]).all()), bool(mask.any())
        (True, True)
    """

    name = "source_deformation"

    def __init__(
        self,
        size: tuple[float, float] = (0.2, 0.6),
        log2_exponent: tuple[float, float] = (0.5, 2.0),
        strength: tuple[float, float] = (0.6, 0.9),
        min_radius: float = 3.0,
    ) -> None:
        self.size = check_range("size", size, 0.0, 1.0)
        self.log2_exponent = check_range("log2_exponent", log2_exponent, 1e-3)
        self.strength = check_range("strength", strength, 1e-3, 0.99)
        self.min_radius = float(min_radius)

    def displacement(self, foreground: np.ndarray, rng: np.random.Generator) -> Displacement | None:
        height, width = foreground.shape
        fy, fx = rng.uniform(*self.size, size=2)
        ry, rx = max(1.0, 0.5 * fy * height), max(1.0, 0.5 * fx * width)
        angle = rng.uniform(-math.pi, math.pi)
        exponent = 2.0 ** rng.uniform(*self.log2_exponent)
        strength = rng.uniform(*self.strength)

        distance = foreground_depth(foreground)
        reach = max(ry, rx)
        fits = distance >= reach
        if not fits.any():
            deepest = float(distance.max())
            if deepest < self.min_radius:
                return None
            ry, rx = ry * deepest / reach, rx * deepest / reach
            fits = distance >= deepest - 0.5
        cy, cx = sample_centre(fits, foreground.shape, rng)
        return radial_source_field(Region(cy, cx, ry, rx, angle), foreground.shape, exponent, strength)


class GuidedDeformation(DeformationTask):
    """A smooth non-rigid distortion confined to the foreground that never folds.

    An ellipse is centred on a foreground pixel (at least half its mean radius deep when the foreground allows
    it); inside it a random smooth field (cubic upsampling of random
    vectors on a coarse grid, mixed with a radial expansion or contraction about the centre) is multiplied by a
    C1 bump and by a blurred, eroded foreground, so it is exactly zero outside the foreground. Its largest
    displacement is ``amplitude`` times the mean semi-axis, reduced where needed so that the field's
    Lipschitz constant stays below ``lipschitz`` < 1: the warp is invertible with a positive Jacobian
    determinant. The mask is the ellipse within the foreground.

    Args:
        size: range of the ellipse extent as a fraction of the image side (per axis).
        amplitude: range of the largest displacement as a fraction of the mean semi-axis.
        control_points: inclusive range of the coarse grid size of the random component.
        radial_share: range of the weight of the radial (mass-effect) component, the rest being random.
        lipschitz: upper bound on the field's Lipschitz constant (< 1).
        attempts: placements tried before giving up (a foreground too thin for any displacement).

    Example:
        >>> import numpy as np
        >>> img = (np.indices((64, 64)).sum(0) * 2).astype(np.uint8)
        >>> out, mask = GuidedDeformation()(img, np.random.default_rng(0), foreground=np.ones((64, 64), bool))
        >>> out.shape, bool(mask.any())
        ((64, 64), True)
    """

    name = "guided_deformation"

    def __init__(
        self,
        size: tuple[float, float] = (0.2, 0.6),
        amplitude: tuple[float, float] = (0.15, 0.35),
        control_points: tuple[int, int] = (3, 5),
        radial_share: tuple[float, float] = (0.0, 0.7),
        lipschitz: float = 0.8,
        attempts: int = 4,
    ) -> None:
        self.size = check_range("size", size, 0.0, 1.0)
        self.amplitude = check_range("amplitude", amplitude, 0.0)
        if not 2 <= control_points[0] <= control_points[1]:
            raise ValueError(f"control_points must satisfy 2 <= low <= high, got {control_points}")
        self.control_points = (int(control_points[0]), int(control_points[1]))
        self.radial_share = check_range("radial_share", radial_share, 0.0, 1.0)
        if not 0.0 < lipschitz < 1.0:
            raise ValueError(f"lipschitz must be in (0, 1), got {lipschitz}")
        self.lipschitz = float(lipschitz)
        self.attempts = int(attempts)

    def displacement(self, foreground: np.ndarray, rng: np.random.Generator) -> Displacement | None:
        height, width = foreground.shape
        margin_sigma = max(1.0, 0.02 * min(height, width))
        distance = foreground_depth(foreground)
        for _ in range(self.attempts):
            fy, fx = rng.uniform(*self.size, size=2)
            ry, rx = max(2.0, 0.5 * fy * height), max(2.0, 0.5 * fx * width)
            # Prefer centres at least half a radius deep in the foreground: the field must fade out at the
            # foreground edge, and a steep fade would force a tiny amplitude to keep the warp invertible.
            deep = distance >= 0.25 * (ry + rx)
            cy, cx = sample_centre(deep if deep.any() else foreground, foreground.shape, rng)
            region = Region(cy, cx, ry, rx, rng.uniform(-math.pi, math.pi))
            amplitude = rng.uniform(*self.amplitude) * 0.5 * (region.ry + region.rx)
            field = smooth_random_field(
                region,
                distance,
                rng,
                amplitude,
                control_points=int(rng.integers(self.control_points[0], self.control_points[1] + 1)),
                radial_share=rng.uniform(*self.radial_share),
                lipschitz=self.lipschitz,
                margin_sigma=margin_sigma,
            )
            if float(np.abs(field.dy).max(initial=0.0) + np.abs(field.dx).max(initial=0.0)) >= 0.5:
                return field
        return None
