"""Structural tasks: foreign tissue (a patch of another normal image) put into the anomaly region."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

from fusionmedclip_anomalib.synthesis.masks import (
    Blob,
    MaskSampler,
    MaskShape,
    Region,
    expand_window,
    paste,
    sample_centre,
)
from fusionmedclip_anomalib.synthesis.ranges import check_range
from fusionmedclip_anomalib.synthesis.support import SupportSet
from fusionmedclip_anomalib.synthesis.tasks.base import SynthesisTask, pixel_scale


class PatchSource:
    """Draws a rotated and scaled patch of a support image, aligned to a window of the target image.

    The patch centre is drawn where the source's tissue is deep enough for the whole patch (so no air or
    body outline is pasted into the anomaly), else in the deepest part of the source's foreground, else
    anywhere. The affine map sends the target anomaly centre to the patch centre, rotated by an angle in
    ±``rotation`` degrees and scaled by a factor drawn from ``scale``.
    """

    def __init__(self, support: SupportSet, rotation: float, scale: tuple[float, float]) -> None:
        self.support = support
        self.rotation = float(rotation)
        self.scale = scale

    def __call__(
        self,
        target: np.ndarray,
        foreground: np.ndarray,
        region: Region,
        window: tuple[slice, slice],
        rng: np.random.Generator,
    ) -> np.ndarray:
        """The source pixels for ``window`` (uint8); windows may extend past the image (negative starts)."""
        source, depth = self.support.draw(target, foreground, rng)
        angle = math.radians(rng.uniform(-self.rotation, self.rotation))
        factor = rng.uniform(*self.scale)
        deepest = float(depth.max())
        needed = min(factor * max(region.ry, region.rx), 0.8 * deepest)
        candidates = depth >= needed if deepest > 0 else None
        src_y, src_x = sample_centre(candidates, source.shape, rng)
        cos, sin = factor * math.cos(angle), factor * math.sin(angle)
        linear = np.array([[cos, -sin], [sin, cos]], np.float64)
        offset = np.array([window[1].start - region.cx, window[0].start - region.cy])
        matrix = np.hstack([linear, (linear @ offset + np.array([src_x, src_y]))[:, None]])
        size = (window[1].stop - window[1].start, window[0].stop - window[0].start)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        return cv2.warpAffine(source, matrix, size, flags=flags, borderMode=cv2.BORDER_REFLECT_101)


class CutPaste(SynthesisTask):
    """Paste a rotated / scaled patch of another normal image inside an irregular mask (MediCLIP's task).

    The hard mask is blurred by ``edge_sigma`` (cut to the foreground) and used both to blend the patch and
    as the soft label, so the label is exactly where the image changed. A patch too similar to the tissue
    it replaces (mean absolute difference below ``min_difference``) is redrawn, up to 4 times.

    Args:
        support: other normal images (grey or colour uint8, any size) or a :class:`SupportSet`; empty means
            the image itself is the source (another place of it).
        size: anomaly extent as a fraction of the image side (per axis).
        shape: mask shape family.
        count: inclusive range of anomalies per image.
        rotation: patch rotation range, ± degrees.
        scale: patch scale range.
        edge_sigma: blur of the mask edge in pixels for a 224 px image (0 gives hard edges).
        min_difference: minimum mean absolute grey-level difference between patch and tissue.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> img = rng.integers(60, 200, (64, 64), dtype=np.uint8)
        >>> task = CutPaste(support=[rng.integers(0, 255, (80, 96), dtype=np.uint8)])
        >>> out, mask = task(img, rng, foreground=np.ones((64, 64), bool))
        >>> bool((out[mask == 0] == img[mask == 0]).all())
        True
    """

    name = "cutpaste"

    def __init__(
        self,
        support: Sequence[np.ndarray] | SupportSet = (),
        size: tuple[float, float] = (0.1, 0.6),
        shape: MaskShape = "perlin",
        count: tuple[int, int] = (1, 1),
        rotation: float = 45.0,
        scale: tuple[float, float] = (0.75, 1.25),
        edge_sigma: float = 1.0,
        min_difference: float = 8.0,
    ) -> None:
        self.sampler = MaskSampler(shape=shape, size=tuple(size), count=tuple(count))
        self.support = support if isinstance(support, SupportSet) else SupportSet(support)
        self.patches = PatchSource(self.support, rotation, check_range("scale", scale, 0.05))
        if edge_sigma < 0:
            raise ValueError(f"edge_sigma must be >= 0, got {edge_sigma}")
        self.edge_sigma = float(edge_sigma)
        self.min_difference = float(min_difference)

    def synthesise(
        self, image: np.ndarray, foreground: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        out = image.astype(np.float32)
        mask = np.zeros(image.shape, np.float32)
        sigma = self.edge_sigma * pixel_scale(image.shape)
        reach = math.ceil(3.0 * sigma) + 1 if sigma > 0 else 0
        for blob in self.sampler.sample_blobs(foreground, rng):
            window = expand_window(blob.window, reach, image.shape)
            soft = paste(blob.window, blob.pixels.astype(np.float32), window)
            if sigma > 0:
                soft = cv2.GaussianBlur(soft, (2 * reach - 1,) * 2, sigma, borderType=cv2.BORDER_CONSTANT)
            soft = np.clip(soft, 0.0, 1.0) * foreground[window]
            patch = _most_different_patch(self.patches, image, foreground, blob, window, rng, self.min_difference)
            current = out[window]
            out[window] = current + soft * (patch.astype(np.float32) - current)
            mask[window] = np.maximum(mask[window], soft)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask


def _most_different_patch(
    patches: PatchSource,
    image: np.ndarray,
    foreground: np.ndarray,
    blob: Blob,
    window: tuple[slice, slice],
    rng: np.random.Generator,
    min_difference: float,
    attempts: int = 4,
) -> np.ndarray:
    """Draw patches until one differs enough from the tissue under the blob; keep the most different one."""
    inner = (
        slice(blob.window[0].start - window[0].start, blob.window[0].stop - window[0].start),
        slice(blob.window[1].start - window[1].start, blob.window[1].stop - window[1].start),
    )
    tissue = image[blob.window][blob.pixels].astype(np.float32)
    best, best_difference = None, -1.0
    for _ in range(attempts):
        patch = patches(image, foreground, blob.region, window, rng)
        difference = float(np.abs(patch[inner][blob.pixels].astype(np.float32) - tissue).mean()) if tissue.size else 0.0
        if difference > best_difference:
            best, best_difference = patch, difference
        if difference >= min_difference:
            break
    return best


class EnhancedStructural(SynthesisTask):
    """Poisson (gradient-domain) blending of a foreign patch into the mask region.

    Solves min ∫_Y |∇X̂ - V|² with X̂ = X on the mask boundary, V the gradient of a rotated / scaled patch of
    a support image (``clone="normal"``) or, per pixel, the stronger of the patch's and the image's gradients
    (``"mixed"``), using OpenCV's ``seamlessClone`` on a crop around each anomaly. The anomaly keeps its
    foreign structure but joins the surrounding tissue without a visible seam. The mask is binary; pixels
    outside it never change.

    Args:
        support: other normal images or a :class:`SupportSet`; empty means the image itself is the source.
        size: anomaly extent as a fraction of the image side (per axis).
        shape: mask shape family.
        count: inclusive range of anomalies per image.
        rotation: patch rotation range, ± degrees.
        scale: patch scale range.
        clone: ``"normal"``, ``"mixed"`` or ``"random"`` (either, with equal probability, per anomaly).
        gradient_gain: range of a factor on the patch's contrast about its mean, i.e. on V: foreign tissue
            of the same modality often has gradients much like the host's, and a gain above 1 keeps the
            blended structure visible. (1, 1) is plain Poisson blending.
        min_difference: a blend whose mean absolute change inside the mask is below this is redrawn
            (up to 3 times; the strongest is kept).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> img = rng.integers(60, 200, (64, 64), dtype=np.uint8)
        >>> out, mask = EnhancedStructural()(img, rng, foreground=np.ones((64, 64), bool))
        >>> bool((out[mask == 0] == img[mask == 0]).all())
        True
    """

    name = "enhanced_structural"

    def __init__(
        self,
        support: Sequence[np.ndarray] | SupportSet = (),
        size: tuple[float, float] = (0.1, 0.5),
        shape: MaskShape = "perlin",
        count: tuple[int, int] = (1, 1),
        rotation: float = 45.0,
        scale: tuple[float, float] = (0.75, 1.25),
        clone: Literal["normal", "mixed", "random"] = "normal",
        gradient_gain: tuple[float, float] = (1.0, 1.5),
        min_difference: float = 4.0,
    ) -> None:
        if clone not in ("normal", "mixed", "random"):
            raise ValueError(f"clone must be 'normal', 'mixed' or 'random', got {clone!r}")
        self.sampler = MaskSampler(shape=shape, size=tuple(size), count=tuple(count))
        self.support = support if isinstance(support, SupportSet) else SupportSet(support)
        self.patches = PatchSource(self.support, rotation, check_range("scale", scale, 0.05))
        self.clone = clone
        self.gradient_gain = check_range("gradient_gain", gradient_gain, 0.0)
        self.min_difference = float(min_difference)

    def synthesise(
        self, image: np.ndarray, foreground: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        out = image.copy()
        mask = np.zeros(image.shape, np.float32)
        for blob in self.sampler.sample_blobs(foreground, rng):
            mode = self.clone if self.clone != "random" else ("normal", "mixed")[int(rng.integers(2))]
            flag = cv2.NORMAL_CLONE if mode == "normal" else cv2.MIXED_CLONE
            best, best_change = None, -1.0
            for _ in range(3):
                gain = rng.uniform(*self.gradient_gain)
                blended, change = _poisson_blend(out, foreground, blob, self.patches, flag, gain, rng)
                if change > best_change:
                    best, best_change = blended, change
                if change >= self.min_difference:
                    break
            rows, cols, values = best
            out[rows, cols] = values
            mask[blob.window] = np.maximum(mask[blob.window], blob.pixels)
        return out, mask


def _poisson_blend(
    image: np.ndarray,
    foreground: np.ndarray,
    blob: Blob,
    patches: PatchSource,
    flag: int,
    gain: float,
    rng: np.random.Generator,
) -> tuple[tuple[slice, slice, np.ndarray], float]:
    """Blend one patch into ``blob``; returns (rows, cols, new values) and the mean change inside the blob."""
    ys, xs = np.nonzero(blob.pixels)
    top, left = blob.window[0].start + int(ys.min()), blob.window[1].start + int(xs.min())
    height, width = int(ys.max() - ys.min()) + 1, int(xs.max() - xs.min()) + 1
    # seamlessClone needs the mask's bounding box strictly inside the destination: crop with a margin and
    # pad by replication where the crop leaves the image.
    margin = 2
    crop = (slice(top - margin, top + height + margin), slice(left - margin, left + width + margin))
    rows = slice(max(0, crop[0].start), min(image.shape[0], crop[0].stop))
    cols = slice(max(0, crop[1].start), min(image.shape[1], crop[1].stop))
    pads = (rows.start - crop[0].start, crop[0].stop - rows.stop, cols.start - crop[1].start, crop[1].stop - cols.stop)
    destination = cv2.copyMakeBorder(image[rows, cols], *pads, borderType=cv2.BORDER_REPLICATE)
    source = patches(image, foreground, blob.region, crop, rng)
    if gain != 1.0:
        # Only gradients matter to the solver, so scale about the mean and let the float result carry them.
        source = source.astype(np.float32)
        source = source.mean() + gain * (source - source.mean())
    clone_mask = np.zeros(destination.shape, np.uint8)
    tight = blob.pixels[int(ys.min()) : int(ys.max()) + 1, int(xs.min()) : int(xs.max()) + 1]
    clone_mask[margin : margin + height, margin : margin + width] = tight * np.uint8(255)
    centre = (margin + width // 2, margin + height // 2)
    if min(height, width) < 3:
        # Too small for a gradient-domain solve (its one-pixel rim is fixed): paste the patch directly.
        blended = np.rint(np.clip(source, 0, 255)).astype(np.uint8)
    else:
        # seamlessClone writes into its mask argument (OpenCV 4.x/5.x), hence the copy.
        source3, destination3 = cv2.merge([source] * 3), cv2.merge([destination] * 3)
        blended = cv2.seamlessClone(source3, destination3, clone_mask.copy(), centre, flag)[:, :, 0]
    blended = np.where(clone_mask > 0, blended, destination)
    change = float(np.abs(blended.astype(np.float32) - destination)[clone_mask > 0].mean())
    values = blended[pads[0] : pads[0] + (rows.stop - rows.start), pads[2] : pads[2] + (cols.stop - cols.start)]
    return (rows, cols, values), change
