import math

import numpy as np
import pytest

from fusionmedclip_anomalib.synthesis import KNOWN_TASKS, PRESETS, SynthesisPool, resolve_weights


def test_known_task_names():
    assert set(KNOWN_TASKS) == {
        "identity",
        "cutpaste",
        "enhanced_structural",
        "gauss_intensity_change",
        "enhanced_density",
        "source_deformation",
        "guided_deformation",
    }


def test_presets_follow_the_spec():
    assert dict(PRESETS["fusionmedclip"]) == {
        "identity": 0.25,
        "enhanced_structural": 0.25,
        "enhanced_density": 0.25,
        "source_deformation": 0.125,
        "guided_deformation": 0.125,
    }
    assert dict(PRESETS["mediclip"]) == {
        "cutpaste": 0.25,
        "gauss_intensity_change": 0.25,
        "source_deformation": 0.25,
        "identity": 0.25,
    }
    for weights in PRESETS.values():
        assert math.fsum(weights.values()) == pytest.approx(1.0, abs=1e-12)
        assert set(weights) <= set(KNOWN_TASKS)


def test_presets_cannot_be_mutated():
    with pytest.raises(TypeError):
        PRESETS["fusionmedclip"]["identity"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"identity": 0.5, "tumour": 0.5}, r"unknown synthesis task\(s\) 'tumour'; known tasks: identity, cutpaste"),
        ({"identity": 0.5, "cutpaste": 0.4}, "must sum to 1"),
        ({"identity": 1.5, "cutpaste": -0.5}, "finite number >= 0"),
        ({"identity": float("nan")}, "finite number >= 0"),
        ({"identity": "a lot"}, "must be a number"),
        ({}, "empty"),
        ("paper", "unknown synthesis preset 'paper'; known presets: fusionmedclip, mediclip"),
        (["identity"], "preset name or a mapping"),
    ],
)
def test_invalid_weights_raise_a_clear_value_error(weights, message):
    with pytest.raises(ValueError, match=message):
        SynthesisPool(weights=weights)


def test_weights_within_tolerance_are_accepted_and_copied():
    weights = {"identity": 0.5, "cutpaste": 0.5 - 5e-7}
    pool = SynthesisPool(weights=weights)
    assert pool.weights == weights
    pool.weights["identity"] = 0.0
    assert pool.weights["identity"] == 0.5
    assert resolve_weights("mediclip") == dict(PRESETS["mediclip"])


def test_zero_weight_tasks_are_never_drawn(phantoms):
    pool = SynthesisPool(weights={"identity": 0.0, "enhanced_density": 1.0})
    image = phantoms["head"](64, 64)
    rng = np.random.default_rng(0)
    assert {pool.sample(image, rng).task for _ in range(30)} == {"enhanced_density"}
    assert "identity" not in pool.tasks


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_empirical_task_frequencies_match_the_weights(preset):
    class Recorder:
        def __init__(self, name):
            self.name = name

        def __call__(self, image, rng, foreground=None):
            return image, np.zeros(image.shape, np.float32)

    pool = SynthesisPool(weights=preset)
    pool.tasks = {name: Recorder(name) for name in pool.tasks}
    draws = 20000
    rng = np.random.default_rng(0)
    image = np.zeros((4, 4), np.uint8)
    counts = {name: 0 for name in pool.weights}
    for _ in range(draws):
        counts[pool.sample(image, rng).task] += 1
    for name, probability in pool.weights.items():
        standard_error = math.sqrt(probability * (1 - probability) / draws)
        assert abs(counts[name] / draws - probability) < 4 * standard_error + 1e-9, (name, counts)


def test_real_pool_draws_every_task_of_the_preset(phantoms, support):
    pool = SynthesisPool("fusionmedclip", support=support)
    image = phantoms["head"](64, 64)
    rng = np.random.default_rng(0)
    seen = {pool.sample(image, rng).task for _ in range(60)}
    assert seen == set(PRESETS["fusionmedclip"])


def test_pool_output_contract_and_determinism(phantoms, support):
    pool = SynthesisPool("mediclip", support=support)
    image = np.dstack([phantoms["ultrasound"](96, 120)] * 3)
    pairs = [pool(image, np.random.default_rng(seed)) for seed in range(8)]
    for out, mask in pairs:
        assert out.shape == (96, 120) and out.dtype == np.uint8
        assert mask.shape == (96, 120) and mask.dtype == np.float32 and 0 <= mask.min() <= mask.max() <= 1
    again = SynthesisPool("mediclip", support=support)(image, np.random.default_rng(3))
    assert (again[0] == pairs[3][0]).all() and (again[1] == pairs[3][1]).all()
    assert any((out != pairs[0][0]).any() for out, _ in pairs[1:])


def test_support_is_shared_with_structural_tasks(support):
    pool = SynthesisPool({"cutpaste": 0.5, "enhanced_structural": 0.5}, support=support)
    assert pool.tasks["cutpaste"].support is pool.support is pool.tasks["enhanced_structural"].support
    assert len(pool.support) == len(support)


def test_task_options_reach_the_tasks_and_are_validated():
    pool = SynthesisPool("mediclip", task_options={"cutpaste": {"size": (0.2, 0.3)}, "identity": {}})
    assert pool.tasks["cutpaste"].sampler.size == (0.2, 0.3)
    with pytest.raises(ValueError, match="unknown task"):
        SynthesisPool("mediclip", task_options={"cut_paste": {}})
    with pytest.raises(TypeError):
        SynthesisPool("mediclip", task_options={"cutpaste": {"no_such_option": 1}})


def test_constant_image_through_the_pool_is_unchanged():
    pool = SynthesisPool("fusionmedclip")
    image = np.zeros((64, 64), np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(20):
        out, mask = pool(image, rng)
        assert (out == 0).all() and not mask.any() and not np.isnan(mask).any()


def test_pool_pickles_for_dataloader_workers(phantoms, support):
    import pickle

    pool = SynthesisPool("fusionmedclip", support=support)
    copy = pickle.loads(pickle.dumps(pool))
    image = phantoms["head"](64, 64)
    first, second = pool(image, np.random.default_rng(5)), copy(image, np.random.default_rng(5))
    assert (first[0] == second[0]).all() and (first[1] == second[1]).all()


def test_a_seed_instead_of_a_generator_is_rejected(phantoms):
    image = phantoms["head"](32, 32)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        SynthesisPool("mediclip")(image, 0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        SynthesisPool({"identity": 1.0})(image, np.random.RandomState(0))
