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
