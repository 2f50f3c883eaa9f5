import math

import numpy as np
import pytest

from fusionmedclip_anomalib.synthesis.masks import MaskSampler, Region, draw_region, fractal_noise, perlin_noise


def test_perlin_noise_is_smooth_bounded_and_seeded():
    noise = perlin_noise((64, 96), (4, 6), np.random.default_rng(0))
    assert noise.shape == (64, 96) and noise.dtype == np.float32
    assert np.abs(noise).max() <= 1.0 and noise.std() > 0.1
    assert np.abs(np.diff(noise, axis=1)).max() < 0.2  # a few cells over many pixels: no jumps
    assert (perlin_noise((64, 96), (4, 6), np.random.default_rng(0)) == noise).all()
    assert not (perlin_noise((64, 96), (4, 6), np.random.default_rng(1)) == noise).all()


def test_fractal_noise_is_normalised():
    noise = fractal_noise((50, 40), 3, np.random.default_rng(0), octaves=4)
    assert np.abs(noise).max() == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["ellipse", "rectangle", "perlin"])
def test_region_shapes_stay_within_their_extent(kind):
    region = Region(cy=50, cx=60, ry=10, rx=20, angle=math.radians(30))
    window, pixels = draw_region(region, (100, 120), kind, np.random.default_rng(0))
    assert pixels.shape == (window[0].stop - window[0].start, window[1].stop - window[1].start)
    ys, xs = np.nonzero(pixels)
    distance = np.hypot(ys + window[0].start - 50, xs + window[1].start - 60)
    assert pixels.any() and distance.max() <= math.hypot(10, 20) + 1


def test_ellipse_area_matches_its_semi_axes():
    _, pixels = draw_region(Region(100, 100, 30, 50, 0.4), (200, 200), "ellipse", np.random.default_rng(0))
    assert pixels.sum() == pytest.approx(math.pi * 30 * 50, rel=0.03)


def test_regions_at_the_image_corner_are_clipped():
    window, pixels = draw_region(Region(0, 0, 15, 15), (40, 40), "ellipse", np.random.default_rng(0))
    assert window[0].start == 0 and window[1].start == 0 and pixels.any()


@pytest.mark.parametrize("shape", ["perlin", "ellipse", "rectangle", "random"])
def test_sampled_masks_lie_inside_the_foreground(shape):
    foreground = np.zeros((128, 160), bool)
    foreground[30:100, 40:150] = True
    for seed in range(5):
        mask, regions = MaskSampler(shape=shape, size=(0.1, 0.5), count=(1, 3))(foreground, np.random.default_rng(seed))
        assert mask.dtype == bool and mask.any() and not mask[~foreground].any()
        assert 1 <= len(regions) <= 3
        assert all(foreground[int(r.cy), int(r.cx)] for r in regions)


def test_count_range_is_respected_and_all_counts_occur():
    sampler = MaskSampler(shape="ellipse", count=(1, 3))
    counts = {len(sampler(np.ones((64, 64), bool), np.random.default_rng(s))[1]) for s in range(40)}
    assert counts == {1, 2, 3}


def test_sizes_scale_with_each_image_side():
    sampler = MaskSampler(shape="rectangle", size=(0.4, 0.4), max_rotation=0)
    mask, _ = sampler(np.ones((100, 300), bool), np.random.default_rng(0))
    ys, xs = np.nonzero(mask)
    assert ys.max() - ys.min() + 1 == pytest.approx(40, abs=2) or ys.min() == 0 or ys.max() == 99
    assert xs.max() - xs.min() + 1 == pytest.approx(120, abs=2) or xs.min() == 0 or xs.max() == 299


def test_a_tiny_foreground_still_gets_a_non_empty_mask():
    foreground = np.zeros((64, 64), bool)
    foreground[30:32, 30:32] = True
    mask, _ = MaskSampler(shape="perlin", size=(0.3, 0.6))(foreground, np.random.default_rng(0))
    assert mask.any() and not mask[~foreground].any()


@pytest.mark.parametrize(
    "kwargs", [{"shape": "star"}, {"size": (0.5, 0.2)}, {"size": (0.1, 1.5)}, {"count": (0, 2)}, {"count": (3, 1)}]
)
def test_invalid_sampler_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        MaskSampler(**kwargs)
