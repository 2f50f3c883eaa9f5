"""Intermediate block outputs of an open_clip vision transformer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

BlockHook = Callable[[int, torch.Tensor], torch.Tensor]


def run_vision_blocks(
    visual: nn.Module,
    images: torch.Tensor,
    layers: Sequence[int],
    after_block: BlockHook | None = None,
) -> dict[int, torch.Tensor]:
    """Run the vision tower up to the deepest requested block and return the requested block outputs.

    Args:
        visual: an open_clip ``VisionTransformer`` (``clip.visual``).
        images: normalised images ``(B, 3, H, W)``.
        layers: 1-based block indices to return.
        after_block: optional ``hook(layer, tokens) -> tokens`` applied to the output of every block; its result
            replaces the block output in the residual stream (this is how inline Block Adapters are inserted).

    Returns:
        ``{layer: tokens (B, 1 + N, C)}`` with the class token first, blocks after the deepest one not run.
    """
    blocks = visual.transformer.resblocks
    if min(layers) < 1 or max(layers) > len(blocks):
        raise ValueError(f"feature layers {tuple(layers)} out of range: this backbone has blocks 1..{len(blocks)}")
    batch_first = getattr(visual.transformer, "batch_first", True)
    # The residual stream keeps the input's dtype; under autocast only the matrix products drop to bfloat16 (the
    # usual mixed precision). A bfloat16 stream would also push nn.MultiheadAttention off its fused path, and on CPU
    # its fallback multiplies a transposed bfloat16 input, which materialises the in-projection weight per token
    # (ViT-B-16, batch 8: 12.3 s instead of 1.6 s).
    x = embed_patches(visual, images).to(images.dtype)
    if not batch_first:
        x = x.transpose(0, 1)
    wanted = set(layers)
    outputs: dict[int, torch.Tensor] = {}
    for index, block in enumerate(blocks[: max(layers)], start=1):
        x = block(x)
        tokens = x if batch_first else x.transpose(0, 1)
        if after_block is not None:
            tokens = after_block(index, tokens)
            x = tokens if batch_first else tokens.transpose(0, 1)
        if index in wanted:
            outputs[index] = tokens
    return outputs


def embed_patches(visual: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Patch embedding, class token, positional embedding and ``ln_pre`` of an open_clip ViT, as its own
    ``_embeds``, with the positional grid interpolated (bicubic) when the input is not the native size."""
    x = visual.conv1(images)
    grid = x.shape[-2:]
    x = x.flatten(2).transpose(1, 2)
    class_token = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
    x = torch.cat([class_token, x], dim=1)
    x = x + positional_embedding(visual, tuple(grid)).to(x.dtype)
    return visual.ln_pre(visual.patch_dropout(x))


def positional_embedding(visual: nn.Module, grid: tuple[int, int]) -> torch.Tensor:
    """The ViT's positional embedding ``(1 + h*w, C)`` for a patch grid, interpolated if it is not the native one."""
    embedding = visual.positional_embedding
    native = tuple(visual.grid_size)
    if grid == native:
        return embedding
    patches = embedding[1:].reshape(1, *native, -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=grid, mode="bicubic", align_corners=False)
    return torch.cat([embedding[:1], patches.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)])


def patch_token_maps(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Drop the class token and reshape ``(B, 1 + h*w, C)`` tokens to a ``(B, C, h, w)`` map."""
    h, w = grid
    patches = tokens[:, 1:, :]
    if patches.shape[1] != h * w:
        raise ValueError(f"expected {h * w} patch tokens for a {h}x{w} grid, got {patches.shape[1]}")
    return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)
