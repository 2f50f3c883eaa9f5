"""Write a fine-tuned CLIP as a plain open_clip state dict that ``load_clip(backbone, path)`` loads."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

EXPORT_SUFFIXES = (".pt", ".safetensors")


def uses_quick_gelu(clip: nn.Module) -> bool:
    """Whether the model's MLPs use QuickGELU (OpenAI weights) rather than GELU."""
    from open_clip.transformer import QuickGELU

    return any(isinstance(module, QuickGELU) for module in clip.modules())


def loading_backbone_name(clip: nn.Module, backbone: str) -> str:
    """The open_clip architecture name that rebuilds ``clip`` exactly, activation included.

    OpenAI weights are built with QuickGELU (``load_clip("ViT-L-14", "openai")`` forces it), but a state dict does not
    record its activation: ``load_clip("ViT-L-14", path)`` would build plain GELU. open_clip names the QuickGELU
    variant ``<name>-quickgelu``; that is the name to load such a checkpoint with.
    """
    import open_clip

    if not uses_quick_gelu(clip) or open_clip.get_model_config(backbone).get("quick_gelu", False):
        return backbone
    variant = f"{backbone}-quickgelu"
    return variant if variant in open_clip.list_models() else backbone


def export_open_clip_checkpoint(
    clip: nn.Module, path: str | Path, backbone: str, metadata: dict[str, Any] | None = None
) -> Path:
    """Save the whole CLIP (both towers, logit scale) as an open_clip state dict, plus a JSON sidecar.

    Args:
        clip: the open_clip model; hooks (e.g. training dropout) are not part of a state dict and are not saved.
        path: the target file, ``.pt`` (``torch.save`` of the state dict) or ``.safetensors``.
        backbone: the architecture name the model was built from.
        metadata: extra facts for the sidecar (source weights, epoch, validation loss ...).

    Returns:
        The checkpoint path. Next to it, ``<stem>.json`` records ``backbone`` (the name to pass to ``load_clip``,
        see :func:`loading_backbone_name`), ``trained_backbone``, ``quick_gelu`` and ``metadata``.

    Example:
        >>> from fusionmedclip_anomalib.clip import load_clip
        >>> clip = load_clip("fmc-tiny", pretrained=None)
        >>> export_open_clip_checkpoint(clip, "/tmp/rococlip.pt", backbone="fmc-tiny")
        PosixPath('/tmp/rococlip.pt')
    """
    path = Path(path)
    if path.suffix not in EXPORT_SUFFIXES:
        raise ValueError(f"checkpoint name must end with one of {EXPORT_SUFFIXES}, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: _portable(tensor) for name, tensor in clip.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    load_name = loading_backbone_name(clip, backbone)
    if load_name != backbone:
        logger.warning(
            "%s was trained with QuickGELU; load %s with backbone=%r (load_clip(%r, path)) to get the same features.",
            backbone,
            path,
            load_name,
            load_name,
        )
    sidecar = {
        "backbone": load_name,
        "trained_backbone": backbone,
        "quick_gelu": uses_quick_gelu(clip),
        "format": "open_clip state dict",
        "metadata": metadata or {},
    }
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2, default=str))
    return path


def _portable(tensor: torch.Tensor) -> torch.Tensor:
    """A contiguous CPU copy, floating point in float32 (whatever precision training ran in)."""
    dtype = torch.float32 if tensor.is_floating_point() else tensor.dtype
    return tensor.detach().to("cpu", dtype).contiguous()
