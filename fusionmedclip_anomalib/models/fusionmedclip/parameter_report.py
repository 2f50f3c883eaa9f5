"""Counts of trainable versus total parameters of a FusionMedCLIP model."""

from __future__ import annotations

from torch import nn


def parameter_report(model: nn.Module) -> dict[str, float]:
    """Parameters per trainable group, trainable total, model total and the trainable percentage.

    Args:
        model: a :class:`~fusionmedclip_anomalib.models.fusionmedclip.torch_model.FusionMedCLIPModel`.
    """
    groups = {name: sum(p.numel() for p in params) for name, params in model.parameter_groups().items()}
    trainable = sum(groups.values())
    total = sum(p.numel() for p in model.parameters())
    return {**groups, "trainable": trainable, "total": total, "trainable_percent": 100.0 * trainable / total}
