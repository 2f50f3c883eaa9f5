"""Procedural medical-looking images with ground-truth lesions (numpy + OpenCV only).

Three modalities, each drawn in three steps from one seed, so an abnormal image and its lesion-free twin share
anatomy and noise exactly and differ only where the lesion is:

1. **anatomy** — a tissue map in normalised coordinates with per-image pose (rotation, shift, scale), organ
   size, intensity gain/gamma and a smooth bias field, so that normal images vary;
2. **lesion** (abnormal images only) — an irregular blob inside the organ that changes the tissue map; its
   binary footprint is the ground-truth mask;
3. **acquisition** — modality-like noise: Rician noise for MRI, Rayleigh speckle with log compression inside a
   fan-shaped field for ultrasound, quantum noise and blur for X-ray.

Lesion contrasts stay inside the normal intensity range so that a global intensity statistic is not a perfect
detector (``tests/unit/data/test_phantom.py`` checks that mean and max intensity stay below AUROC 1.0).

Example:
    >>> image, mask = render_phantom("brain", seed=7, size=128, abnormal=True)
    >>> image.dtype, image.shape, bool(mask.any())
    (dtype('uint8'), (128, 128), True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["MODALITIES", "render_phantom"]

MODALITIES = ("brain", "breast_us", "chest_xray")


@dataclass
class Scene:
    """A tissue map before acquisition noise, with the region where lesions may grow."""

    tissue: np.ndarray  # float32 [H, W]: intensity (MRI, X-ray) or echo reflectivity (ultrasound)
    organ: np.ndarray  # bool [H, W]
    u: np.ndarray  # float32 [H, W]: anatomy coordinates after the per-image pose
    v: np.ndarray
    extra: dict


# ---------------------------------------------------------------------------------------------------- helpers
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    y, x = np.meshgrid(axis, axis, indexing="ij")
    return x, y


def _posed_grid(
    rng: np.random.Generator, size: int, max_angle: float, max_shift: float, scale_range: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    x, y = _grid(size)
    angle = np.deg2rad(rng.uniform(-max_angle, max_angle))
    shift_x, shift_y = rng.uniform(-max_shift, max_shift, size=2)
    scale = rng.uniform(*scale_range)
    x, y = x - shift_x, y - shift_y
    u = (np.cos(angle) * x + np.sin(angle) * y) / scale
    v = (-np.sin(angle) * x + np.cos(angle) * y) / scale
    return u.astype(np.float32), v.astype(np.float32)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Band-limited noise with roughly unit standard deviation and ``cells`` blobs across the image."""
    coarse = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
    fine = cv2.resize(coarse, (size + size // cells * 3, size + size // cells * 3), interpolation=cv2.INTER_CUBIC)
    offset = size // cells
    field = fine[offset : offset + size, offset : offset + size]
    return (field - field.mean()) / (field.std() + 1e-6)


def _blob(
    u: np.ndarray,
    v: np.ndarray,
    cx: float,
    cy: float,
    radius: float,
    aspect: float,
    angle: float,
    rng: np.random.Generator,
    roughness: float,
    edge: float,
) -> np.ndarray:
    """Soft irregular blob in [0, 1] (1 inside); ``roughness`` wobbles the outline, ``edge`` softens it."""
    du, dv = u - cx, v - cy
    a = (du * np.cos(angle) + dv * np.sin(angle)) / radius
    b = (-du * np.sin(angle) + dv * np.cos(angle)) / (radius * aspect)
    theta = np.arctan2(b, a)
    outline = np.ones_like(theta)
    for order in (2, 3, 4, 6, 9):
        outline += roughness * rng.uniform(0.2, 1.0) / order**0.5 * np.cos(order * theta + rng.uniform(0, 2 * np.pi))
    distance = np.sqrt(a * a + b * b) / np.maximum(outline, 0.3)
    return (0.5 - 0.5 * np.tanh((distance - 1.0) / (2.0 * edge))).astype(np.float32)


def _ellipse(
    u: np.ndarray, v: np.ndarray, cx: float, cy: float, ax: float, ay: float, angle: float = 0.0
) -> np.ndarray:
    du, dv = u - cx, v - cy
    a = (du * np.cos(angle) + dv * np.sin(angle)) / ax
    b = (-du * np.sin(angle) + dv * np.cos(angle)) / ay
    return a * a + b * b


def _soft_inside(value: np.ndarray, width: float) -> np.ndarray:
    """Soft indicator of ``value < 1`` with a transition of ``width``."""
    return (0.5 - 0.5 * np.tanh((value - 1.0) / (2.0 * width))).astype(np.float32)


def _pick_centre(rng: np.random.Generator, allowed: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(allowed)
    index = rng.integers(len(ys))
    return float(u[ys[index], xs[index]]), float(v[ys[index], xs[index]])


def _finish(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gain = rng.uniform(0.8, 1.1)
    gamma = rng.uniform(0.85, 1.2)
    values = np.clip(values, 0.0, 1.0) ** gamma * gain
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------- brain MRI
def _brain_anatomy(rng: np.random.Generator, size: int) -> Scene:
    u, v = _posed_grid(rng, size, max_angle=12.0, max_shift=0.06, scale_range=(0.82, 1.02))
    head_ax, head_ay = rng.uniform(0.70, 0.80), rng.uniform(0.86, 0.95)
    head = _ellipse(u, v, 0.0, 0.0, head_ax, head_ay)
    brain_r2 = 0.86**2
    tissue = np.zeros_like(u)
    tissue += 0.78 * _soft_inside(head, 0.01)  # scalp fat (bright on T1)
    tissue -= 0.68 * _soft_inside(head / 0.93**2, 0.01)  # skull: dark ring
    brain_soft = _soft_inside(head / brain_r2, 0.01)
    wobble = 0.04 * _smooth_noise(rng, size, 6) + 0.025 * _smooth_noise(rng, size, 16)
    grey_level = rng.uniform(0.40, 0.50)
    white_level = grey_level + rng.uniform(0.15, 0.22)
    white = _soft_inside(head / (0.72 + wobble) ** 2, 0.03)
    # gyri: the cortex ribbon is cut by dark CSF-filled sulci
    theta = np.arctan2(v, u)
    sulci = np.cos(theta * rng.integers(16, 26) + 3.0 * _smooth_noise(rng, size, 7)) > 0.93
    depth_jitter = 0.05 * _smooth_noise(rng, size, 12)
    ribbon = (head > (0.76 + wobble + depth_jitter) ** 2) & (head < brain_r2)
    brain = grey_level + (white_level - grey_level) * white
    brain = np.where(ribbon & sulci, 0.16, brain)
    brain += 0.03 * _smooth_noise(rng, size, 18)
    # lateral ventricles (dark CSF), size varies a lot between subjects
    vent_scale = rng.uniform(0.6, 1.4)
    ventricles = np.zeros_like(u)
    for side in (-1.0, 1.0):
        inside = _ellipse(
            u,
            v,
            side * 0.10 * vent_scale**0.5,
            -0.04,
            0.055 * vent_scale,
            0.22 * vent_scale**0.7,
            side * np.deg2rad(18),
        )
        ventricles = np.maximum(ventricles, _soft_inside(inside, 0.04))
    brain = brain * (1 - ventricles) + 0.12 * ventricles
    falx = np.exp(-((u / 0.012) ** 2)) * (np.abs(v) > 0.30)
    brain = brain * (1 - 0.6 * falx)
    tissue = tissue * (1 - brain_soft) + brain * brain_soft
    tissue *= 1.0 + 0.08 * _smooth_noise(rng, size, 2)  # coil bias field
    organ = (head < 0.78**2) & (ventricles < 0.5)
    return Scene(tissue.astype(np.float32), organ, u, v, {"brain_level": grey_level})


def _brain_lesion(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    u, v = scene.u, scene.v
    cx, cy = _pick_centre(rng, scene.organ, u, v)
    radius = rng.uniform(0.08, 0.2)
    roughness = rng.uniform(0.05, 0.35)
    core = _blob(u, v, cx, cy, radius, rng.uniform(0.65, 1.0), rng.uniform(0, np.pi), rng, roughness, 0.03)
    core *= scene.organ
    kind = rng.choice(["enhancing", "necrotic", "cyst", "hypo"])
    tissue = scene.tissue.copy()
    if kind == "cyst":
        target = np.full_like(tissue, rng.uniform(0.10, 0.22))
    elif kind == "hypo":
        target = tissue * rng.uniform(0.55, 0.75)
    else:
        target = rng.uniform(0.62, 0.80) + 0.05 * _smooth_noise(rng, tissue.shape[0], 20)
        if kind == "necrotic":
            centre = _blob(u, v, cx, cy, radius * 0.5, 1.0, 0.0, rng, 0.2, 0.04)
            target = target * (1 - centre) + 0.18 * centre
    # perilesional oedema: part of the abnormality (like BraTS' whole-tumour label), so part of the mask
    edema = np.clip(_blob(u, v, cx, cy, radius * 1.4, 0.9, 0.0, rng, 0.3, 0.03) - core, 0, 1) * scene.organ
    edema *= rng.uniform(0.0, 1.0) < 0.6
    tissue = tissue * (1 - core) + target * core
    tissue = tissue * (1 - 0.15 * edema)
    return tissue, (core > 0.5) | (edema > 0.5)


def _brain_acquire(tissue: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(0.015, 0.04)
    real = tissue + sigma * rng.standard_normal(tissue.shape).astype(np.float32)
    imag = sigma * rng.standard_normal(tissue.shape).astype(np.float32)
    return np.sqrt(real * real + imag * imag)  # Rician magnitude


# ---------------------------------------------------------------------------------------------------- breast US
def _us_anatomy(rng: np.random.Generator, size: int) -> Scene:
    x, y = _grid(size)
    apex_y = rng.uniform(-1.35, -1.2)
    half_angle = np.deg2rad(rng.uniform(34, 42))
    depth = np.hypot(x, y - apex_y)
    angle = np.arctan2(x, y - apex_y)
    near, far = -0.95 - apex_y, rng.uniform(2.1, 2.3)
    fan = (np.abs(angle) < half_angle) & (depth > near) & (depth < far)
    # tissue layers follow depth below the skin line, with wavy interfaces
    below_skin = depth - near
    fat_end = rng.uniform(0.25, 0.55) + 0.06 * _smooth_noise(rng, size, 3)
    gland_end = fat_end + rng.uniform(0.55, 0.9) + 0.1 * _smooth_noise(rng, size, 3)
    reflect = np.full_like(x, 0.45)
    skin = below_skin < 0.06
    fat = (~skin) & (below_skin < fat_end)
    gland = (below_skin >= fat_end) & (below_skin < gland_end)
    muscle = below_skin >= gland_end
    reflect[skin] = 0.95
    reflect[fat] = rng.uniform(0.25, 0.35) + 0.06 * _smooth_noise(rng, size, 10)[fat]
    gland_texture = _smooth_noise(rng, size, 14)
    reflect[gland] = rng.uniform(0.55, 0.7) + 0.15 * gland_texture[gland]
    fibres = _smooth_noise(rng, size, 5) * 0.3 + np.sin(
        below_skin * rng.uniform(18, 26) + angle * 4.0 + 2.0 * _smooth_noise(rng, size, 3)
    )
    reflect[muscle] = (0.32 + 0.12 * fibres)[muscle]
    # Cooper's ligaments: bright thin curves crossing fat and gland
    ligaments = np.abs(np.sin(angle * rng.uniform(8, 14) + 2.0 * _smooth_noise(rng, size, 3))) < 0.06
    reflect = np.where(ligaments & (fat | gland), 0.85, reflect)
    # normal dark fat lobules: natural look-alikes of lesions
    u, v = angle / half_angle, below_skin
    for _ in range(rng.integers(2, 6)):
        cx, cy = rng.uniform(-0.8, 0.8), rng.uniform(0.08, 0.9)
        lobule = _blob(u, v, cx, cy, rng.uniform(0.06, 0.14), rng.uniform(0.4, 0.7), 0.0, rng, 0.1, 0.08)
        reflect = reflect * (1 - 0.55 * lobule)
    reflect = np.clip(reflect, 0.02, 1.0).astype(np.float32)
    organ = fan & (below_skin > 0.12) & (below_skin < gland_end - 0.05) & (np.abs(angle) < half_angle * 0.85)
    if organ.sum() < 0.05 * size * size:
        organ = fan & (below_skin > 0.12)
    return Scene(
        reflect,
        organ,
        u.astype(np.float32),
        v.astype(np.float32),
        {"fan": fan, "depth": below_skin, "angle": angle, "half_angle": half_angle},
    )


def _us_lesion(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    u, v = scene.u, scene.v
    cx, cy = _pick_centre(rng, scene.organ, u, v)
    malignant = rng.random() < 0.5
    radius = rng.uniform(0.12, 0.26)
    if malignant:  # irregular, taller than wide, posterior shadow
        body = _blob(u, v, cx, cy, radius, rng.uniform(1.1, 1.5), np.pi / 2, rng, rng.uniform(0.3, 0.6), 0.02)
        level = rng.uniform(0.08, 0.2)
    else:  # oval, wider than tall, circumscribed, may be a cyst with posterior enhancement
        body = _blob(u, v, cx, cy, radius, rng.uniform(0.5, 0.8), 0.0, rng, rng.uniform(0.02, 0.12), 0.02)
        level = rng.uniform(0.03, 0.25)
    body *= scene.extra["fan"]
    tissue = scene.tissue * (1 - body) + level * body
    # posterior acoustic feature directly below the lesion (outside the mask, as in BUSI's annotations)
    column = np.exp(-(((u - cx) / (radius * 1.2)) ** 2)) * (v > cy) * np.exp(-(v - cy) / 0.35) * (1 - body)
    factor = rng.uniform(0.88, 0.94) if malignant else rng.uniform(1.04, 1.1)
    tissue = tissue * (1 + (factor - 1) * column)
    return np.clip(tissue, 0.0, 1.0).astype(np.float32), body > 0.5


def _us_acquire(reflect: np.ndarray, rng: np.random.Generator, scene: Scene) -> np.ndarray:
    size = reflect.shape[0]
    field = rng.standard_normal((size, size, 2)).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), sigmaX=1.6, sigmaY=0.7)  # speckle grain: wider laterally
    envelope = np.hypot(field[..., 0], field[..., 1]) / 0.9
    echo = reflect * envelope
    tgc = np.exp(-scene.extra["depth"] * rng.uniform(0.15, 0.4))  # depth attenuation not fully compensated
    echo = echo * tgc
    compressed = np.log1p(30.0 * echo) / np.log1p(30.0)
    return np.where(scene.extra["fan"], compressed, 0.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- chest X-ray
def _cxr_anatomy(rng: np.random.Generator, size: int) -> Scene:
    u, v = _posed_grid(rng, size, max_angle=5.0, max_shift=0.05, scale_range=(0.88, 1.05))
    body = _soft_inside(_ellipse(u, v, 0.0, 0.15, rng.uniform(0.98, 1.1), 1.3), 0.03)
    tissue = 0.12 + 0.45 * body
    inspiration = rng.uniform(0.9, 1.1)
    top, base = -0.78 * inspiration, 0.42 * inspiration
    lungs = np.zeros_like(u)
    for side in (-1.0, 1.0):
        cx = side * rng.uniform(0.37, 0.43)
        half_width = rng.uniform(0.24, 0.30)
        t = np.clip((v - top) / (base - top), 0.0, 1.0)
        width = half_width * (0.30 + 0.70 * np.sqrt(t))
        lateral = side * (u - cx) / half_width
        floor = base + 0.16 * lateral - 0.10 * (1 - lateral**2)  # diaphragm dome, deep costophrenic angle
        inside = (np.abs(u - cx) < width) & (v > top) & (v < floor) & (side * u > 0.09)
        lungs = np.maximum(lungs, inside.astype(np.float32))
    lungs = cv2.GaussianBlur(lungs, (0, 0), sigmaX=size / 110)
    heart_w = rng.uniform(0.24, 0.34)
    heart = _soft_inside(_ellipse(u, v, 0.08, 0.26, heart_w, 0.22, np.deg2rad(-25)), 0.08)
    mediastinum = _soft_inside((u / 0.12) ** 2, 0.15) * _soft_inside(((v + 0.2) / 0.75) ** 2, 0.1)
    lungs = lungs * (1 - heart) * (1 - 0.8 * mediastinum)
    vessels = 0.5 + 0.5 * _smooth_noise(rng, size, 24)
    hilum = np.exp(-(((np.abs(u) - 0.2) / 0.12) ** 2 + ((v + 0.05) / 0.2) ** 2))
    air = 0.62 - 0.07 * vessels - 0.18 * hilum
    tissue = tissue * (1 - air * lungs) + 0.12 * heart
    tissue += 0.10 * _soft_inside((u / 0.06) ** 2, 0.1)  # spine
    # posterior ribs: arcs from the spine that bend downwards laterally, one periodic band per side
    spacing = 0.14 * inspiration
    ribs = np.zeros_like(u)
    for side in (-1.0, 1.0):
        t = side * u
        phase = (v + 0.80 + 0.08 * t - 0.55 * np.clip(t, 0, None) ** 2) / spacing
        offset = (phase - np.round(phase)) * spacing
        band = np.exp(-((offset / 0.022) ** 4)) * (phase > -0.5) * (phase < 9.5) * (t > 0.06) * (t < 0.85)
        ribs = np.maximum(ribs, band)
    tissue += 0.07 * ribs * body
    clavicle = np.exp(-(((v + 0.70 - 0.18 * np.abs(u)) / 0.03) ** 2)) * (np.abs(u) > 0.08) * (np.abs(u) < 0.62)
    tissue += 0.12 * clavicle
    tissue *= 1.0 + 0.05 * _smooth_noise(rng, size, 2)
    organ = (lungs > 0.6) & (ribs < 0.5)
    if organ.sum() < 0.02 * size * size:
        organ = lungs > 0.3
    return Scene(np.clip(tissue, 0.0, 1.0).astype(np.float32), organ, u, v, {"lungs": lungs})


def _cxr_lesion(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    u, v = scene.u, scene.v
    cx, cy = _pick_centre(rng, scene.organ, u, v)
    kind = rng.choice(["nodule", "consolidation", "mass"])
    if kind == "nodule":
        radius, roughness, edge, strength = rng.uniform(0.04, 0.08), 0.1, 0.05, rng.uniform(0.18, 0.3)
    elif kind == "mass":
        radius, roughness, edge, strength = rng.uniform(0.08, 0.14), 0.3, 0.05, rng.uniform(0.15, 0.25)
    else:
        radius, roughness, edge, strength = rng.uniform(0.12, 0.22), 0.6, 0.12, rng.uniform(0.1, 0.18)
    blob = _blob(u, v, cx, cy, radius, rng.uniform(0.6, 1.0), rng.uniform(0, np.pi), rng, roughness, edge)
    blob = blob * np.clip(scene.extra["lungs"], 0, 1)
    texture = 1.0 + 0.25 * _smooth_noise(rng, u.shape[0], 30)
    tissue = scene.tissue + strength * blob * texture
    return np.clip(tissue, 0.0, 1.0).astype(np.float32), blob > 0.5


def _cxr_acquire(tissue: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    blurred = cv2.GaussianBlur(tissue, (0, 0), sigmaX=rng.uniform(0.5, 1.0))
    return blurred + rng.uniform(0.008, 0.02) * rng.standard_normal(tissue.shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- entry point
_RENDERERS: dict[str, tuple[Callable, Callable, Callable]] = {
    "brain": (_brain_anatomy, _brain_lesion, lambda tissue, rng, scene: _brain_acquire(tissue, rng)),
    "breast_us": (_us_anatomy, _us_lesion, _us_acquire),
    "chest_xray": (_cxr_anatomy, _cxr_lesion, lambda tissue, rng, scene: _cxr_acquire(tissue, rng)),
}


def render_phantom(
    modality: str, seed: int | np.random.SeedSequence | list[int], size: int = 224, abnormal: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Render one phantom image.

    The anatomy, lesion and noise each get their own child seed, so ``abnormal=False`` with the same seed gives
    exactly the lesion-free twin of the abnormal image.

    Args:
        modality: ``"brain"``, ``"breast_us"`` or ``"chest_xray"``.
        seed: Seed of this image (anything ``numpy.random.SeedSequence`` accepts).
        size: Side of the square image in pixels.
        abnormal: Add a lesion.

    Returns:
        ``(image, mask)``: uint8 greyscale ``[size, size]`` and bool ``[size, size]`` (all False when normal).
    """
    if modality not in _RENDERERS:
        msg = f"unknown phantom modality {modality!r}; choose one of {', '.join(MODALITIES)}"
        raise ValueError(msg)
    if size < 32:
        msg = f"phantom images need at least 32 pixels per side, got {size}"
        raise ValueError(msg)
    anatomy, lesion, acquire = _RENDERERS[modality]
    if isinstance(seed, np.random.SeedSequence):  # a fresh copy: spawning mutates the caller's sequence
        sequence = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key)
    else:
        sequence = np.random.SeedSequence(seed)
    anatomy_seq, lesion_seq, noise_seq, finish_seq = sequence.spawn(4)
    scene = anatomy(np.random.default_rng(anatomy_seq), size)
    tissue, mask = scene.tissue, np.zeros((size, size), dtype=bool)
    if abnormal:
        tissue, mask = lesion(scene, np.random.default_rng(lesion_seq))
    image = acquire(tissue, np.random.default_rng(noise_seq), scene)
    return _finish(image, np.random.default_rng(finish_seq)), mask
