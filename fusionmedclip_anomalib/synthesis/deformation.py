"""Displacement fields for the deformation tasks, the warp that applies them and the checks on them.

Convention: a displacement field is a float32 array of shape (H, W, 2) holding (dy, dx) in pixels, and the
warped image is ``out(p) = image(p + u(p))`` (backward mapping, bilinear interpolation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fusionmedclip_anomalib.synthesis.masks import Region


@dataclass(frozen=True)
class Displacement:
    """A displacement that is non-zero only inside ``window`` of an image of ``shape``.

    Attributes:
        shape: (H, W) of the image it applies to.
        window: row and column slices where the field may be non-zero.
        dy: row displacement inside the window, float32.
        dx: column displacement inside the window, float32.
        mask: boolean (H, W) anomaly label of the deformation.
    """

    shape: tuple[int, int]
    window: tuple[slice, slice]
    dy: np.ndarray
    dx: np.ndarray
    mask: np.ndarray

    @property
    def field(self) -> np.ndarray:
        """The full (H, W, 2) field, (dy, dx) in pixels."""
        full = np.zeros((*self.shape, 2), np.float32)
        full[self.window[0], self.window[1], 0] = self.dy
        full[self.window[0], self.window[1], 1] = self.dx
        return full

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Warp a grey uint8 image; pixels outside the window are copied unchanged."""
        out = image.copy()
        rows, cols = self.window
        ys = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None] + self.dy
        xs = np.arange(cols.start, cols.stop, dtype=np.float32)[None, :] + self.dx
        out[rows, cols] = cv2.remap(image, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        return out


def radial_source_field(region: Region, shape: tuple[int, int], exponent: float, strength: float) -> Displacement:
    """Mass effect: pixels inside the elliptical ``region`` are pushed away from its centre.

    With t the normalised elliptical radius (t = 1 on the rim), the output at t samples the input at radius
    ``s(t) = t - strength * (t - t**f) * (1 - t**2)``.

    This is the SPEC's law ``d' = d^f / d_max^(f-1)`` (s = t^f, the case strength = 1 without the last
    factor) made safe: the SPEC's law has a zero Jacobian at the centre and a kink on the rim. The factor
    ``(1 - t**2)`` makes the displacement vanish with zero slope on the rim (a C1 field) and
    ``strength < 1`` keeps the Jacobian determinant ``(s/t) * s'`` at least ``(1 - strength)**2 > 0``
    everywhere, so the warp is invertible. f close to 1 concentrates the expansion at the centre; a large f
    magnifies most of the ellipse nearly uniformly.

    Args:
        region: the deformed ellipse.
        shape: image (H, W).
        exponent: f > 1.
        strength: in (0, 1); the centre is magnified by 1 / (1 - strength).
    """
    if exponent <= 1.0 or not 0.0 < strength < 1.0:
        raise ValueError(f"need exponent > 1 and 0 < strength < 1, got {exponent}, {strength}")
    window = region.bbox(shape)
    u, v = region.local_coordinates(window)
    radius = np.sqrt(u * u + v * v)
    inside = radius < 1.0
    clipped = np.minimum(radius, 1.0)
    # s(t) / t - 1: the relative displacement towards the centre of the sampling position.
    scale = np.where(inside, -strength * (1.0 - np.power(clipped, exponent - 1.0)) * (1.0 - clipped * clipped), 0.0)
    scale = scale.astype(np.float32)
    ys = np.arange(window[0].start, window[0].stop, dtype=np.float32)[:, None] - region.cy
    xs = np.arange(window[1].start, window[1].stop, dtype=np.float32)[None, :] - region.cx
    mask = np.zeros(shape, bool)
    mask[window] = inside
    return Displacement(shape, window, ys * scale, xs * scale, mask)


def smooth_random_field(
    region: Region,
    depth: np.ndarray,
    rng: np.random.Generator,
    amplitude: float,
    control_points: int = 4,
    radial_share: float = 0.5,
    lipschitz: float = 0.7,
    margin_sigma: float = 2.0,
) -> Displacement:
    """A smooth random displacement inside the elliptical ``region``, vanishing outside the foreground.

    ``depth`` is the foreground depth map (:func:`~fusionmedclip_anomalib.synthesis.foreground.foreground_depth`).

    The field is a cubic upsampling of random vectors on a ``control_points`` x ``control_points`` grid plus a
    radial expansion / contraction about the region centre (``radial_share`` of the amplitude), multiplied by
    a C1 bump that is 1 at the centre and 0 on the ellipse, and by a blurred, eroded foreground so it is
    exactly zero outside the foreground. It is scaled so the largest displacement is ``amplitude`` pixels,
    then scaled down where needed so that its Lipschitz constant (largest Frobenius norm of the discrete
    gradient) is at most ``lipschitz`` < 1: the map p -> p + u(p) is then injective and its Jacobian
    determinant positive, so the warp never folds.
    """
    if not 0.0 < lipschitz < 1.0:
        raise ValueError(f"lipschitz must be in (0, 1), got {lipschitz}")
    shape = depth.shape
    window = region.bbox(shape)
    u, v = region.local_coordinates(window)
    radius2 = u * u + v * v
    bump = np.square(np.clip(1.0 - radius2, 0.0, 1.0))
    height, width = bump.shape

    coarse = rng.standard_normal((2, control_points, control_points)).astype(np.float32)
    rand_y = cv2.resize(coarse[0], (width, height), interpolation=cv2.INTER_CUBIC)
    rand_x = cv2.resize(coarse[1], (width, height), interpolation=cv2.INTER_CUBIC)
    rand_norm = float(np.sqrt(rand_y**2 + rand_x**2).max()) or 1.0
    ys = np.arange(window[0].start, window[0].stop, dtype=np.float32)[:, None] - region.cy
    xs = np.arange(window[1].start, window[1].stop, dtype=np.float32)[None, :] - region.cx
    mean_radius = 0.5 * (region.ry + region.rx)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    dy = (1.0 - radial_share) * rand_y / rand_norm + radial_share * sign * ys / mean_radius
    dx = (1.0 - radial_share) * rand_x / rand_norm + radial_share * sign * xs / mean_radius

    envelope = bump * _foreground_weight(depth, window, margin_sigma)
    dy, dx = (dy * envelope).astype(np.float32), (dx * envelope).astype(np.float32)
    peak = float(np.sqrt(dy * dy + dx * dx).max())
    if peak > 0:
        dy, dx = dy * (amplitude / peak), dx * (amplitude / peak)
        steepest = float(gradient_norm(dy, dx).max())
        if steepest > lipschitz:
            dy, dx = dy * (lipschitz / steepest), dx * (lipschitz / steepest)
    mask = np.zeros(shape, bool)
    mask[window] = (radius2 < 1.0) & (depth[window] > 0)
    return Displacement(shape, window, dy.astype(np.float32), dx.astype(np.float32), mask)


def _foreground_weight(depth: np.ndarray, window: tuple[slice, slice], sigma: float) -> np.ndarray:
    """Blurred foreground, eroded first so the blur's support stays inside it; image edges count as background.

    The erosion is a threshold on the foreground depth (distance to background), much cheaper than a
    morphological erosion. The blur kernel is a square of half-width r, which reaches r * sqrt(2) pixels
    along its diagonal: that is how deep a pixel must be to keep its blurred weight inside the foreground.
    """
    radius = int(np.ceil(3.0 * sigma))
    rows, cols = window
    padded = np.pad(depth, radius, constant_values=0.0)
    crop = padded[rows.start : rows.stop + 2 * radius, cols.start : cols.stop + 2 * radius]
    eroded = (crop > radius * math.sqrt(2.0)).astype(np.float32)
    blurred = cv2.GaussianBlur(eroded, (2 * radius + 1, 2 * radius + 1), sigma, borderType=cv2.BORDER_CONSTANT)
    return blurred[radius : radius + rows.stop - rows.start, radius : radius + cols.stop - cols.start]


def gradient_norm(dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Per-pixel Frobenius norm of the discrete (central-difference) gradient of a displacement field."""
    parts = [np.gradient(c, axis=a) if c.shape[a] > 1 else np.zeros_like(c) for c in (dy, dx) for a in (0, 1)]
    return np.sqrt(sum(p * p for p in parts))


def jacobian_determinant(field: np.ndarray) -> np.ndarray:
    """Per-pixel determinant of the Jacobian of p -> p + u(p) for an (H, W, 2) (dy, dx) field.

    Positive everywhere means the warp preserves orientation locally (no folding).

    Example:
        >>> float(jacobian_determinant(np.zeros((8, 8, 2), np.float32)).min())
        1.0
    """
    dy, dx = field[..., 0].astype(np.float64), field[..., 1].astype(np.float64)
    dyy, dyx = np.gradient(dy)
    dxy, dxx = np.gradient(dx)
    return (1.0 + dyy) * (1.0 + dxx) - dyx * dxy
