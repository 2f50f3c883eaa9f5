"""The anomalib module: optimiser groups, zero-shot rows, compact state, parameter budget."""

import warnings

import pytest
import torch

from fusionmedclip_anomalib import FusionMedCLIP
from fusionmedclip_anomalib.models.fusionmedclip.lightning_model import BACKBONE_PREFIX, trainable_state


def build(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FusionMedCLIP(backbone="fmc-tiny", pretrained=None, feature_layers=(2, 4, 6), **kwargs)


def test_learning_type_makes_engine_train():
    from anomalib import LearningType

    assert build().learning_type == LearningType.ONE_CLASS


def test_optimiser_has_one_group_per_part_with_spec_rates():
    model = build()
    optimiser = model.configure_optimizers()
    assert isinstance(optimiser, torch.optim.AdamW)
    rates = {group["name"]: group["lr"] for group in optimiser.param_groups}
    assert rates == {"prompt": 1e-3, "alignment": 1e-3, "lora": 3e-5, "block_adapter": 5e-5}
    assert all(group["weight_decay"] == 0.01 and group["betas"] == (0.9, 0.999) for group in optimiser.param_groups)
    in_groups = {id(p) for group in optimiser.param_groups for p in group["params"]}
    assert in_groups == {id(p) for p in model.parameters() if p.requires_grad}


def test_zero_shot_row_has_nothing_to_optimise():
    model = build(prompt="manual", alignment="gap", lora=False, block_adapters=False)
    assert model.configure_optimizers() is None
    assert not any(p.requires_grad for p in model.parameters())


def test_trainable_state_keeps_lora_and_heads_only():
    model = build()
    state = trainable_state(model.state_dict())
    backbone = [key for key in state if key.startswith(BACKBONE_PREFIX)]
    assert backbone and all("lora_" in key for key in backbone)
    trainable_names = {f"model.{name}" for name, p in model.model.named_parameters() if p.requires_grad}
    assert trainable_names <= set(state)
    kept = sum(v.numel() for v in state.values())
    assert kept < 0.1 * sum(v.numel() for v in model.state_dict().values())


def test_bad_synthesis_pool_fails_at_construction():
    with pytest.raises(ValueError, match="no_such_task"):
        build(synthesis={"no_such_task": 1.0})
    with pytest.raises(ValueError, match="focal_on"):
        build(focal_on="both")


def test_pre_processor_resizes_without_normalising():
    transform = build().pre_processor.transform
    image = torch.rand(1, 3, 100, 120)
    out = transform(image)
    assert out.shape[-2:] == (224, 224)
    assert out.min() >= 0 and out.max() <= 1


def test_same_seed_same_initial_weights():
    first, second, other = build(seed=3), build(seed=3), build(seed=4)
    a, b, c = (
        {k: v for k, v in trainable_state(m.state_dict()).items() if k.startswith("model.")}
        for m in (first, second, other)
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.slow
def test_vit_l14_trainable_share_below_two_percent():
    from fusionmedclip_anomalib.models.fusionmedclip.parameter_report import parameter_report
    from fusionmedclip_anomalib.models.fusionmedclip.torch_model import FusionMedCLIPModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FusionMedCLIPModel.from_backbone("ViT-L-14", None)  # SPEC defaults: layers 14, 18, 24
    report = parameter_report(model)
    assert report["alignment"] == 3 * (1024 * 768 + 768)  # 1x1 conv C=1024 -> D=768, read from the model
    assert report["lora"] == 24 * (8 * (1024 + 3 * 1024) + 8 * (1024 + 1024) + 8 * (1024 + 4096) + 8 * (4096 + 1024))
    assert report["trainable_percent"] < 2.0
