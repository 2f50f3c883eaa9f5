"""Backbone loading: bundled configs, random weights, local checkpoints, offline failures."""

import time

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from fusionmedclip_anomalib.clip import BackboneWeightsUnavailable, load_clip, patch_token_maps, run_vision_blocks


@pytest.fixture(scope="module")
def tiny():
    with pytest.warns(UserWarning, match="RANDOM weights"):
        return load_clip("fmc-tiny", None)


def test_tiny_config_is_small_vit(tiny):
    assert len(tiny.visual.transformer.resblocks) <= 8
    assert tiny.visual.image_size == (224, 224)
    assert sum(p.numel() for p in tiny.parameters()) < 10_000_000


def test_block_outputs_match_open_clip_intermediates(tiny):
    images = torch.randn(2, 3, 224, 224)
    ours = run_vision_blocks(tiny.visual, images, [2, 6])
    reference = tiny.visual.forward_intermediates(
        images, indices=[1, 5], output_fmt="NLC", output_extra_tokens=True, intermediates_only=True
    )
    for layer, expected_patches, expected_cls in zip(
        [2, 6], reference["image_intermediates"], reference["image_intermediates_prefix"]
    ):
        torch.testing.assert_close(ours[layer][:, 1:], expected_patches)
        torch.testing.assert_close(ours[layer][:, :1], expected_cls)


def test_patch_token_maps_drop_class_token_and_keep_layout():
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)  # 1 cls + 2x2 patches, 3 channels
    maps = patch_token_maps(tokens, (2, 2))
    assert maps.shape == (2, 3, 2, 2)
    torch.testing.assert_close(maps[0, :, 0, 1], tokens[0, 2])  # second patch -> row 0, column 1


def test_layers_out_of_range_are_rejected(tiny):
    with pytest.raises(ValueError, match="blocks 1..6"):
        run_vision_blocks(tiny.visual, torch.randn(1, 3, 224, 224), [0, 7])


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_local_checkpoint_round_trip(tiny, tmp_path, suffix):
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in tiny.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    loaded = load_clip("fmc-tiny", str(path))
    for key, value in tiny.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_missing_weights_fail_fast_and_say_how_to_supply_them(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(BackboneWeightsUnavailable, match=r"ViT-L-14.*'openai'.*pretrained='/path/to/"):
        load_clip("ViT-L-14", "openai")
    assert time.perf_counter() - start < 5


def test_missing_file_and_unknown_tag_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_clip("fmc-tiny", str(tmp_path / "nope.pt"))
    with pytest.raises(ValueError, match="not-a-tag.*Tags of ViT-B-16"):
        load_clip("ViT-B-16", "not-a-tag")
    with pytest.raises(ValueError, match="Unknown open_clip architecture"):
        load_clip("ViT-Q-99", None)


def test_checkpoint_of_another_architecture_is_rejected(tiny, tmp_path):
    path = tmp_path / "small.pt"
    torch.save(open_clip.create_model("fmc-small").state_dict(), path)
    with pytest.raises(ValueError, match="does not fit architecture fmc-tiny"):
        load_clip("fmc-tiny", str(path))


def test_sidecar_restores_quick_gelu_of_openai_derived_checkpoints(tmp_path):
    from open_clip.transformer import QuickGELU

    quick = open_clip.create_model("fmc-tiny", force_quick_gelu=True)
    path = tmp_path / "rococlip.pt"
    torch.save(quick.state_dict(), path)
    plain = load_clip("fmc-tiny", str(path))
    assert not any(isinstance(m, QuickGELU) for m in plain.modules())
    path.with_suffix(".json").write_text('{"backbone": "fmc-tiny", "quick_gelu": true}')
    restored = load_clip("fmc-tiny", str(path))
    assert any(isinstance(m, QuickGELU) for m in restored.modules())
    images = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(restored.encode_image(images), quick.eval().encode_image(images))
