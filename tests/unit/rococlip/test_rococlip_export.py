"""Export of the fine-tuned CLIP as an open_clip state dict that load_clip reads back."""

import json
import warnings
from pathlib import Path

import pytest
import torch

from fusionmedclip_anomalib.clip import load_clip
from fusionmedclip_anomalib.models.rococlip.dropout import add_residual_dropout
from fusionmedclip_anomalib.models.rococlip.export import export_open_clip_checkpoint


@pytest.fixture()
def clip():
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_clip("fmc-tiny", None)


@pytest.mark.parametrize("name", ["rococlip.pt", "rococlip.safetensors"])
def test_round_trip_through_load_clip(clip, tmp_path: Path, name: str):
    add_residual_dropout(clip.visual, 0.1)  # hooks must not leak into the checkpoint
    path = export_open_clip_checkpoint(clip, tmp_path / name, backbone="fmc-tiny", metadata={"epoch": 3})
    loaded = load_clip("fmc-tiny", path)
    expected = clip.state_dict()
    assert set(loaded.state_dict()) == set(expected)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, expected[key]), key
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["backbone"] == "fmc-tiny" and sidecar["metadata"] == {"epoch": 3}


def test_unknown_suffix_is_rejected(clip, tmp_path: Path):
    with pytest.raises(ValueError, match="must end with"):
        export_open_clip_checkpoint(clip, tmp_path / "rococlip.ckpt", backbone="fmc-tiny")


def test_quick_gelu_checkpoints_name_the_quickgelu_variant(tmp_path: Path, monkeypatch):
    import open_clip

    quick = open_clip.create_model("fmc-tiny", pretrained=None, force_quick_gelu=True)
    known = open_clip.list_models()
    monkeypatch.setattr(open_clip, "list_models", lambda: [*known, "fmc-tiny-quickgelu"])
    path = export_open_clip_checkpoint(quick, tmp_path / "rococlip.pt", backbone="fmc-tiny")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["backbone"] == "fmc-tiny-quickgelu" and sidecar["quick_gelu"] is True


def fusionmedclip_map(pretrained: Path, images: torch.Tensor) -> torch.Tensor:
    """Anomaly map of a stage-2 FusionMedCLIP built on ``pretrained`` (adapters seeded, so only the backbone varies)."""
    from fusionmedclip_anomalib import FusionMedCLIP

    torch.manual_seed(0)
    model = FusionMedCLIP(backbone="fmc-tiny", pretrained=str(pretrained), feature_layers=(2, 4, 6))
    model.model.eval()
    with torch.no_grad():
        return model.model(images).anomaly_map


def test_exported_checkpoint_feeds_fusionmedclip(initial_checkpoint: Path, tmp_path: Path):
    clip = load_clip("fmc-tiny", initial_checkpoint)
    with torch.no_grad():  # a stand-in for fine-tuning: move the vision tower's weights
        for param in clip.visual.parameters():
            param.add_(0.05 * torch.randn_like(param))
    path = export_open_clip_checkpoint(clip, tmp_path / "rococlip.pt", backbone="fmc-tiny")
    images = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    original = fusionmedclip_map(initial_checkpoint, images)
    assert torch.equal(original, fusionmedclip_map(initial_checkpoint, images))
    assert not torch.allclose(fusionmedclip_map(path, images), original, atol=1e-5)
