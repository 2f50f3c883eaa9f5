"""Deformation fields: smooth, zero outside their region, never folding (positive Jacobian determinant)."""

import math

import numpy as np
import pytest

from fusionmedclip_anomalib.synthesis import GuidedDeformation, SourceDeformation, jacobian_determinant
from fusionmedclip_anomalib.synthesis.deformation import gradient_norm, radial_source_field, smooth_random_field
from fusionmedclip_anomalib.synthesis.foreground import foreground_depth
from fusionmedclip_anomalib.synthesis.masks import Region

SHAPES = [(64, 64), (224, 224), (160, 300), (1024, 1024)]


def second_difference(field: np.ndarray) -> float:
    return max(float(np.abs(np.diff(field, 2, axis=0)).max()), float(np.abs(np.diff(field, 2, axis=1)).max()))


@pytest.mark.parametrize("cls", [SourceDeformation, GuidedDeformation])
@pytest.mark.parametrize("shape", SHAPES)
def test_fields_are_smooth_and_never_fold(cls, shape, phantoms):
    image = phantoms["head"](*shape, seed=1)
    task = cls()
    for seed in range(4):
        displacement = task.sample_displacement(image, np.random.default_rng(seed))
        field = displacement.field
        assert field.shape == (*shape, 2) and field.dtype == np.float32 and np.isfinite(field).all()
        assert jacobian_determinant(field).min() > 0.0
        assert second_difference(field) < 1.0  # the field's slope changes by less than 1 per pixel
        assert np.hypot(field[..., 0], field[..., 1]).max() >= 0.5  # it does move something
        assert not field[~displacement.mask].any()  # zero outside the labelled region


@pytest.mark.parametrize("shape", SHAPES)
def test_guided_field_stays_below_its_lipschitz_bound(shape, phantoms):
    image = phantoms["ultrasound"](*shape, seed=2)
    task = GuidedDeformation(lipschitz=0.6)
    for seed in range(4):
        field = task.sample_displacement(image, np.random.default_rng(seed)).field
        # Lipschitz < 1: p -> p + u(p) is injective, so the warp is invertible.
        assert gradient_norm(field[..., 0], field[..., 1]).max() <= 0.6 + 1e-4


def test_task_output_is_the_exposed_field_applied(phantoms):
    image = phantoms["head"](128, 128)
    for task in (SourceDeformation(), GuidedDeformation()):
        displacement = task.sample_displacement(image, np.random.default_rng(3))
        out, mask = task(image, np.random.default_rng(3))
        assert (displacement.apply(image) == out).all()
        assert (displacement.mask == (mask > 0)).all()


def test_source_deformation_pushes_tissue_outwards():
    # A bright dot at the centre of the deformed disc must grow: the centre is magnified.
    image = np.zeros((101, 101), np.uint8)
    image[48:53, 48:53] = 255
    field = radial_source_field(Region(50, 50, 30, 30), image.shape, exponent=2.0, strength=0.8)
    warped = field.apply(image)
    assert (warped > 127).sum() > 2 * (image > 127).sum()
    assert (warped[field.mask == 0] == image[field.mask == 0]).all()


@pytest.mark.parametrize("exponent", [2**0.5, 2.0, 4.0])
@pytest.mark.parametrize("strength", [0.3, 0.9])
def test_source_field_meets_its_jacobian_bound(exponent, strength):
    field = radial_source_field(Region(100, 100, 60, 40, 0.3), (200, 200), exponent, strength).field
    assert jacobian_determinant(field).min() >= (1 - strength) ** 2 - 1e-3


def test_source_ellipse_lies_wholly_inside_the_foreground(phantoms):
    image = phantoms["head"](224, 224)
    task = SourceDeformation(size=(0.3, 0.4))
    from fusionmedclip_anomalib.synthesis import estimate_foreground

    foreground = estimate_foreground(image)
    for seed in range(5):
        displacement = task.sample_displacement(image, np.random.default_rng(seed))
        assert not displacement.mask[~foreground].any()


def test_source_deformation_shrinks_to_fit_a_small_foreground_or_gives_up():
    foreground = np.zeros((200, 200), bool)
    foreground[90:110, 90:110] = True
    displacement = SourceDeformation(size=(0.5, 0.6)).displacement(foreground, np.random.default_rng(0))
    assert displacement.mask.any() and not displacement.mask[~foreground].any()
    sliver = np.zeros((200, 200), bool)
    sliver[100:103] = True
    assert SourceDeformation().displacement(sliver, np.random.default_rng(0)) is None
    image = np.where(sliver, 200, 0).astype(np.uint8)
    out, mask = SourceDeformation()(image, np.random.default_rng(0), foreground=sliver)
    assert (out == image).all() and not mask.any()


def test_guided_field_vanishes_outside_the_foreground():
    foreground = np.zeros((128, 128), bool)
    foreground[20:108, 20:80] = True
    displacement = smooth_random_field(
        Region(64, 70, 40, 40), foreground_depth(foreground), np.random.default_rng(0), amplitude=6.0
    )
    field = displacement.field
    assert np.hypot(field[..., 0], field[..., 1]).max() > 1.0
    assert not field[~foreground].any()


def test_jacobian_determinant_of_known_fields():
    assert jacobian_determinant(np.zeros((8, 8, 2), np.float32)).min() == pytest.approx(1.0)
    ys, xs = np.mgrid[:16, :16].astype(np.float32)
    scaling = np.stack([0.5 * ys, 0.5 * xs], axis=-1)  # p -> 1.5 p
    assert jacobian_determinant(scaling) == pytest.approx(np.full((16, 16), 2.25))
    fold = np.stack([-2.0 * ys, np.zeros_like(xs)], axis=-1)  # p_y -> -p_y: folded
    assert jacobian_determinant(fold).max() < 0
    angle = math.radians(30)
    rotation = np.stack(
        [math.sin(angle) * xs + (math.cos(angle) - 1) * ys, (math.cos(angle) - 1) * xs - math.sin(angle) * ys], axis=-1
    )
    assert jacobian_determinant(rotation) == pytest.approx(np.ones((16, 16)), abs=1e-5)
