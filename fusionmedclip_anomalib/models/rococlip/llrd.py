"""Layer-wise learning-rate decay (LLRD): AdamW parameter groups whose learning rate shrinks from the top block down.

For a tower with ``L`` transformer blocks, parameters get a layer id:

* ``0`` for everything before the first block (patch / token embedding, class and positional embeddings, ``ln_pre``);
* ``i`` for block ``i`` (1-based);
* ``L + 1`` for everything after the last block (``ln_post`` / ``ln_final``, projection, pooling head).

A parameter with layer id ``l`` trains at ``lr * decay ** (L + 1 - l)``: the head at ``lr``, the top block at
``lr * decay``, the first block at ``lr * decay ** L``, the embeddings at ``lr * decay ** (L + 1)`` (the BEiT / timm
convention). One-dimensional parameters (biases, LayerNorm weights, class embedding, logit scale) get no weight decay,
as in open_clip's own training code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from torch import nn

_BLOCK_INDEX = re.compile(r"(?:^|\.)(?:resblocks|blocks|layers?)\.(\d+)\.")
_BEFORE_BLOCKS = (
    "conv1",
    "class_embedding",
    "positional_embedding",
    "ln_pre",
    "patch_embed",
    "cls_token",
    "pos_embed",
    "token_embedding",
)


def layer_id(name: str, num_blocks: int) -> int:
    """Layer id of a parameter named relative to its tower (``transformer.resblocks.3.mlp.c_fc.weight`` -> 4)."""
    match = _BLOCK_INDEX.search(name)
    if match:
        return int(match.group(1)) + 1
    first = name.split(".")[0]
    if first in _BEFORE_BLOCKS or name.split(".")[-1] in _BEFORE_BLOCKS:
        return 0
    return num_blocks + 1


def count_blocks(names: Iterable[str]) -> int:
    """Number of transformer blocks, from the block indices that occur in the parameter names."""
    indices = {int(m.group(1)) for m in map(_BLOCK_INDEX.search, names) if m}
    return max(indices) + 1 if indices else 0


def layerwise_param_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]],
    lr: float,
    layer_decay: float,
    weight_decay: float,
    prefix: str = "",
) -> list[dict]:
    """AdamW parameter groups of one tower's trainable parameters, one group per (layer id, decay / no decay).

    Args:
        named_parameters: ``(name, parameter)`` pairs of one tower, names relative to the tower
            (``clip.visual.named_parameters()``; for open_clip's ``CLIP`` the text tower's parameters sit at the top
            level: ``token_embedding``, ``positional_embedding``, ``transformer``, ``ln_final``, ``text_projection``).
            Frozen parameters are left out.
        lr: the peak learning rate of the top (head) layer.
        layer_decay: multiplier per layer going down (0.8 in SPEC §5; 1.0 disables LLRD).
        weight_decay: weight decay of the matrices.
        prefix: prepended to the group names (``"visual"``, ``"text"``).

    Returns:
        Groups with keys ``params``, ``lr``, ``weight_decay``, ``name``, ``layer_id``, ``lr_scale``.

    Example:
        >>> from fusionmedclip_anomalib.clip import load_clip
        >>> clip = load_clip("fmc-tiny", pretrained=None)
        >>> groups = layerwise_param_groups(clip.visual.named_parameters(), lr=3e-6, layer_decay=0.8, weight_decay=0.05)
    """
    named = [(name, param) for name, param in named_parameters if param.requires_grad]
    num_blocks = count_blocks(name for name, _ in named)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in named:
        lid = layer_id(name, num_blocks)
        decayed = param.ndim >= 2
        key = (lid, decayed)
        if key not in groups:
            scale = layer_decay ** (num_blocks + 1 - lid)
            groups[key] = {
                "params": [],
                "lr": lr * scale,
                "weight_decay": weight_decay if decayed else 0.0,
                "name": f"{prefix}.layer{lid}.{'decay' if decayed else 'no_decay'}",
                "layer_id": lid,
                "lr_scale": scale,
            }
        groups[key]["params"].append(param)
    return [groups[key] for key in sorted(groups)]
