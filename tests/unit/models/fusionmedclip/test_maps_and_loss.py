"""Anomaly maps, the temperature softmax, and the training losses against hand computations."""

import math

import pytest
import torch

from fusionmedclip_anomalib.models.fusionmedclip.loss import binary_dice_loss, binary_focal_loss
from fusionmedclip_anomalib.models.fusionmedclip.torch_model import FusionMedCLIPModel


@pytest.fixture
def model(tiny_clip):
    return FusionMedCLIPModel(tiny_clip, "fmc-tiny", feature_layers=(2, 4, 6)).eval()


def test_map_range_size_and_score(model):
    images = torch.rand(3, 3, 224, 224)
    with torch.no_grad():
        output = model(images)
    assert output.anomaly_map.shape == (3, 224, 224)
    assert output.anomaly_map.min() >= 0 and output.anomaly_map.max() <= 1
    torch.testing.assert_close(output.pred_score, output.anomaly_map.flatten(1).amax(1))


def test_non_square_input(model):
    with torch.no_grad():
        output = model(torch.rand(1, 3, 224, 160))
    assert output.anomaly_map.shape == (1, 224, 160)


def test_softmax_with_temperature_matches_hand_computation(model):
    aligned = torch.zeros(1, 128, 1, 1)
    aligned[0, 0] = 1.0
    text = torch.zeros(2, 128)
    text[0, 0], text[1, 0] = 0.2, 0.5  # cosine similarity to normal 0.2, to abnormal 0.5
    probability = model.anomaly_probability(aligned, text, (2, 2))
    tau = 0.07
    expected = math.exp(0.5 / tau) / (math.exp(0.2 / tau) + math.exp(0.5 / tau))
    torch.testing.assert_close(probability, torch.full((1, 2, 2), expected))


def test_gap_alignment_gives_constant_map(tiny_clip):
    model = FusionMedCLIPModel(tiny_clip, "fmc-tiny", (2, 4), alignment="gap", lora=False, block_adapters=False)
    with torch.no_grad():
        anomaly_map = model.eval()(torch.rand(2, 3, 224, 224)).anomaly_map
    torch.testing.assert_close(anomaly_map, anomaly_map[:, :1, :1].expand_as(anomaly_map))


def test_prompt_embeddings_cached_until_contexts_change(model):
    with torch.no_grad():
        model(torch.rand(1, 3, 224, 224))
        cached = model._text_cache
        assert cached is not None and model.text_embeddings() is cached
        model.prompts.contexts.add_(0.5)  # what an optimiser step does
        fresh = model.text_embeddings()
    assert fresh is not cached and not torch.allclose(fresh, cached)
    assert model.train().text_embeddings().requires_grad  # training re-encodes the prompts with autograd


def test_merged_lora_gives_same_maps(model):
    for name, parameter in model.clip.visual.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.05)
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        unmerged = model(images).anomaly_map
        model.merge_lora()
        merged = model(images).anomaly_map
    assert (merged - unmerged).abs().max() < 1e-5
    model.merge_lora(False)
    from fusionmedclip_anomalib.models.fusionmedclip.lora import lora_layers

    assert not any(layer.merged for layer in lora_layers(model.clip.visual))


def test_focal_loss_matches_hand_value():
    p = torch.tensor([0.9, 0.2, 0.6])
    y = torch.tensor([1.0, 0.0, 0.0])
    expected = (-(0.1**2) * math.log(0.9) - (0.2**2) * math.log(0.8) - (0.6**2) * math.log(0.4)) / 3
    torch.testing.assert_close(binary_focal_loss(p, y, gamma=2.0), torch.tensor(expected))
    torch.testing.assert_close(binary_focal_loss(p, y, gamma=0.0), torch.nn.functional.binary_cross_entropy(p, y))


def test_dice_loss_matches_hand_value():
    p = torch.tensor([[[0.5, 1.0], [0.0, 0.0]], [[0.2, 0.2], [0.2, 0.2]]])
    y = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    first = 1 - (2 * 1.5 + 1) / (1.5 + 2 + 1)
    second = 1 - 1 / (0.8 + 1)
    torch.testing.assert_close(binary_dice_loss(p, y), torch.tensor((first + second) / 2))
    assert binary_dice_loss(y[:1], y[:1]) < 1e-6  # perfect overlap


def test_invalid_options_are_rejected(tiny_clip):
    with pytest.raises(ValueError, match="alignment"):
        FusionMedCLIPModel(tiny_clip, "fmc-tiny", (2,), alignment="mlp")
    with pytest.raises(ValueError, match="out of range"):
        FusionMedCLIPModel(tiny_clip, "fmc-tiny", (2, 9))
    with pytest.raises(ValueError, match="prompt"):
        FusionMedCLIPModel(tiny_clip, "fmc-tiny", (2,), prompt="auto")
