"""LoRA in an open_clip vision tower through peft.

open_clip's blocks use ``nn.MultiheadAttention`` (q, k and v fused in ``in_proj_weight``; ``out_proj`` is read as a
weight, its ``forward`` is never called) and an MLP of ``c_fc``/``c_proj``. Targeting ``out_proj`` alone would train
nothing, so the whole attention module is targeted: peft's MultiheadAttention LoRA adapts the fused q/k/v projection
and the output projection. ``c_fc`` and ``c_proj`` are the MLP's fc1 and fc2.
"""

from __future__ import annotations

from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

LORA_TARGETS = ("attn", "c_fc", "c_proj")


def inject_lora(visual: nn.Module, rank: int = 8, alpha: float = 16, dropout: float = 0.05) -> list[str]:
    """Add LoRA (q, k, v, attention output, fc1, fc2) to every block of ``visual.transformer``.

    Returns:
        The names of the LoRA parameters that were added (all trainable).
    """
    blocks = len(visual.transformer.resblocks)
    pattern = rf"transformer\.resblocks\.({'|'.join(map(str, range(blocks)))})\.(attn|mlp\.c_fc|mlp\.c_proj)"
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=pattern)
    inject_adapter_in_model(config, visual)
    return [name for name, _ in visual.named_parameters() if "lora_" in name]


def lora_layers(module: nn.Module) -> list[LoraLayer]:
    """The outermost LoRA-wrapped layers inside ``module`` (an attention wrapper merges its own ``out_proj``)."""
    found = {name: m for name, m in module.named_modules() if isinstance(m, LoraLayer)}
    return [m for name, m in found.items() if not any(name.startswith(f"{other}.") for other in found)]


def set_lora_merged(module: nn.Module, merged: bool) -> None:
    """Merge LoRA into the base weights (inference runs plain backbone kernels) or undo the merge for training."""
    for layer in lora_layers(module):
        if merged and not layer.merged:
            layer.merge()
        elif not merged and layer.merged:
            layer.unmerge()
