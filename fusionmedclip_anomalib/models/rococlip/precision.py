"""The default Lightning precision for ROCOCLIP training on the current machine."""

from __future__ import annotations

import torch


def default_precision() -> str:
    """``"bf16-mixed"`` on a CUDA device that supports bfloat16, ``"32-true"`` otherwise (CPU, older GPUs)."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"
