"""What a run record says about the software and hardware it ran on."""

from __future__ import annotations

import os
import platform
from importlib import metadata

import torch

_PACKAGES = (
    "fusionmedclip-anomalib",
    "anomalib",
    "torch",
    "torchvision",
    "lightning",
    "torchmetrics",
    "open_clip_torch",
    "timm",
    "numpy",
)


def versions() -> dict[str, str | None]:
    """Installed versions of Python and the packages that shape results (``None`` when not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def device_description() -> str:
    """The accelerator runs use: the CUDA device name, or the CPU with its thread count."""
    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(torch.cuda.current_device())}"
    return (
        f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {os.cpu_count()} cores"
    )
