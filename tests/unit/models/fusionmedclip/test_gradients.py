"""Exactly the intended parameters train, for the full model and for every Table 8 ablation row."""

import warnings

import pytest
import torch

from fusionmedclip_anomalib.models.fusionmedclip.torch_model import FusionMedCLIPModel

ROWS = {
    "row1_manual_gap": {"prompt": "manual", "alignment": "gap", "lora": False, "block_adapters": False},
    "row3_coop_gap": {"prompt": "coop", "alignment": "gap", "lora": False, "block_adapters": False},
    "row4_coop_umls_gap": {"prompt": "coop_umls", "alignment": "gap", "lora": False, "block_adapters": False},
    "row5_alignment": {"prompt": "coop_umls", "alignment": "conv1x1", "lora": False, "block_adapters": False},
    "row6_full": {},
}
EXPECTED_GROUPS = {
    "row1_manual_gap": set(),
    "row3_coop_gap": {"prompt"},
    "row4_coop_umls_gap": {"prompt"},
    "row5_alignment": {"prompt", "alignment"},
    "row6_full": {"prompt", "alignment", "lora", "block_adapter"},
}


def build(clip, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FusionMedCLIPModel(clip, "fmc-tiny", feature_layers=(2, 4, 6), **kwargs)


def loss_of(model, images, masks):
    anomaly_map = model.anomaly_map(images)
    return ((anomaly_map - masks) ** 2).mean() + anomaly_map.flatten(1).amax(1).mean()


def trainable(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("row", ROWS)
def test_trainable_sets_of_ablation_rows(tiny_clip, row):
    model = build(tiny_clip, **ROWS[row])
    groups = {name for name, params in model.parameter_groups().items() if params}
    assert groups == EXPECTED_GROUPS[row]
    grouped = {id(p) for params in model.parameter_groups().values() for p in params}
    assert grouped == {id(p) for p in model.parameters() if p.requires_grad}
    names = trainable(model)
    assert all(not name.startswith("clip.") or "lora_" in name for name in names)
    assert any("lora_" in n for n in names) == ("lora" in EXPECTED_GROUPS[row])


def test_every_trainable_parameter_gets_gradient_and_frozen_none(tiny_clip):
    """LoRA B and the adapters' up-projections start at zero (identity at start), which zeroes the gradients of
    LoRA A and the down-projections on the very first backward; after one optimiser step every trainable tensor
    must receive a non-zero gradient."""
    torch.manual_seed(0)
    model = build(tiny_clip, learn_temperature=True).train()
    images, masks = torch.rand(2, 3, 224, 224), (torch.rand(2, 224, 224) > 0.9).float()
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss_of(model, images, masks).backward()
    optimiser.step()
    optimiser.zero_grad(set_to_none=True)
    loss_of(model, images, masks).backward()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        else:
            assert parameter.grad is None, name
    lora = [n for n, p in model.named_parameters() if "lora_" in n]
    blocks = len(model.clip.visual.transformer.resblocks)
    assert len(lora) == blocks * 8  # A and B for fused qkv, attention output, fc1, fc2
    assert model.log_temperature.grad is not None


def test_token_embedding_table_and_text_tower_frozen(tiny_clip):
    model = build(tiny_clip)
    assert not model.clip.token_embedding.weight.requires_grad
    assert not any(p.requires_grad for p in model.clip.transformer.parameters())


def test_blocks_after_deepest_layer_are_removed(tiny_clip):
    model = FusionMedCLIPModel(tiny_clip, "fmc-tiny", feature_layers=(2, 3))
    assert len(model.clip.visual.transformer.resblocks) == 3
