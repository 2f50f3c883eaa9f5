"""Block Adapters (feature refinement on ViT block outputs) and Alignment Adapters (projection to the joint
text-image embedding space)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

L2_EPS = 1e-6


class BlockAdapter(nn.Module):
    """Bottleneck MLP with a residual connection on a block's tokens: ``x + up(drop(act(down(x))))``.

    The up-projection starts at zero, so a new adapter leaves the backbone's features unchanged.

    Example:
        >>> adapter = BlockAdapter(width=1024, bottleneck=64, dropout=0.1)
        >>> adapter(torch.randn(2, 257, 1024)).shape
        torch.Size([2, 257, 1024])
    """

    def __init__(self, width: int, bottleneck: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.down = nn.Linear(width, bottleneck)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.up = nn.Linear(bottleneck, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens + self.up(self.dropout(self.activation(self.down(tokens))))


class AlignmentAdapter(nn.Module):
    """1x1 convolution from the block width C to the joint embedding width D, then per-pixel L2 normalisation.

    Example:
        >>> adapter = AlignmentAdapter(in_channels=1024, embed_dim=768)
        >>> adapter(torch.randn(2, 1024, 16, 16)).shape
        torch.Size([2, 768, 16, 16])
    """

    def __init__(self, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(in_channels, embed_dim, kernel_size=1)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return l2_normalise(self.projection(feature_map), dim=1)


def l2_normalise(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x / (||x||_2 + eps)`` along ``dim`` (SPEC §2: normalisation with a small epsilon)."""
    return x / (x.norm(dim=dim, keepdim=True) + L2_EPS)


def global_average_embedding(tokens: torch.Tensor, visual: nn.Module) -> torch.Tensor:
    """GAP alignment (ablation rows 1-4): the backbone's own ``ln_post`` and projection on the patch tokens, averaged
    over the image, L2-normalised: ``(B, 1 + N, C) -> (B, D, 1, 1)``."""
    projected = visual.ln_post(tokens[:, 1:, :])
    if visual.proj is not None:
        projected = projected @ visual.proj
    return F.normalize(projected.mean(dim=1), dim=-1)[:, :, None, None]
