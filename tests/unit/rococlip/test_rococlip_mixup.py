"""Mixup of images with matching caption-target mixup."""

import pytest
import torch

from fusionmedclip_anomalib.models.rococlip.mixup import mixup_images, mixup_targets


def test_alpha_zero_is_the_identity():
    images = torch.rand(5, 3, 8, 8)
    batch = mixup_images(images, alpha=0.0)
    assert batch.images is images
    assert batch.lam == 1.0
    assert torch.equal(batch.permutation, torch.arange(5))
    to_text, to_image = mixup_targets(batch.lam, batch.permutation, num_candidates=5)
    assert torch.equal(to_text, torch.eye(5)) and torch.equal(to_image, torch.eye(5))


def test_mixed_images_are_the_stated_convex_combination():
    torch.manual_seed(0)
    images = torch.rand(6, 3, 4, 4)
    batch = mixup_images(images, alpha=0.2)
    assert 0.0 <= batch.lam <= 1.0
    assert sorted(batch.permutation.tolist()) == list(range(6))
    expected = batch.lam * images + (1 - batch.lam) * images[batch.permutation]
    assert torch.allclose(batch.images, expected)


def test_text_targets_follow_the_image_mixing():
    lam, permutation = 0.7, torch.tensor([2, 0, 1, 3])
    to_text, to_image = mixup_targets(lam, permutation, num_candidates=4)
    expected = torch.tensor([[0.7, 0.0, 0.3, 0.0], [0.3, 0.7, 0.0, 0.0], [0.0, 0.3, 0.7, 0.0], [0.0, 0.0, 0.0, 1.0]])
    assert torch.allclose(to_text, expected)
    # Caption j belongs to mixed image j (lam) and to the image that took j as its partner (1 - lam).
    assert torch.allclose(to_image, expected.t())
    assert torch.allclose(to_text.sum(1), torch.ones(4)) and torch.allclose(to_image.sum(1), torch.ones(4))


def test_without_text_mixup_targets_stay_one_hot():
    to_text, to_image = mixup_targets(0.6, torch.tensor([1, 0, 2]), num_candidates=3, text_mixup=False)
    assert torch.equal(to_text, torch.eye(3)) and torch.equal(to_image, torch.eye(3))


def test_targets_sit_in_this_process_block_of_the_global_batch():
    to_text, to_image = mixup_targets(0.5, torch.tensor([1, 0]), num_candidates=6, offset=2)
    assert torch.allclose(to_text, torch.tensor([[0, 0, 0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5, 0, 0]]))
    assert to_image[:, :2].abs().sum() == 0 and to_image[:, 4:].abs().sum() == 0


def test_negative_alpha_is_rejected():
    with pytest.raises(ValueError, match="alpha"):
        mixup_images(torch.rand(2, 3, 4, 4), alpha=-0.1)
