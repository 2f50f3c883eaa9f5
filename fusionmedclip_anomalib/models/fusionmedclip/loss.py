"""Training losses: focal loss (on the image score or per pixel) and binary Dice on the anomaly map."""

from __future__ import annotations

import torch

PROBABILITY_EPS = 1e-6


def binary_focal_loss(probability: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Mean focal loss ``-(1 - p_t)^gamma log(p_t)`` of probabilities against binary targets (any equal shapes)."""
    p = probability.clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    p_t = torch.where(target > 0.5, p, 1 - p)
    return (-((1 - p_t) ** gamma) * torch.log(p_t)).mean()


def binary_dice_loss(probability: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Mean over images of ``1 - (2 sum(p y) + s) / (sum p + sum y + s)`` for maps ``(B, H, W)``."""
    p, y = probability.flatten(1), target.flatten(1)
    dice = (2 * (p * y).sum(dim=1) + smooth) / (p.sum(dim=1) + y.sum(dim=1) + smooth)
    return (1 - dice).mean()
