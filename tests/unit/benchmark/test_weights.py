"""The weights: pretrained | random option, applied by constructor argument."""

from __future__ import annotations

import pytest

from fusionmedclip_anomalib.benchmark.weights import WeightsPolicyError, apply_weights_policy


class TimmBacked:
    def __init__(self, backbone: str = "resnet18", pre_trained: bool = True) -> None: ...


class ClipBacked:
    def __init__(self, backbone: str = "ViT-L-14", pretrained: str | None = "openai") -> None: ...


class NoSwitch:
    def __init__(self, epochs: int = 1) -> None: ...


def test_random_turns_off_timm_weights() -> None:
    assert apply_weights_policy(TimmBacked, {"backbone": "resnet18"}, "random", "m") == {
        "backbone": "resnet18",
        "pre_trained": False,
    }
    assert apply_weights_policy(TimmBacked, {}, "pretrained", "m") == {"pre_trained": True}


def test_random_drops_the_open_clip_tag() -> None:
    assert apply_weights_policy(ClipBacked, {"backbone": "fmc-tiny"}, "random", "m") == {
        "backbone": "fmc-tiny",
        "pretrained": None,
    }
    assert apply_weights_policy(ClipBacked, {"pretrained": "openai"}, "pretrained", "m") == {"pretrained": "openai"}


def test_contradictions_are_errors_not_silent_overrides() -> None:
    with pytest.raises(WeightsPolicyError, match="pre_trained=True"):
        apply_weights_policy(TimmBacked, {"pre_trained": True}, "random", "m")
    with pytest.raises(WeightsPolicyError, match="pretrained='openai'"):
        apply_weights_policy(ClipBacked, {"pretrained": "openai"}, "random", "m")
    with pytest.raises(WeightsPolicyError, match="pretrained=null"):
        apply_weights_policy(ClipBacked, {"pretrained": None}, "pretrained", "m")


def test_unknown_models_cannot_be_made_random_but_can_opt_out() -> None:
    with pytest.raises(WeightsPolicyError, match="weights: none"):
        apply_weights_policy(NoSwitch, {}, "random", "Draem")
    assert apply_weights_policy(NoSwitch, {"epochs": 2}, "none", "Draem") == {"epochs": 2}
    assert apply_weights_policy(NoSwitch, {}, "pretrained", "Draem") == {}


def test_anomalib_baselines_are_known() -> None:
    from anomalib.models import Padim, Patchcore

    from fusionmedclip_anomalib.models.winclip import WinClip

    assert apply_weights_policy(Patchcore, {}, "random", "p")["pre_trained"] is False
    assert apply_weights_policy(Padim, {}, "random", "p")["pre_trained"] is False
    assert apply_weights_policy(WinClip, {}, "random", "w")["pretrained"] is None
