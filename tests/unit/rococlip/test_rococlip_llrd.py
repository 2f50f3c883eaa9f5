"""Layer-wise learning-rate decay: per-block learning rates, weight-decay exemptions, frozen parameters."""

import math
import warnings

import pytest

from fusionmedclip_anomalib.clip import load_clip
from fusionmedclip_anomalib.models.rococlip.llrd import count_blocks, layer_id, layerwise_param_groups

LR, DECAY = 3e-6, 0.8


@pytest.fixture(scope="module")
def clip():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_clip("fmc-tiny", None)


def _lr_of(groups: list[dict]) -> dict[int, float]:
    return {id(param): group["lr"] for group in groups for param in group["params"]}


def test_every_vision_block_gets_lr_times_decay_to_its_depth_from_the_top(clip):
    groups = layerwise_param_groups(clip.visual.named_parameters(), LR, DECAY, 0.05, prefix="visual")
    lrs = _lr_of(groups)
    blocks = clip.visual.transformer.resblocks
    assert len(blocks) == 6
    for index, block in enumerate(blocks, start=1):
        for param in block.parameters():
            assert math.isclose(lrs[id(param)], LR * DECAY ** (7 - index), rel_tol=1e-12)
    assert math.isclose(lrs[id(blocks[-1].mlp.c_fc.weight)], LR * 0.8)
    for param in (clip.visual.proj, clip.visual.ln_post.weight):
        assert lrs[id(param)] == LR
    for param in (clip.visual.conv1.weight, clip.visual.class_embedding, clip.visual.positional_embedding):
        assert math.isclose(lrs[id(param)], LR * DECAY**7)
    assert len(lrs) == len(list(clip.visual.parameters()))


def test_one_dimensional_parameters_have_no_weight_decay(clip):
    groups = layerwise_param_groups(clip.visual.named_parameters(), LR, DECAY, 0.05)
    for group in groups:
        dims = {param.ndim for param in group["params"]}
        assert (group["weight_decay"] == 0.0) == (dims == {1}), group["name"]


def test_frozen_parameters_are_left_out(clip):
    clip.visual.transformer.resblocks[0].requires_grad_(False)
    try:
        groups = layerwise_param_groups(clip.visual.named_parameters(), LR, DECAY, 0.05)
    finally:
        clip.visual.transformer.resblocks[0].requires_grad_(True)
    frozen = {id(p) for p in clip.visual.transformer.resblocks[0].parameters()}
    assert not frozen & set(_lr_of(groups))


def test_text_tower_names_are_laid_out_the_same_way():
    assert layer_id("token_embedding.weight", 2) == 0
    assert layer_id("positional_embedding", 2) == 0
    assert layer_id("transformer.resblocks.1.attn.in_proj_weight", 2) == 2
    assert layer_id("ln_final.weight", 2) == 3
    assert layer_id("text_projection", 2) == 3
    assert count_blocks(["transformer.resblocks.0.x", "transformer.resblocks.11.y"]) == 12


def test_decay_of_one_gives_every_parameter_the_same_lr(clip):
    groups = layerwise_param_groups(clip.visual.named_parameters(), LR, 1.0, 0.05)
    assert {group["lr"] for group in groups} == {LR}
