import numpy as np
import pytest

from fusionmedclip_anomalib.synthesis import SupportSet
from fusionmedclip_anomalib.synthesis.support import fit_to_shape


@pytest.mark.parametrize("source_shape", [(50, 80), (300, 120), (64, 64), (10, 10)])
def test_fit_to_shape_covers_and_centre_crops(source_shape):
    ys, xs = np.mgrid[: source_shape[0], : source_shape[1]]
    image = ((ys + xs) % 256).astype(np.uint8)
    fitted = fit_to_shape(image, (64, 96))
    assert fitted.shape == (64, 96) and fitted.dtype == np.uint8


def test_fit_keeps_the_aspect_ratio():
    image = np.zeros((100, 200), np.uint8)
    image[:, 90:110] = 255  # a vertical bar in the middle, 10 % of the width
    fitted = fit_to_shape(image, (50, 50))  # scale 0.5, crop the middle 50 of 100 columns
    columns = np.flatnonzero(fitted.mean(axis=0) > 127)
    assert 8 <= columns.size <= 12  # stretched it would be 5


def test_support_draws_are_fitted_seeded_and_cached(phantoms):
    support = SupportSet([phantoms["head"](200, 180, 1), np.dstack([phantoms["chest"](90, 90, 2)] * 3)])
    target = np.zeros((64, 80), np.uint8)
    empty = np.zeros(target.shape, bool)
    first = [support.draw(target, empty, np.random.default_rng(s)) for s in range(6)]
    assert all(source.shape == (64, 80) and depth.shape == (64, 80) for source, depth in first)
    again = support.draw(target, empty, np.random.default_rng(0))
    assert again[0] is first[0][0]  # from the cache
    assert len(support) == 2 and len({id(source) for source, _ in first}) == 2


def test_empty_support_uses_the_target_itself(phantoms):
    target = phantoms["head"](64, 64)
    foreground = target > 0
    source, depth = SupportSet().draw(target, foreground, np.random.default_rng(0))
    assert source is target and (depth > 0).sum() == foreground.sum()


def test_cache_is_bounded():
    support = SupportSet([np.zeros((20, 20), np.uint8)], cache_size=3)
    for size in range(10, 20):
        support.draw(np.zeros((size, size), np.uint8), np.zeros((size, size), bool), np.random.default_rng(0))
    assert len(support._cache) <= 3
