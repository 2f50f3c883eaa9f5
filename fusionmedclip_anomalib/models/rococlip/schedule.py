"""Step-based learning-rate schedule: linear warmup, then cosine decay to a minimum learning rate."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak learning rate at optimiser step ``step`` (0-based).

    * warmup, ``step < warmup_steps``: ``(step + 1) / warmup_steps``, reaching 1 on the last warmup step;
    * then ``min_ratio + (1 - min_ratio) * 0.5 * (1 + cos(pi * p))`` with
      ``p = (step - warmup_steps) / (total_steps - warmup_steps)`` clamped to ``[0, 1]``: 1 at the end of warmup,
      ``min_ratio`` at ``step = total_steps`` and after.

    Args:
        step: the optimiser step.
        warmup_steps: number of warmup steps (0 for none).
        total_steps: length of the whole schedule, warmup included.
        min_ratio: ``min_lr / peak_lr``.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(
    optimizer: Optimizer, warmup_steps: int, total_steps: int, peak_lr: float, min_lr: float
) -> LambdaLR:
    """A ``LambdaLR`` applying :func:`warmup_cosine_factor` to every parameter group, stepped once per optimiser step.

    Each group keeps its own peak learning rate (layer-wise decay); all groups share the factor, so the group whose
    peak is ``peak_lr`` ends at exactly ``min_lr`` and a group at ``peak_lr * s`` ends at ``min_lr * s``.

    Example:
        >>> import torch
        >>> optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=3e-6)
        >>> scheduler = warmup_cosine_scheduler(optimizer, warmup_steps=10, total_steps=100, peak_lr=3e-6, min_lr=1e-7)
    """
    if peak_lr <= 0:
        raise ValueError(f"peak learning rate must be > 0, got {peak_lr}")
    min_ratio = min_lr / peak_lr
    return LambdaLR(optimizer, lambda step: warmup_cosine_factor(step, warmup_steps, total_steps, min_ratio))
