"""Symmetric contrastive loss: formula, symmetry, label smoothing, soft targets."""

import math

import pytest
import torch
import torch.nn.functional as F

from fusionmedclip_anomalib.models.rococlip.loss import smooth_targets, soft_cross_entropy, symmetric_contrastive_loss


def _features(n: int = 6, d: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = F.normalize(torch.randn(n, d, generator=generator), dim=-1)
    texts = F.normalize(torch.randn(n, d, generator=generator), dim=-1)
    return images, texts


def _loss(images, texts, scale=10.0, smoothing=0.0):
    eye = torch.eye(images.shape[0])
    return symmetric_contrastive_loss(images, texts, images, texts, scale, eye, eye, label_smoothing=smoothing)


def test_one_hot_targets_give_the_clip_loss():
    images, texts = _features()
    logits = 10.0 * images @ texts.t()
    labels = torch.arange(6)
    expected = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))
    assert torch.allclose(_loss(images, texts), expected, atol=1e-6)


def test_label_smoothing_matches_torch_cross_entropy():
    images, texts = _features()
    logits = 10.0 * images @ texts.t()
    labels = torch.arange(6)
    expected = 0.5 * (
        F.cross_entropy(logits, labels, label_smoothing=0.1) + F.cross_entropy(logits.t(), labels, label_smoothing=0.1)
    )
    assert torch.allclose(_loss(images, texts, smoothing=0.1), expected, atol=1e-6)


def test_loss_is_symmetric_in_images_and_texts():
    images, texts = _features()
    assert torch.allclose(_loss(images, texts), _loss(texts, images), atol=1e-6)


def test_aligned_pairs_score_lower_than_random_ones():
    images, texts = _features()
    assert _loss(images, images, scale=50.0) < 0.01 < _loss(images, texts, scale=50.0)
    # Label smoothing puts a floor under the loss even for perfect alignment.
    assert _loss(images, images, scale=50.0, smoothing=0.1) > 0.1


def test_smooth_targets_keeps_rows_normalised_and_mixup_peaks():
    targets = torch.tensor([[0.7, 0.3, 0.0, 0.0]])
    smoothed = smooth_targets(targets, 0.1)
    assert torch.allclose(smoothed, torch.tensor([[0.655, 0.295, 0.025, 0.025]]))
    assert math.isclose(float(smoothed.sum()), 1.0, rel_tol=1e-6)
    with pytest.raises(ValueError, match="label_smoothing"):
        smooth_targets(targets, 1.0)


def test_soft_cross_entropy_of_a_uniform_prediction_is_log_k():
    assert math.isclose(float(soft_cross_entropy(torch.zeros(2, 5), torch.eye(5)[:2])), math.log(5), rel_tol=1e-6)


def test_local_rows_against_a_larger_global_batch():
    images, texts = _features(n=8)
    local = slice(4, 8)
    targets = torch.eye(8)[local]
    loss = symmetric_contrastive_loss(images[local], texts[local], images, texts, 10.0, targets, targets)
    labels = torch.arange(4, 8)
    image_loss = F.cross_entropy(10.0 * images[local] @ texts.t(), labels)
    text_loss = F.cross_entropy(10.0 * texts[local] @ images.t(), labels)
    expected = 0.5 * (image_loss + text_loss)
    assert torch.allclose(loss, expected, atol=1e-6)
