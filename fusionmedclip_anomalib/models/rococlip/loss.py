"""Symmetric CLIP contrastive loss with soft targets and label smoothing."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def smooth_targets(targets: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Blend each target row with the uniform distribution over its candidates.

    ``(1 - eps) * targets + eps / K`` for ``K`` candidates (columns); rows of a one-hot matrix give the usual label
    smoothing, rows of a mixup matrix keep their two peaks.
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if label_smoothing == 0.0:
        return targets
    return targets * (1.0 - label_smoothing) + label_smoothing / targets.shape[-1]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-sum_j targets[i, j] * log_softmax(logits)[i, j]``."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def symmetric_contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    all_image_features: torch.Tensor,
    all_text_features: torch.Tensor,
    logit_scale: torch.Tensor | float,
    image_to_text_targets: torch.Tensor,
    text_to_image_targets: torch.Tensor,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The CLIP loss: mean of the image->text and text->image cross-entropies over in-batch candidates.

    Each process scores its own (local) rows against every candidate of the global batch, which is the local batch
    itself on one device. All features must already be L2-normalised.

    Args:
        image_features: local image embeddings ``(B, D)``.
        text_features: local text embeddings ``(B, D)``.
        all_image_features: candidate image embeddings ``(N, D)`` (the gathered global batch, ``N >= B``).
        all_text_features: candidate text embeddings ``(N, D)``.
        logit_scale: the multiplier of the cosine similarities (``1 / temperature``, not its log).
        image_to_text_targets: ``(B, N)`` target distribution of each local image over the candidate captions.
        text_to_image_targets: ``(B, N)`` target distribution of each local caption over the candidate images.
        label_smoothing: ``eps`` of :func:`smooth_targets`, applied to both directions.

    Returns:
        The scalar loss.
    """
    logits_per_image = logit_scale * image_features @ all_text_features.t()
    logits_per_text = logit_scale * text_features @ all_image_features.t()
    image_loss = soft_cross_entropy(logits_per_image, smooth_targets(image_to_text_targets, label_smoothing))
    text_loss = soft_cross_entropy(logits_per_text, smooth_targets(text_to_image_targets, label_smoothing))
    return 0.5 * (image_loss + text_loss)
