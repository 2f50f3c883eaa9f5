"""What inference runs: fused attention with LoRA merged, no text tower per batch, bf16 close to fp32, and the exact
rewrites made for speed (one upsampling of the averaged map, prompts cut after the end-of-text token)."""

import inspect
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fusionmedclip_anomalib.clip import run_vision_blocks
from fusionmedclip_anomalib.models.fusionmedclip import prompts
from fusionmedclip_anomalib.models.fusionmedclip.torch_model import FusionMedCLIPModel
from fusionmedclip_anomalib.perf.profiling import FUSED_ATTENTION_OPS, op_names, profile_call

LAYERS = (2, 4, 6)


def phantom_batch() -> torch.Tensor:
    """Generated brain, ultrasound and chest images with and without lesions, RGB in [0, 1]."""
    from fusionmedclip_anomalib.data.phantom_render import render_phantom

    images = [
        render_phantom(modality, seed=seed, size=224, abnormal=seed % 2 == 0)[0]
        for seed, modality in enumerate(("brain", "breast_us", "chest_xray", "brain"))
    ]
    grey = torch.from_numpy(np.stack(images)).float().div(255.0)
    return grey.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def trained_looking(model: FusionMedCLIPModel) -> FusionMedCLIPModel:
    """Non-zero LoRA B and Block Adapter up-projections (both start at zero), so they change the output."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name or ".up." in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    return model


@pytest.fixture
def model(tiny_clip):
    return trained_looking(FusionMedCLIPModel(tiny_clip, "fmc-tiny", feature_layers=LAYERS)).eval()


def test_merged_eval_forward_takes_the_fused_attention_path(model):
    model.merge_lora()
    images = torch.rand(2, 3, 224, 224)
    with torch.inference_mode():
        model(images)
        names = op_names(profile_call(lambda: model(images)))
    assert "aten::_native_multi_head_attention" in names
    assert set(FUSED_ATTENTION_OPS) & names


def test_bf16_autocast_keeps_an_fp32_residual_stream_and_the_fused_attention(model):
    # only the matrix products drop to bf16; a bf16 residual stream would leave the fused attention path, and on CPU
    # the fallback is many times slower than float32
    model.merge_lora()
    model.precision = "bf16"
    images = torch.rand(1, 3, 224, 224)
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            tokens = run_vision_blocks(model.clip.visual, images, LAYERS)
        model(images)
        names = op_names(profile_call(lambda: model(images)))
    assert all(block.dtype == torch.float32 for block in tokens.values())
    assert "aten::_native_multi_head_attention" in names


@pytest.mark.parametrize("merged", [True, False])
def test_bf16_scores_within_1e2_of_fp32_on_phantoms(model, merged):
    model.merge_lora(merged)
    images = phantom_batch()
    with torch.inference_mode():
        full = model(images)
        model.precision = "bf16"
        half = model(images)
    assert half.anomaly_map.dtype == torch.float32
    assert (half.pred_score - full.pred_score).abs().max() < 1e-2
    assert (half.anomaly_map - full.anomaly_map).abs().max() < 1e-2


def test_precision_is_validated(tiny_clip):
    with pytest.raises(ValueError, match="precision"):
        FusionMedCLIPModel(tiny_clip, "fmc-tiny", feature_layers=LAYERS, precision="fp16")


def test_no_text_tower_work_per_batch_at_test_time(model):
    encodings, text_blocks = [], []
    model.prompts.register_forward_hook(lambda *args: encodings.append(1))
    model.clip.transformer.register_forward_hook(lambda *args: text_blocks.append(1))
    model.merge_lora()
    with torch.inference_mode():
        model(torch.rand(1, 3, 224, 224))
        first = len(text_blocks)
        for _ in range(2):
            model(torch.rand(1, 3, 224, 224))
    assert len(encodings) <= 1  # at most once, for the first batch
    assert len(text_blocks) == first


def test_training_after_an_inference_mode_pass(tiny_clip):
    # fixed prompts are cached under Lightning's inference_mode during validation; the next training step must not
    # feed that inference tensor to autograd
    model = FusionMedCLIPModel(tiny_clip, "fmc-tiny", feature_layers=LAYERS, prompt="manual").eval()
    with torch.inference_mode():
        model(torch.rand(1, 3, 224, 224))
    model.train()
    model.anomaly_map(torch.rand(1, 3, 224, 224)).mean().backward()
    assert all(p.grad is not None for p in model.alignment_adapters.parameters())


def test_one_upsampling_of_the_mean_equals_the_mean_of_upsampled_maps(model):
    images = torch.rand(2, 3, 224, 160)
    grids = []
    original = model.anomaly_probability

    def record(aligned, text, size=None):
        grids.append(original(aligned, text, size))
        return grids[-1]

    with torch.no_grad(), mock.patch.object(model, "anomaly_probability", record):
        fast = model.anomaly_map(images)
    assert len(grids) == len(LAYERS) and grids[0].shape == (2, 14, 10)
    upsampled = [F.interpolate(g.unsqueeze(1), size=(224, 160), mode="bilinear", align_corners=False) for g in grids]
    torch.testing.assert_close(fast, torch.stack(upsampled).mean(dim=0)[:, 0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("position", ["end", "middle", "front"])
def test_prompts_stop_at_the_end_of_text_token_with_the_same_embeddings(tiny_clip, position):
    mode = "coop_umls" if position == "end" else "coop"
    model = FusionMedCLIPModel(tiny_clip, "fmc-tiny", feature_layers=LAYERS, prompt=mode, class_token_position=position)
    tokens = model.prompts.tokens_0
    length = prompts.pooled_prefix_length(model.clip, tokens)
    assert length < tokens.shape[1] // 2
    assert int(tokens[:, length:].abs().sum()) == 0  # only padding is cut
    with torch.no_grad():
        cut = model.prompts(model.clip)
        with mock.patch.object(prompts, "pooled_prefix_length", lambda clip, ids: ids.shape[1]):
            full = model.prompts(model.clip)
    torch.testing.assert_close(cut, full, atol=1e-5, rtol=0)


def test_prompts_keep_full_length_without_a_causal_mask(tiny_clip):
    tokens = torch.tensor([[49406, 320, 49407, 0, 0]])
    assert prompts.pooled_prefix_length(tiny_clip, tokens) == 3
    with mock.patch.object(tiny_clip, "attn_mask", torch.zeros(77, 77)):
        assert prompts.pooled_prefix_length(tiny_clip, tokens) == 5
    with mock.patch.object(tiny_clip, "text_pool_type", "last"):
        assert prompts.pooled_prefix_length(tiny_clip, tokens) == 5


def test_anomalib_engine_keeps_lightnings_inference_mode():
    # Engine.test/predict/validate run under torch.inference_mode: anomalib passes Lightning's default through
    from anomalib.engine import Engine
    from lightning.pytorch import Trainer

    assert inspect.signature(Trainer.__init__).parameters["inference_mode"].default is True
    assert Engine()._cache.args.get("inference_mode", True) is True
