"""The bridge between a training batch (torch) and the anomaly synthesis pool (numpy)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

LUMA = (0.299, 0.587, 0.114)


class AnomalySynthesiser:
    """Turns a batch of normal RGB images in [0, 1] into (synthesised images, masks) with the task pool.

    The support set of the CutPaste / structural tasks is the batch itself (a patch may come from another normal
    image or from elsewhere in the same one). The random stream
    is a ``numpy.random.Generator`` seeded with ``seed`` and restarted by :meth:`reset`, so a training run is
    reproducible.

    Example:
        >>> synthesiser = AnomalySynthesiser("mediclip", seed=0)
        >>> images, masks = synthesiser(torch.rand(4, 3, 224, 224))
        >>> masks.shape
        torch.Size([4, 224, 224])
    """

    def __init__(self, pool: str | Mapping[str, float] = "fusionmedclip", seed: int = 0) -> None:
        from fusionmedclip_anomalib.synthesis import SynthesisPool

        SynthesisPool(pool)  # validate now: a bad pool fails at construction, not at the first training step
        self.pool = pool
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Restart the random stream at the seed."""
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from fusionmedclip_anomalib.synthesis import SynthesisPool

        grey = to_grey_uint8(images)
        pool = SynthesisPool(self.pool, support=grey)
        outputs, masks = zip(*(pool(image, self.rng) for image in grey))
        out = torch.from_numpy(np.stack(outputs)).to(images.device, images.dtype) / 255.0
        return out.unsqueeze(1).expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(np.stack(masks)).to(images.device)


def to_grey_uint8(images: torch.Tensor) -> list[np.ndarray]:
    """RGB ``(B, 3, H, W)`` in [0, 1] -> grey-level uint8 ``H x W`` arrays (ITU-R 601 luma)."""
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    grey = (images * weights).sum(dim=1).clamp(0, 1).mul(255).round().to(torch.uint8)
    return list(grey.cpu().numpy())
