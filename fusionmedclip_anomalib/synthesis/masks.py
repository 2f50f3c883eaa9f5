"""Anomaly masks: where a synthesised lesion goes and what shape it has.

A mask is built from one or more :class:`Region` s (centre, semi-axes, rotation). Each region is drawn as
an ellipse, a rectangle or an irregular blob (thresholded Perlin noise inside a soft elliptical
envelope) and intersected with the foreground. Sizes are fractions of the image side, drawn
independently for height and width, so non-square images get proportionally sized anomalies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fusionmedclip_anomalib.synthesis.ranges import check_range

MaskShape = Literal["perlin", "ellipse", "rectangle", "random"]
SHAPES: tuple[str, ...] = ("perlin", "ellipse", "rectangle")


@dataclass(frozen=True)
class Region:
    """An oriented box / ellipse in pixel coordinates.

    Attributes:
        cy: centre row.
        cx: centre column.
        ry: semi-axis along the region's own vertical axis, in pixels.
        rx: semi-axis along the region's own horizontal axis, in pixels.
        angle: rotation in radians (counter-clockwise in image coordinates).
    """

    cy: float
    cx: float
    ry: float
    rx: float
    angle: float = 0.0

    def bbox(self, shape: tuple[int, int]) -> tuple[slice, slice]:
        """Row and column slices of the image window covering the region (clipped to the image)."""
        cos, sin = abs(math.cos(self.angle)), abs(math.sin(self.angle))
        half_y = self.ry * cos + self.rx * sin
        half_x = self.rx * cos + self.ry * sin
        y0, y1 = max(0, math.floor(self.cy - half_y)), min(shape[0], math.ceil(self.cy + half_y) + 1)
        x0, x1 = max(0, math.floor(self.cx - half_x)), min(shape[1], math.ceil(self.cx + half_x) + 1)
        return slice(y0, y1), slice(x0, x1)

    def local_coordinates(self, window: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
        """Normalised region coordinates (u, v) of every pixel in ``window``; the region is |u|, |v| <= 1."""
        ys = np.arange(window[0].start, window[0].stop, dtype=np.float32)[:, None] - self.cy
        xs = np.arange(window[1].start, window[1].stop, dtype=np.float32)[None, :] - self.cx
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        u = (cos * xs + sin * ys) / max(self.rx, 0.5)
        v = (-sin * xs + cos * ys) / max(self.ry, 0.5)
        return u, v


def perlin_noise(shape: tuple[int, int], cells: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Gradient (Perlin) noise of ``shape`` with ``cells`` lattice cells per axis, values roughly in [-1, 1].

    Example:
        >>> noise = perlin_noise((32, 48), (2, 3), np.random.default_rng(0))
        >>> noise.shape, noise.dtype
        ((32, 48), dtype('float32'))
    """
    height, width = shape
    cells_y, cells_x = max(1, int(cells[0])), max(1, int(cells[1]))
    angles = rng.uniform(0.0, 2.0 * math.pi, (cells_y + 1, cells_x + 1))
    grad_y, grad_x = np.sin(angles), np.cos(angles)
    # Bilinear blending (with the fade curve) of the four corner dot products factorises per axis, so the
    # whole field is two small matrix products: noise = Py Gy Qx^T + Qy Gx Px^T.
    weight_y, ramp_y = _axis_factors(height, cells_y)
    weight_x, ramp_x = _axis_factors(width, cells_x)
    noise = ramp_y @ grad_y @ weight_x.T + weight_y @ grad_x @ ramp_x.T
    return (noise * math.sqrt(2.0)).astype(np.float32)


def _axis_factors(length: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis interpolation matrices (length x cells+1): fade weights, and fade weights x corner offsets."""
    position = (np.arange(length) + 0.5) * (cells / length)
    index = np.minimum(position.astype(np.int64), cells - 1)
    fraction = position - index
    fade = fraction * fraction * fraction * (fraction * (fraction * 6.0 - 15.0) + 10.0)
    rows = np.arange(length)
    weight = np.zeros((length, cells + 1))
    ramp = np.zeros((length, cells + 1))
    weight[rows, index], weight[rows, index + 1] = 1.0 - fade, fade
    ramp[rows, index], ramp[rows, index + 1] = (1.0 - fade) * fraction, fade * (fraction - 1.0)
    return weight, ramp


def fractal_noise(
    shape: tuple[int, int], cells: int, rng: np.random.Generator, octaves: int = 3, persistence: float = 0.5
) -> np.ndarray:
    """Sum of ``octaves`` Perlin layers, each with twice the cells and ``persistence`` times the amplitude.

    The result is rescaled to a maximum absolute value of 1.
    """
    total = np.zeros(shape, np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        n = cells * 2**octave
        total += amplitude * perlin_noise(shape, (n, n), rng)
        amplitude *= persistence
    peak = float(np.abs(total).max())
    return total / peak if peak > 0 else total


def draw_region(
    region: Region, shape: tuple[int, int], kind: str, rng: np.random.Generator
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Rasterise one region; returns its window and a boolean array of the window's size."""
    window = region.bbox(shape)
    u, v = region.local_coordinates(window)
    if kind == "ellipse":
        return window, u * u + v * v <= 1.0
    if kind == "rectangle":
        return window, (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    if kind == "perlin":
        radius2 = u * u + v * v
        size = (window[0].stop - window[0].start, window[1].stop - window[1].start)
        noise = fractal_noise(size, int(rng.integers(2, 5)), rng, octaves=3)
        # An elliptical bias keeps the blob connected around the centre; the noise makes its edge irregular.
        return window, (radius2 <= 1.0) & ((1.0 - radius2) + 0.8 * noise > 0.35)
    raise ValueError(f"unknown mask shape {kind!r}; known: {', '.join(SHAPES)}")


def sample_centre(candidates: np.ndarray | None, shape: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
    """A uniformly drawn pixel among the True pixels of ``candidates`` (anywhere if ``None``)."""
    if candidates is None:
        return int(rng.integers(shape[0])), int(rng.integers(shape[1]))
    # Rejection sampling is fast when the candidates cover much of the image; fall back to an exact draw.
    ys, xs = rng.integers(shape[0], size=32), rng.integers(shape[1], size=32)
    hits = np.flatnonzero(candidates[ys, xs])
    if hits.size:
        return int(ys[hits[0]]), int(xs[hits[0]])
    flat = np.flatnonzero(candidates)
    if flat.size == 0:
        raise ValueError("no candidate pixel to place an anomaly on")
    index = int(flat[rng.integers(flat.size)])
    return index // shape[1], index % shape[1]


@dataclass
class MaskSampler:
    """Draws anomaly masks of a given shape family and size, confined to a foreground.

    Args:
        shape: ``"perlin"`` (irregular blob), ``"ellipse"``, ``"rectangle"`` or ``"random"`` (one of the three
            per anomaly).
        size: range of the anomaly's extent (its full width / height) as a fraction of the image side, drawn
            independently per axis.
        count: inclusive range of the number of anomalies per image.
        max_rotation: rotations are drawn uniformly in ±``max_rotation`` degrees.
        min_pixels: a drawn anomaly covering fewer foreground pixels than this is redrawn (up to 8 tries),
            then replaced by an ellipse around its centre, which always holds at least the centre pixel.

    Example:
        >>> sampler = MaskSampler(shape="ellipse", size=(0.2, 0.4))
        >>> fg = np.ones((64, 64), bool)
        >>> mask, regions = sampler(fg, np.random.default_rng(0))
        >>> mask.dtype, mask.shape, len(regions), bool(mask.any())
        (dtype('bool'), (64, 64), 1, True)
    """

    shape: MaskShape = "perlin"
    size: tuple[float, float] = (0.1, 0.5)
    count: tuple[int, int] = (1, 1)
    max_rotation: float = 180.0
    min_pixels: int = 16

    def __post_init__(self) -> None:
        if self.shape not in (*SHAPES, "random"):
            raise ValueError(f"unknown mask shape {self.shape!r}; known: {', '.join((*SHAPES, 'random'))}")
        self.size = check_range("size", self.size, 0.0, 1.0)
        if not 1 <= self.count[0] <= self.count[1]:
            raise ValueError(f"count must satisfy 1 <= low <= high, got {self.count}")

    def sample_region(self, image_shape: tuple[int, int], centre: tuple[int, int], rng: np.random.Generator) -> Region:
        """A region of random size and rotation centred on ``centre``."""
        height, width = image_shape
        fy, fx = rng.uniform(*self.size, size=2)
        angle = math.radians(rng.uniform(-self.max_rotation, self.max_rotation))
        return Region(centre[0], centre[1], max(1.0, 0.5 * fy * height), max(1.0, 0.5 * fx * width), angle)

    def sample_blobs(self, foreground: np.ndarray, rng: np.random.Generator) -> list[Blob]:
        """Draw the anomalies one by one; each blob lies inside ``foreground``."""
        shape = foreground.shape
        blobs: list[Blob] = []
        for _ in range(int(rng.integers(self.count[0], self.count[1] + 1))):
            kind = self.shape if self.shape != "random" else SHAPES[int(rng.integers(len(SHAPES)))]
            for _attempt in range(8):
                region = self.sample_region(shape, sample_centre(foreground, shape, rng), rng)
                window, pixels = draw_region(region, shape, kind, rng)
                pixels &= foreground[window]
                if pixels.sum() >= self.min_pixels:
                    break
            else:
                window, pixels = draw_region(region, shape, "ellipse", rng)
                pixels &= foreground[window]
            blobs.append(Blob(region, window, pixels))
        return blobs

    def __call__(self, foreground: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[Region]]:
        """Draw the mask: boolean (H, W), True inside the anomalies and inside ``foreground`` only."""
        mask = np.zeros(foreground.shape, bool)
        blobs = self.sample_blobs(foreground, rng)
        for blob in blobs:
            mask[blob.window] |= blob.pixels
        return mask, [blob.region for blob in blobs]


@dataclass(frozen=True)
class Blob:
    """One drawn anomaly: its region, the image window around it and its boolean pixels in that window."""

    region: Region
    window: tuple[slice, slice]
    pixels: np.ndarray


def expand_window(window: tuple[slice, slice], margin: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """``window`` grown by ``margin`` pixels on every side, clipped to the image."""
    rows, cols = window
    return (
        slice(max(0, rows.start - margin), min(shape[0], rows.stop + margin)),
        slice(max(0, cols.start - margin), min(shape[1], cols.stop + margin)),
    )


def paste(window: tuple[slice, slice], values: np.ndarray, into: tuple[slice, slice]) -> np.ndarray:
    """Place an array defined on ``window`` into a zero array defined on the larger window ``into``."""
    out = np.zeros((into[0].stop - into[0].start, into[1].stop - into[1].start), values.dtype)
    top, left = window[0].start - into[0].start, window[1].start - into[1].start
    out[top : top + values.shape[0], left : left + values.shape[1]] = values
    return out
