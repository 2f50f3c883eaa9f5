"""Validation during fit runs with LoRA merged and hands training back an unmerged model."""

import warnings

import torch

from fusionmedclip_anomalib import FusionMedCLIP
from fusionmedclip_anomalib.models.fusionmedclip.lora import lora_layers


def test_validation_merges_lora_and_training_gets_it_back_unmerged():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = FusionMedCLIP(backbone="fmc-tiny", pretrained=None, feature_layers=(2, 4, 6), visualizer=False)
    model = module.model
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.05)
    images = torch.rand(1, 3, 224, 224)
    with torch.inference_mode():
        unmerged = model.eval()(images).anomaly_map
        module.on_validation_start()
        assert all(layer.merged for layer in lora_layers(model.clip.visual))
        merged = model(images).anomaly_map
    assert (merged - unmerged).abs().max() < 1e-5

    module.on_validation_end()
    assert not any(layer.merged for layer in lora_layers(model.clip.visual))
    model.train().anomaly_map(images).mean().backward()
    lora = model.parameter_groups()["lora"]
    assert lora and all(p.grad is not None for p in lora)
