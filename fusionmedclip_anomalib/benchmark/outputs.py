"""Collect a model's raw test outputs at the common evaluation resolution.

:class:`RawOutputCollector` is a Lightning callback. On every test batch it takes the model's own ``pred_score`` and
``anomaly_map`` - the harness builds models without anomalib's post-processor, so nothing has rescaled, clamped or
thresholded them - and brings every model to one resolution: maps bilinearly, ground-truth masks by nearest
neighbour, then binarised. It also counts test passes, so a run can prove it looked at the test set once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback
from torch.nn import functional as F


@dataclass
class RawOutputs:
    """Raw test outputs of one run, at the evaluation resolution.

    Args:
        scores: image scores ``[N]`` (the model's ``pred_score``; the max of its map when it gives none).
        labels: image labels ``[N]`` (1 = abnormal).
        maps: anomaly maps ``[N, S, S]`` or ``None`` when the model gives none.
        masks: binary ground-truth masks ``[N, S, S]`` or ``None`` when the dataset has none.
        image_paths: test image paths in test order.
        score_source: ``pred_score`` or ``map_max``.
        gallery: a few test images for the heatmap gallery (see :meth:`RawOutputCollector.gallery`).
    """

    scores: torch.Tensor
    labels: torch.Tensor
    maps: torch.Tensor | None
    masks: torch.Tensor | None
    image_paths: list[str]
    score_source: str
    gallery: dict[str, np.ndarray] = field(default_factory=dict)


class RawOutputCollector(Callback):
    """Gather raw scores and maps of the test pass.

    Args:
        image_size: evaluation resolution (square).
        gallery_size: how many test images (half abnormal, half normal, first in test order) to keep as pictures.

    Example:
        >>> collector = RawOutputCollector(image_size=224)
        >>> engine = Engine(callbacks=[collector])  # doctest: +SKIP
        >>> engine.trainer.test(model, datamodule=datamodule)  # doctest: +SKIP
        >>> outputs = collector.result()  # doctest: +SKIP
    """

    def __init__(self, image_size: int = 224, gallery_size: int = 4) -> None:
        self.size = (image_size, image_size)
        self.gallery_size = gallery_size
        self.test_passes = 0
        self.test_images = 0
        self._scores: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []
        self._maps: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []
        self._paths: list[str] = []
        self._map_max_scores = False
        self._gallery: list[dict[str, Any]] = []

    def on_test_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Count test passes."""
        del trainer, pl_module
        self.test_passes += 1

    def on_test_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Take the batch's raw predictions (``test_step`` returns the batch updated with them)."""
        del trainer, pl_module, batch_idx, dataloader_idx
        result = outputs if _has_predictions(outputs) else batch
        if not _has_predictions(result):
            raise RuntimeError("test_step returned neither pred_score nor anomaly_map.")
        maps = result.anomaly_map
        if maps is not None:
            maps = maps.detach().float()
            maps = maps.reshape(maps.shape[0], *maps.shape[-2:])
        scores = result.pred_score
        if scores is None:
            scores = maps.flatten(1).amax(dim=1)
            self._map_max_scores = True
        scores = scores.detach().float().reshape(-1).cpu()
        labels = result.gt_label.detach().reshape(-1).long().cpu()
        if maps is not None:
            self._maps.append(self._resize(maps, "bilinear").cpu())
        masks = result.gt_mask
        if masks is not None:
            masks = masks.detach().float().reshape(masks.shape[0], *masks.shape[-2:])
            self._masks.append(self._resize(masks, "nearest").cpu() > 0.5)
        self._scores.append(scores)
        self._labels.append(labels)
        self._paths.extend(str(path) for path in (result.image_path or [""] * len(scores)))
        self._keep_for_gallery(result.image, scores, labels, masks)
        self.test_images += len(scores)

    def result(self) -> RawOutputs:
        """The collected outputs.

        Returns:
            Everything gathered in the test pass.

        Raises:
            RuntimeError: no test batch was seen.
        """
        if not self._scores:
            raise RuntimeError("no test batch was collected; the test set is empty or the test loop did not run.")
        maps = torch.cat(self._maps) if self._maps else None
        masks = torch.cat(self._masks) if len(self._masks) == len(self._scores) else None
        return RawOutputs(
            scores=torch.cat(self._scores),
            labels=torch.cat(self._labels),
            maps=maps,
            masks=masks,
            image_paths=list(self._paths),
            score_source="map_max" if self._map_max_scores else "pred_score",
            gallery=self.gallery(maps),
        )

    def gallery(self, maps: torch.Tensor | None) -> dict[str, np.ndarray]:
        """Pictures of the kept test images.

        Args:
            maps: all anomaly maps at evaluation resolution (``None`` if the model gives none).

        Returns:
            ``image`` uint8 ``[G, S, S, 3]`` (per-image contrast-stretched model input), ``anomaly_map`` float32
            ``[G, S, S]`` (raw), ``mask`` bool ``[G, S, S]`` (all False without masks), ``score``, ``label``,
            ``image_path``; empty when nothing was kept.
        """
        if not self._gallery:
            return {}
        index = [item["index"] for item in self._gallery]
        blank = np.zeros((len(index), *self.size), dtype=np.float32)
        return {
            "image": np.stack([item["image"] for item in self._gallery]),
            "anomaly_map": maps[index].numpy().astype(np.float32) if maps is not None else blank,
            "mask": np.stack([item["mask"] for item in self._gallery]),
            "score": np.array([item["score"] for item in self._gallery], dtype=np.float64),
            "label": np.array([item["label"] for item in self._gallery], dtype=np.int64),
            "image_path": np.array([self._paths[i] for i in index]),
        }

    def _resize(self, tensor: torch.Tensor, mode: str) -> torch.Tensor:
        if tuple(tensor.shape[-2:]) == self.size:
            return tensor
        options = {"align_corners": False} if mode == "bilinear" else {}
        return F.interpolate(tensor.unsqueeze(1), size=self.size, mode=mode, **options).squeeze(1)

    def _keep_for_gallery(
        self,
        images: torch.Tensor,
        scores: torch.Tensor,
        labels: torch.Tensor,
        masks: torch.Tensor | None,
    ) -> None:
        wanted = {1: (self.gallery_size + 1) // 2, 0: self.gallery_size // 2}
        for item in self._gallery:
            wanted[item["label"]] -= 1
        for row, label in enumerate(labels.tolist()):
            if wanted.get(label, 0) <= 0:
                continue
            wanted[label] -= 1
            picture = images[row : row + 1].detach().float()
            if tuple(picture.shape[-2:]) != self.size:
                picture = F.interpolate(picture, size=self.size, mode="bilinear", align_corners=False)
            picture = picture[0].cpu()
            low, high = picture.amin(), picture.amax()
            picture = ((picture - low) / (high - low).clamp_min(1e-12) * 255).round().byte()
            mask = masks[row : row + 1] if masks is not None else None
            mask = self._resize(mask, "nearest")[0] > 0.5 if mask is not None else torch.zeros(self.size, dtype=bool)
            self._gallery.append(
                {
                    "index": self.test_images + row,
                    "image": picture.permute(1, 2, 0).numpy(),
                    "mask": mask.cpu().numpy(),
                    "score": float(scores[row]),
                    "label": label,
                }
            )


def _has_predictions(item: Any) -> bool:
    return getattr(item, "pred_score", None) is not None or getattr(item, "anomaly_map", None) is not None
