"""LoRA in an open_clip vision tower through peft.

open_clip's blocks use ``nn.MultiheadAttention`` (q, k and v fused in ``in_proj_weight``; ``out_proj`` is read as a
weight, its ``forward`` is never called) and an MLP of ``c_fc``/``c_proj``. Targeting ``out_proj`` alone would train
nothing, so the whole attention module is targeted: peft's MultiheadAttention LoRA adapts the fused q/k/v projection
and the output projection. ``c_fc`` and ``c_proj`` are the MLP's fc1 and fc2.

peft's MultiheadAttention LoRA (0.21) adds the output projection's update twice, in its merge and in every unmerged
forward (huggingface/peft PR #3774, open), and rewrites the frozen weights around every forward. It is registered here
as :class:`AttentionLoRA`, which mends both; the parameters and checkpoint keys are peft's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from peft.tuners.lora.layer import MultiheadAttention as PeftAttentionLoRA
from peft.tuners.tuners_utils import check_adapters_to_merge
from torch import nn

LORA_TARGETS = ("attn", "c_fc", "c_proj")


class AttentionLoRA(PeftAttentionLoRA):
    """peft's LoRA of ``nn.MultiheadAttention`` (fused q/k/v and output projection), with every update applied once.

    - Unmerged forward: the adapted weights ``W + (α/r)·B·A`` are made out of place for this call only, so the frozen
      weights are never rewritten and keep their exact values through training.
    - Merge / unmerge (for inference and export): each update is added to / subtracted from its weight once.

    peft's MHA LoRA has no path that sees the attention input on its own, so LoRA dropout does not apply here (as in
    peft); it applies to fc1 and fc2.
    """

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        base = self.get_base_layer()
        for adapter in check_adapters_to_merge(self, adapter_names):
            if adapter not in self.lora_A:
                continue
            weight = base.in_proj_weight
            merged = weight.data + self.get_delta_weight(adapter).to(weight.dtype)
            if safe_merge and not torch.isfinite(merged).all():
                raise ValueError(f"NaNs in the merged attention weights: LoRA adapter {adapter!r} is broken")
            weight.data = merged
            base.out_proj.merge(safe_merge=safe_merge, adapter_names=[adapter])
            self.merged_adapters.append(adapter)

    def unmerge(self) -> None:
        base = self.get_base_layer()
        while self.merged_adapters:
            adapter = self.merged_adapters.pop()
            if adapter in self.lora_A:
                weight = base.in_proj_weight
                weight.data -= self.get_delta_weight(adapter).to(weight.dtype)
        if base.out_proj.merged:
            base.out_proj.unmerge()

    def forward(self, query: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check_forward_args(query, *args, **kwargs)
        adapters = [adapter for adapter in self.active_adapters if adapter in self.lora_A]
        if self.disable_adapters or self.merged or not adapters:
            return super().forward(query, *args, **kwargs)
        base = self.get_base_layer()
        out_proj = base.out_proj
        adapted_in = _adapted_weight(base.in_proj_weight, self, adapters)
        adapted_out = _adapted_weight(out_proj.base_layer.weight, out_proj, adapters)
        with (
            _weights_replaced(base, "in_proj_weight", adapted_in),
            _weights_replaced(out_proj.base_layer, "weight", adapted_out),
        ):
            output, attention = base(query, *args, **kwargs)
        return output.to(query.dtype), attention if attention is None else attention.to(query.dtype)


def _adapted_weight(weight: torch.Tensor, layer: LoraLayer, adapters: list[str]) -> torch.Tensor:
    """``W + Σ (α/r)·B·A`` as one fused multiply-add per adapter, in the weight's own precision (outside autocast,
    which would otherwise hand a bfloat16 weight to an fp32 attention)."""
    with torch.autocast(weight.device.type, enabled=False):
        for adapter in adapters:
            factor_a, factor_b = layer.lora_A[adapter].weight, layer.lora_B[adapter].weight
            weight = torch.addmm(
                weight, factor_b.to(weight.dtype), factor_a.to(weight.dtype), alpha=layer.scaling[adapter]
            )
    return weight


@contextmanager
def _weights_replaced(module: nn.Module, name: str, tensor: torch.Tensor) -> Iterator[None]:
    """Within the block, ``module.<name>`` is ``tensor`` (a plain tensor, so autograd reaches the LoRA factors);
    after it, the very Parameter that was there before."""
    parameter = getattr(module, name)
    delattr(module, name)
    setattr(module, name, tensor)
    try:
        yield
    finally:
        delattr(module, name)
        module.register_parameter(name, parameter)


def inject_lora(visual: nn.Module, rank: int = 8, alpha: float = 16, dropout: float = 0.05) -> list[str]:
    """Add LoRA (q, k, v, attention output, fc1, fc2) to every block of ``visual.transformer``.

    Returns:
        The names of the LoRA parameters that were added (all trainable).
    """
    blocks = len(visual.transformer.resblocks)
    pattern = rf"transformer\.resblocks\.({'|'.join(map(str, range(blocks)))})\.(attn|mlp\.c_fc|mlp\.c_proj)"
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=pattern)
    config._register_custom_module({nn.MultiheadAttention: AttentionLoRA})
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
