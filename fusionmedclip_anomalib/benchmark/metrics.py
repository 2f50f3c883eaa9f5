"""Threshold-free metrics on raw scores and maps, computed with anomalib's metric classes.

Raw scores can lie anywhere (PatchCore distances, WinCLIP similarities, FusionMedCLIP probabilities). torchmetrics'
binary curves would treat values outside [0, 1] as logits and squash them through a sigmoid, which in float32 turns
large distances into ties and changes AUROC; every curve here is therefore built without that normalisation.

- ``*_AUROC``: area under the ROC curve (anomalib ``AUROC``).
- ``*_AP``: average precision, the step-wise area under the precision-recall curve (anomalib ``AUPR``).
- ``*_F1max``: best F1 over all thresholds (anomalib ``F1Max``).
- ``pixel_AUPRO``: area under the per-region-overlap curve up to ``aupro_fpr_limit``, normalised (anomalib ``AUPRO``).

Pixel metrics pool every pixel of every test image, normal images included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from anomalib.metrics import AUPR, AUPRO, AUROC, F1Max

from fusionmedclip_anomalib.benchmark.config import ALL_METRICS
from fusionmedclip_anomalib.benchmark.outputs import RawOutputs

_FIELDS = ("preds", "target")


@dataclass(frozen=True)
class _Pair:
    """The two fields anomalib's metrics read from a batch."""

    preds: torch.Tensor
    target: torch.Tensor


def _metric(kind: str, fpr_limit: float) -> object:
    if kind == "AUROC":
        return AUROC(fields=_FIELDS, normalization=None)
    if kind == "AP":
        return AUPR(fields=_FIELDS, normalization=None)
    if kind == "F1max":
        return F1Max(fields=_FIELDS)
    if kind == "AUPRO":
        return AUPRO(fields=_FIELDS, fpr_limit=fpr_limit)
    raise ValueError(f"unknown metric {kind!r}")


def score_metric(kind: str, preds: torch.Tensor, target: torch.Tensor, fpr_limit: float = 0.3) -> float | None:
    """One metric on raw predictions.

    Args:
        kind: ``AUROC``, ``AP``, ``F1max`` or ``AUPRO`` (AUPRO needs ``[N, H, W]`` maps and masks).
        preds: raw scores, any real values.
        target: binary ground truth of the same shape.
        fpr_limit: AUPRO's false-positive-rate limit.

    Returns:
        The value, or ``None`` when it is undefined (only one class present).

    Example:
        >>> score_metric("AUROC", torch.tensor([3.0, 40.0, 7.0]), torch.tensor([0, 1, 1]))
        1.0
    """
    target = target.long()
    positives = int(target.sum())
    if positives == 0 or positives == target.numel():
        return None
    metric = _metric(kind, fpr_limit)
    metric.update(_Pair(preds.float(), target))
    value = float(metric.compute())
    return None if math.isnan(value) else value


def compute_metrics(outputs: RawOutputs, names: tuple[str, ...] = ALL_METRICS, aupro_fpr_limit: float = 0.3) -> dict:
    """The requested metrics of one run.

    Args:
        outputs: raw outputs at the evaluation resolution.
        names: metric names, e.g. ``image_AUROC``, ``pixel_AUPRO``.
        aupro_fpr_limit: AUPRO's false-positive-rate limit.

    Returns:
        ``{name: value}``; a pixel metric is ``None`` when the dataset has no masks or the model no maps.
    """
    results: dict[str, float | None] = {}
    pixel_ok = outputs.maps is not None and outputs.masks is not None and bool(outputs.masks.any())
    for name in names:
        level, kind = name.split("_", 1)
        if level == "image":
            results[name] = score_metric(kind, outputs.scores, outputs.labels)
        elif pixel_ok:
            preds, target = (
                (outputs.maps, outputs.masks) if kind == "AUPRO" else (outputs.maps.flatten(), outputs.masks.flatten())
            )
            results[name] = score_metric(kind, preds, target, aupro_fpr_limit)
        else:
            results[name] = None
    return results
