"""LoRA in the vision tower's attention: each update applied once (against a hand-built reference), frozen weights
left exactly as they were by training, and merge/unmerge round trips."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fusionmedclip_anomalib.models.fusionmedclip.lora import AttentionLoRA, inject_lora, lora_layers, set_lora_merged

RANK, ALPHA = 8, 16


@pytest.fixture
def visual(tiny_clip):
    visual = tiny_clip.visual.requires_grad_(False)
    inject_lora(visual, RANK, ALPHA, dropout=0.0)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in visual.named_parameters():
            if "lora_B" in name:  # B starts at zero; make the updates visible
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return visual


def adapted_attention(attn: AttentionLoRA, x: torch.Tensor) -> torch.Tensor:
    """The attention with ``W + (alpha / r) B A`` on the fused q/k/v and on the output projection, built by hand."""
    base, out = attn.get_base_layer(), attn.get_base_layer().out_proj
    scale = ALPHA / RANK
    in_weight = base.in_proj_weight + scale * attn.lora_B["default"].weight @ attn.lora_A["default"].weight
    out_weight = out.base_layer.weight + scale * out.lora_B["default"].weight @ out.lora_A["default"].weight
    tokens = x.transpose(0, 1)
    output, _ = F.multi_head_attention_forward(
        tokens, tokens, tokens, base.embed_dim, base.num_heads, in_weight, base.in_proj_bias, None, None, False, 0.0,
        out_weight, out.base_layer.bias, training=False, need_weights=False,
    )  # fmt: skip
    return output.transpose(0, 1)


def test_every_block_attention_gets_the_mended_lora(visual):
    attentions = [block.attn for block in visual.transformer.resblocks]
    assert all(isinstance(attn, AttentionLoRA) for attn in attentions)


@pytest.mark.parametrize("merged", [False, True])
def test_attention_applies_each_update_exactly_once(visual, merged):
    attn = visual.transformer.resblocks[0].attn.eval()
    x = torch.randn(2, 7, attn.embed_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = adapted_attention(attn, x)
        without_lora, _ = attn.get_base_layer()(x, x, x, need_weights=False)
        set_lora_merged(visual, merged)
        output, _ = attn(x, x, x, need_weights=False)
    assert attn.merged == merged
    assert (expected - without_lora).abs().max() > 1e-2  # the updates are large enough to be seen
    torch.testing.assert_close(output, expected, rtol=0, atol=1e-5)


def test_training_steps_leave_the_frozen_weights_bit_for_bit(visual):
    frozen = {name: p.detach().clone() for name, p in visual.named_parameters() if not p.requires_grad}
    trainable = [p for p in visual.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=1e-2)
    visual.train()
    for _ in range(3):
        tokens = visual.transformer(torch.randn(2, 9, visual.transformer.width))
        tokens.square().mean().backward()
        optimiser.step()
        optimiser.zero_grad()
    after = dict(visual.named_parameters())
    assert all(torch.equal(after[name], value) for name, value in frozen.items())
    assert all(isinstance(after[name], nn.Parameter) and not after[name].requires_grad for name in frozen)


def test_gradients_reach_the_attention_and_output_factors_only(visual):
    attn = visual.transformer.resblocks[0].attn
    x = torch.randn(2, 7, attn.embed_dim)
    attn(x, x, x, need_weights=False)[0].sum().backward()
    with_grad = {name for name, p in attn.named_parameters() if p.grad is not None}
    assert with_grad == {
        "lora_A.default.weight",
        "lora_B.default.weight",
        "base_layer.out_proj.lora_A.default.weight",
        "base_layer.out_proj.lora_B.default.weight",
    }


def test_merge_then_unmerge_restores_the_weights(visual):
    before = {name: p.detach().clone() for name, p in visual.named_parameters() if not p.requires_grad}
    in_proj = "transformer.resblocks.0.attn.base_layer.in_proj_weight"
    set_lora_merged(visual, True)
    assert not torch.equal(dict(visual.named_parameters())[in_proj], before[in_proj])
    set_lora_merged(visual, False)
    assert not any(layer.merged for layer in lora_layers(visual))
    for name, parameter in visual.named_parameters():
        if name in before:
            torch.testing.assert_close(parameter, before[name], rtol=0, atol=1e-6)


def test_unmerged_attention_under_bf16_autocast_matches_merged(visual):
    # the adapted weights are made outside autocast: a bfloat16 weight would not meet the fp32 residual stream
    attn = visual.transformer.resblocks[0].attn.eval()
    x = torch.randn(2, 7, attn.embed_dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        unmerged, _ = attn(x, x, x, need_weights=False)
        set_lora_merged(visual, True)
        merged, _ = attn(x, x, x, need_weights=False)
    assert unmerged.dtype == merged.dtype
    torch.testing.assert_close(unmerged, merged, rtol=0, atol=3e-2)
