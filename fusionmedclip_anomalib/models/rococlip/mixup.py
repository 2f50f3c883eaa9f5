"""Mixup of images with the matching mixup of their caption targets.

What is mixed:

* **images** (pixels, after normalisation): ``x~_i = lam * x_i + (1 - lam) * x_perm(i)`` with one ``lam ~ Beta(a, a)``
  per batch and a random permutation ``perm`` of the local batch;
* **captions** (text mixup): not the token ids or the text embeddings, but the contrastive *targets*. Mixed image
  ``i`` should match caption ``i`` with weight ``lam`` and caption ``perm(i)`` with weight ``1 - lam``; read the same
  matrix by columns and caption ``j`` should match mixed image ``j`` with weight ``lam`` and mixed image
  ``perm^-1(j)`` with weight ``1 - lam``. The text tower still encodes the real captions.

Without text mixup the mixed image keeps the one-hot target of its first caption (``i``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MixupBatch:
    """Mixed images plus what is needed to build the matching targets.

    Attributes:
        images: the mixed images, same shape as the input.
        lam: weight of the original image (1.0 means no mixing).
        permutation: ``perm`` of the module docstring, indices into the local batch.
    """

    images: torch.Tensor
    lam: float
    permutation: torch.Tensor


def mixup_images(images: torch.Tensor, alpha: float) -> MixupBatch:
    """Mix every image with another image of the batch (see the module docstring).

    ``alpha == 0`` disables mixup: the images come back untouched, ``lam = 1`` and the permutation is the identity.
    Draws from torch's global random state (seeded by ``seed_everything``).

    Example:
        >>> batch = mixup_images(torch.rand(4, 3, 8, 8), alpha=0.2)
        >>> batch.images.shape
        torch.Size([4, 3, 8, 8])
    """
    if alpha < 0:
        raise ValueError(f"mixup alpha must be >= 0, got {alpha}")
    size = images.shape[0]
    if alpha == 0 or size < 2:
        return MixupBatch(images, 1.0, torch.arange(size, device=images.device))
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    permutation = torch.randperm(size).to(images.device)
    mixed = lam * images + (1.0 - lam) * images[permutation]
    return MixupBatch(mixed, lam, permutation)


def mixup_targets(
    lam: float, permutation: torch.Tensor, num_candidates: int, offset: int = 0, text_mixup: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image->text and text->image target distributions of the local rows over all candidates.

    Args:
        lam: the mixing weight from :func:`mixup_images`.
        permutation: the permutation from :func:`mixup_images` (local batch of size ``B``).
        num_candidates: ``N``, the size of the (gathered) global batch.
        offset: index of this process's first sample in the global batch (``rank * B``).
        text_mixup: mix the caption targets with the same ``lam`` and permutation as the images.

    Returns:
        ``(image_to_text, text_to_image)``, both ``(B, N)`` with rows summing to 1.
    """
    size = permutation.shape[0]
    rows = torch.arange(size, device=permutation.device)
    image_to_text = torch.zeros(size, num_candidates, device=permutation.device)
    if not text_mixup:
        image_to_text[rows, rows + offset] = 1.0
        return image_to_text, image_to_text.clone()
    local = torch.zeros(size, size, device=permutation.device)
    local.index_put_((rows, rows), torch.full((size,), lam, device=permutation.device), accumulate=True)
    local.index_put_((rows, permutation), torch.full((size,), 1.0 - lam, device=permutation.device), accumulate=True)
    # Mixing only happens inside the local batch, so every non-zero target sits in this process's block.
    image_to_text[:, offset : offset + size] = local
    text_to_image = torch.zeros_like(image_to_text)
    text_to_image[:, offset : offset + size] = local.t()
    return image_to_text, text_to_image
