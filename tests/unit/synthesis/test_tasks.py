"""Behaviour every synthesis task must show (issue 3), checked on varied medical-looking phantoms."""

import numpy as np
import pytest

from fusionmedclip_anomalib.synthesis import (
    KNOWN_TASKS,
    SUPPORT_TASKS,
    TASK_CLASSES,
    CutPaste,
    EnhancedDensity,
    EnhancedStructural,
    GaussIntensityChange,
    Identity,
    estimate_foreground,
)

ANOMALY_TASKS = [name for name in KNOWN_TASKS if name != "identity"]
LOCAL_TASKS = ["cutpaste", "gauss_intensity_change", "enhanced_density", "enhanced_structural"]
DEFORMATION_TASKS = ["source_deformation", "guided_deformation"]


def build(name, support=()):
    return TASK_CLASSES[name](support=support) if name in SUPPORT_TASKS else TASK_CLASSES[name]()


@pytest.fixture(params=ANOMALY_TASKS)
def task_name(request):
    return request.param


def test_identity_returns_the_input_and_an_empty_mask(phantom_name, phantoms):
    image = phantoms[phantom_name](96, 128)
    out, mask = Identity()(image, np.random.default_rng(0))
    assert out.dtype == np.uint8 and (out == image).all() and out is not image
    assert mask.dtype == np.float32 and mask.shape == image.shape and not mask.any()


def test_output_contract_and_mask_inside_foreground(task_name, phantom_name, phantoms, support):
    image = phantoms[phantom_name](160, 192, seed=3)
    original = image.copy()
    foreground = estimate_foreground(image)
    task = build(task_name, support)
    for seed in range(3):
        out, mask = task(image, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.uint8
        assert mask.shape == image.shape and mask.dtype == np.float32
        assert np.isfinite(mask).all() and mask.min() >= 0.0 and mask.max() <= 1.0
        assert (mask >= 0.5).sum() > 0, f"{task_name} drew an empty mask"
        assert not (mask > 0)[~foreground].any(), f"{task_name} put its mask outside the foreground"
        assert (image == original).all(), f"{task_name} modified its input"


@pytest.mark.parametrize("task_name", LOCAL_TASKS)
def test_local_tasks_change_the_inside_and_nothing_outside(task_name, phantom_name, phantoms, support):
    image = phantoms[phantom_name](160, 160, seed=5)
    task = build(task_name, support)
    for seed in range(4):
        out, mask = task(image, np.random.default_rng(seed))
        difference = np.abs(out.astype(np.int16) - image)
        assert (difference[mask == 0] == 0).all(), f"{task_name} changed pixels outside its mask"
        assert difference[mask >= 0.5].mean() >= 2.0, f"{task_name} left its anomaly unchanged"


@pytest.mark.parametrize("task_name", DEFORMATION_TASKS)
def test_deformations_move_tissue_inside_the_mask_only(task_name, phantom_name, phantoms):
    image = phantoms[phantom_name](160, 160, seed=5)
    for seed in range(4):
        out, mask = build(task_name)(image, np.random.default_rng(seed))
        changed = out != image
        assert not changed[mask == 0].any()
        assert changed[mask > 0].mean() > 0.05


def test_same_seed_same_pair_and_other_seeds_differ(task_name, phantoms, support):
    image = phantoms["head"](128, 128, seed=1)
    task = build(task_name, support)
    first = task(image, np.random.default_rng(42))
    again = build(task_name, support)(image, np.random.default_rng(42))
    assert (first[0] == again[0]).all() and (first[1] == again[1]).all()
    others = [task(image, np.random.default_rng(seed)) for seed in (1, 2, 3)]
    assert all((out != first[0]).any() or (mask != first[1]).any() for out, mask in others)


@pytest.mark.parametrize("shape", [(64, 64), (1024, 1024), (96, 256), (300, 80)])
def test_sizes_and_aspect_ratios(task_name, shape, phantoms, support):
    image = phantoms["head"](*shape, seed=2)
    out, mask = build(task_name, support)(image, np.random.default_rng(0))
    assert out.shape == shape and mask.shape == shape
    assert mask.max() > 0 and np.isfinite(mask).all()


@pytest.mark.parametrize("value", [0, 255])
def test_constant_images_fall_back_to_identity(task_name, value, support):
    image = np.full((100, 140), value, np.uint8)
    out, mask = build(task_name, support)(image, np.random.default_rng(0))
    assert (out == image).all() and not mask.any() and mask.dtype == np.float32


@pytest.mark.parametrize("channels", [3, 4])
def test_colour_input_is_converted_to_grey(task_name, channels, phantoms, support):
    grey = phantoms["ultrasound"](128, 128)
    colour = np.dstack([grey] * 3 + ([np.full_like(grey, 255)] if channels == 4 else []))
    task = build(task_name, support)
    out_colour, mask_colour = task(colour, np.random.default_rng(7))
    out_grey, mask_grey = task(grey, np.random.default_rng(7))
    assert out_colour.shape == grey.shape
    assert (out_colour == out_grey).all() and (mask_colour == mask_grey).all()


def test_a_given_foreground_confines_the_anomaly(task_name, phantoms, support):
    image = phantoms["texture"](128, 128)
    foreground = np.zeros(image.shape, bool)
    foreground[20:100, 30:110] = True
    for seed in range(3):
        out, mask = build(task_name, support)(image, np.random.default_rng(seed), foreground=foreground)
        assert mask.any() and not mask[~foreground].any()
        assert (out[~foreground] == image[~foreground]).all()


def test_an_empty_given_foreground_means_identity(task_name, phantoms):
    image = phantoms["head"](64, 64)
    out, mask = build(task_name)(image, np.random.default_rng(0), foreground=np.zeros((64, 64), bool))
    assert (out == image).all() and not mask.any()


def test_a_foreground_of_the_wrong_shape_is_rejected(phantoms):
    with pytest.raises(ValueError, match="foreground shape"):
        GaussIntensityChange()(phantoms["head"](64, 64), np.random.default_rng(0), foreground=np.ones((32, 32), bool))


@pytest.mark.parametrize("cls", [CutPaste, EnhancedStructural])
def test_structural_tasks_work_without_support_and_with_odd_sized_support(cls, phantoms):
    image = phantoms["head"](128, 160, seed=4)
    for support in ([], [phantoms["chest"](50, 300), phantoms["head"](400, 90)]):
        task = cls(support=support)
        for seed in range(3):
            out, mask = task(image, np.random.default_rng(seed))
            assert out.shape == image.shape and (mask >= 0.5).any()
            assert (out[mask == 0] == image[mask == 0]).all()


def test_cutpaste_soft_edges_and_hard_edges():
    image = np.random.default_rng(0).integers(40, 200, (96, 96)).astype(np.uint8)
    foreground = np.ones(image.shape, bool)
    _, soft = CutPaste(edge_sigma=1.5)(image, np.random.default_rng(0), foreground=foreground)
    _, hard = CutPaste(edge_sigma=0.0)(image, np.random.default_rng(0), foreground=foreground)
    assert ((soft > 0.05) & (soft < 0.95)).any()
    assert set(np.unique(hard)) <= {0.0, 1.0}


def test_gauss_intensity_change_respects_gamma():
    image = np.full((128, 128), 128, np.uint8)
    foreground = np.ones(image.shape, bool)
    for seed in range(5):
        out, mask = GaussIntensityChange(gamma=(0.5, 0.5))(image, np.random.default_rng(seed), foreground=foreground)
        peak = np.abs(out.astype(np.int16) - 128)[mask > 0].max()
        assert peak == pytest.approx(0.5 * 255, abs=2)  # the noise is rescaled to a peak of exactly gamma


def test_enhanced_density_mask_is_soft_and_follows_beta():
    image = np.full((128, 128), 100, np.uint8)
    foreground = np.ones(image.shape, bool)
    task = EnhancedDensity(beta=(0.0, 0.0))
    out, mask = task(image, np.random.default_rng(0), foreground=foreground)
    assert (out == image).all()  # beta = 0: nothing mixed in
    out, mask = EnhancedDensity(texture=(0.0, 0.0), shift=(0.3, 0.3), beta=(1.0, 1.0))(
        image, np.random.default_rng(0), foreground=foreground
    )
    inside = mask > 0.99
    assert np.abs(out[inside].astype(np.int16) - 100).min() >= 0.3 * 255 - 2
    assert ((mask > 0.05) & (mask < 0.95)).any()


def test_multiple_anomalies_per_image():
    image = np.random.default_rng(0).integers(60, 200, (128, 128)).astype(np.uint8)
    foreground = np.ones(image.shape, bool)
    task = GaussIntensityChange(size=(0.1, 0.15), count=(4, 4))
    _, mask = task(image, np.random.default_rng(0), foreground=foreground)
    from scipy import ndimage

    assert ndimage.label(mask > 0)[1] >= 2


def test_invalid_parameters_are_rejected():
    with pytest.raises(ValueError):
        GaussIntensityChange(gamma=(0.6, 0.4))
    with pytest.raises(ValueError):
        GaussIntensityChange(sigmas=())
    with pytest.raises(ValueError):
        EnhancedStructural(clone="poisson")
    with pytest.raises(ValueError):
        CutPaste(edge_sigma=-1)
    with pytest.raises(ValueError):
        TASK_CLASSES["guided_deformation"](lipschitz=1.0)
    with pytest.raises(ValueError):
        TASK_CLASSES["source_deformation"](strength=(0.5, 1.0))


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (8, 8), (5, 200)])
def test_tiny_and_sliver_images_do_not_crash(task_name, shape, support):
    image = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    task = build(task_name, support)
    for seed in range(3):
        out, mask = task(image, np.random.default_rng(seed), foreground=np.ones(shape, bool))
        assert out.shape == shape and mask.shape == shape and np.isfinite(mask).all()
