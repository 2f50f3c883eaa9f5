"""Residual-branch dropout hooks in the vision tower."""

import warnings

import pytest
import torch

from fusionmedclip_anomalib.clip import load_clip
from fusionmedclip_anomalib.models.rococlip.dropout import add_residual_dropout


@pytest.fixture()
def clip():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_clip("fmc-tiny", None)


def test_dropout_acts_in_training_only_and_adds_no_state(clip):
    keys = set(clip.state_dict())
    handles = add_residual_dropout(clip.visual, 0.1)
    assert len(handles) == 2 * len(clip.visual.transformer.resblocks)
    assert set(clip.state_dict()) == keys
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        clip.eval()
        assert torch.equal(clip.encode_image(images), clip.encode_image(images))
        clip.train()
        assert not torch.allclose(clip.encode_image(images), clip.encode_image(images))
        for handle in handles:
            handle.remove()
        assert torch.equal(clip.encode_image(images), clip.encode_image(images))


def test_zero_dropout_adds_nothing_and_bad_p_is_rejected(clip):
    assert add_residual_dropout(clip.visual, 0.0) == []
    with pytest.raises(ValueError, match="dropout"):
        add_residual_dropout(clip.visual, 1.0)
