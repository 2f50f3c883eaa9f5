"""Dropout on the residual branches of an open_clip vision tower, without changing its state dict."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle


def add_residual_dropout(visual: nn.Module, p: float) -> list[RemovableHandle]:
    """Drop activations of the attention and MLP branches of every vision block while training.

    open_clip's blocks compute ``x + ls_1(attn(ln_1(x)))`` and ``x + ls_2(mlp(ln_2(x)))``; a forward hook on ``ls_1``
    and ``ls_2`` (identity or LayerScale) applies ``dropout(p)`` to each branch before it joins the residual stream,
    the "hidden dropout" of ViT / BERT. Hooks add no parameters or buffers, so the exported state dict stays a plain
    open_clip one, and they are inactive in eval mode.

    Args:
        visual: an open_clip vision tower (``clip.visual``) whose blocks are in ``transformer.resblocks``.
        p: the dropout probability; 0 adds no hooks.

    Returns:
        The hook handles (``handle.remove()`` undoes the change).

    Example:
        >>> from fusionmedclip_anomalib.clip import load_clip
        >>> handles = add_residual_dropout(load_clip("fmc-tiny", pretrained=None).visual, p=0.1)
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {p}")
    if p == 0.0:
        return []
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is None:
        raise ValueError(f"residual dropout needs an open_clip ViT; {type(visual).__name__} has no resblocks")

    hook = BranchDropout(p)
    return [getattr(block, branch).register_forward_hook(hook) for block in blocks for branch in ("ls_1", "ls_2")]


class BranchDropout:
    """Forward hook replacing a module's output by its dropout (a class, not a closure, so models stay picklable)."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return F.dropout(output, p=self.p, training=module.training)
