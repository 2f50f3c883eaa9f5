"""The bridge between training batches (torch) and the anomaly synthesis pool (numpy), and the hook that moves
synthesis into the training DataLoader's workers so that it overlaps with the model's compute."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchvision import tv_tensors

LUMA = (0.299, 0.587, 0.114)


class AnomalySynthesiser:
    """Turns a batch of normal RGB images in [0, 1] into (synthesised images, masks) with the task pool.

    The support set of the CutPaste / structural tasks is the batch itself (a patch may come from another normal
    image or from elsewhere in the same one). Each call draws its ``numpy`` generator's seed from torch's global
    generator, so a run seeded with ``seed_everything`` is reproducible, and so is one whose batches are made in
    DataLoader workers (torch seeds every worker from the main process's generator, afresh each epoch).

    Example:
        >>> synthesiser = AnomalySynthesiser("mediclip")
        >>> images, masks = synthesiser(torch.rand(4, 3, 224, 224))
        >>> masks.shape
        torch.Size([4, 224, 224])
    """

    def __init__(self, pool: str | Mapping[str, float] = "fusionmedclip") -> None:
        from fusionmedclip_anomalib.synthesis import SynthesisPool

        SynthesisPool(pool)  # validate now: a bad pool fails at construction, not at the first training step
        self.pool = pool

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from fusionmedclip_anomalib.synthesis import SynthesisPool

        rng = np.random.default_rng(torch.randint(0, 2**62, (2,)).tolist())
        grey = to_grey_uint8(images)
        pool = SynthesisPool(self.pool, support=grey)
        outputs, masks = zip(*(pool(image, rng) for image in grey))
        out = torch.from_numpy(np.stack(outputs)).to(images.device, images.dtype) / 255.0
        return out.unsqueeze(1).expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(np.stack(masks)).to(images.device)


@dataclass
class SynthesisedBatch:
    """A training batch of synthesised anomalies: images ``(B, 3, H, W)`` in [0, 1] and their soft masks
    ``(B, H, W)`` in [0, 1]. anomalib's batches would turn the masks to bool; the ``Mask`` type keeps them soft and
    makes the pre-processor's Resize treat them as masks."""

    image: torch.Tensor
    gt_mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.image)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, masks)`` as plain tensors: ops on torchvision's tensor types pay a dispatch toll each."""
        return self.image.as_subclass(torch.Tensor), self.gt_mask.as_subclass(torch.Tensor)


class SynthesisCollate:
    """A DataLoader ``collate_fn``: the loader's own collation, then anomaly synthesis of the collated batch. It runs
    wherever the loader collates, in the worker processes when ``num_workers > 0``."""

    def __init__(self, collate_fn: Callable[[Sequence[Any]], Any], synthesiser: AnomalySynthesiser) -> None:
        self.collate_fn = collate_fn
        self.synthesiser = synthesiser

    def __call__(self, items: Sequence[Any]) -> SynthesisedBatch:
        images, masks = self.synthesiser(self.collate_fn(items).image)
        return SynthesisedBatch(image=tv_tensors.Image(images), gt_mask=tv_tensors.Mask(masks))


def synthesise_in_loader(loader: object, synthesiser: AnomalySynthesiser) -> bool:
    """Make ``loader`` (the DataLoader Lightning requested for this fit) yield :class:`SynthesisedBatch` es from its
    next iterator on; returns whether it changed anything.

    Only this loader object changes: the datamodule makes a new one for every fit, so a baseline trained on the same
    datamodule still gets clean normal images. Anything but a single ``DataLoader`` is left alone (the model then
    synthesises in its training step).
    """
    if not isinstance(loader, DataLoader) or isinstance(loader.collate_fn, SynthesisCollate):
        return False
    loader.collate_fn = SynthesisCollate(loader.collate_fn, synthesiser)
    if loader.persistent_workers:
        # persistent workers keep the collate_fn they started with: drop them, the next iterator starts new ones
        loader._iterator = None
    return True


def to_grey_uint8(images: torch.Tensor) -> list[np.ndarray]:
    """RGB ``(B, 3, H, W)`` in [0, 1] -> grey-level uint8 ``H x W`` arrays (ITU-R 601 luma)."""
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    grey = (images * weights).sum(dim=1).clamp(0, 1).mul(255).round().to(torch.uint8)
    return list(grey.cpu().numpy())
