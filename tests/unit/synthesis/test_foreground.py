import numpy as np
import pytest

from fusionmedclip_anomalib.synthesis import estimate_foreground
from fusionmedclip_anomalib.synthesis.foreground import foreground_depth


def test_head_foreground_is_the_head_including_its_dark_ventricles(phantoms):
    image = phantoms["head"](224, 224)
    foreground = estimate_foreground(image)
    assert foreground.dtype == bool and foreground.shape == image.shape
    assert not foreground[:10].any() and not foreground[:, :10].any()  # air around the head
    assert foreground[112, 112]
    ventricles = image < 50
    ventricles[image == 0] = False
    assert ventricles.any() and foreground[ventricles].all()
    assert (image[~foreground] < 30).mean() > 0.95


def test_ultrasound_fan_excludes_the_black_margins_but_keeps_the_cyst(phantoms):
    image = phantoms["ultrasound"](200, 240)
    foreground = estimate_foreground(image)
    assert not foreground[5, 5] and not foreground[5, -5]
    assert foreground[110, 120]  # inside the cyst
    assert 0.4 < foreground.mean() < 0.9


@pytest.mark.parametrize("name", ["chest", "texture"])
def test_images_without_a_dark_border_are_all_foreground(phantoms, name):
    assert estimate_foreground(phantoms[name](160, 200)).mean() > 0.97


@pytest.mark.parametrize("value", [0, 1, 128, 255])
def test_constant_images_have_no_foreground(value):
    assert not estimate_foreground(np.full((80, 100), value, np.uint8)).any()


def test_low_contrast_noise_has_no_foreground():
    image = np.random.default_rng(0).integers(100, 106, (96, 96)).astype(np.uint8)
    assert not estimate_foreground(image, min_contrast=10).any()


@pytest.mark.parametrize("shape", [(64, 64), (1024, 1024), (120, 300), (300, 90)])
def test_any_size_gives_a_mask_of_that_size(phantoms, shape):
    foreground = estimate_foreground(phantoms["head"](*shape))
    assert foreground.shape == shape
    assert 0.3 < foreground.mean() < 0.7


def test_colour_input_matches_grey_input(phantoms):
    image = phantoms["head"](128, 128)
    assert (estimate_foreground(np.dstack([image] * 3)) == estimate_foreground(image)).all()


def test_depth_is_distance_to_background_or_image_edge():
    foreground = np.zeros((21, 21), bool)
    foreground[5:16, 5:16] = True
    depth = foreground_depth(foreground)
    assert depth[10, 10] == pytest.approx(6, abs=0.5)
    assert (depth[~foreground] == 0).all()
    full = foreground_depth(np.ones((9, 9), bool))
    assert full[0, 0] == pytest.approx(1, abs=0.1) and full[4, 4] == pytest.approx(5, abs=0.5)
