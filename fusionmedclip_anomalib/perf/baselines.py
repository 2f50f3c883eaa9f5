"""anomalib's WinCLIP and PatchCore at their default settings, with random weights, ready to time per image.

Defaults as anomalib 2.7 ships them: WinCLIP zero-shot (``k_shot=0``) on ``ViT-B-16-plus-240`` at 240 px, scales
(2, 3); PatchCore on ``wide_resnet50_2`` layers 2 and 3 at 256 px, 9 neighbours, a memory bank of 10 % of the
support set's patch embeddings. Only the weights differ: no downloads are possible here, so WinCLIP's
``laion400m_e31`` tag is switched off for the construction and PatchCore gets ``pre_trained=False``. Speed does
not depend on the weight values.

The PatchCore memory bank has the size greedy coreset selection would give, but is a random subset: coreset
selection is a training cost, and inference cost depends only on the bank's size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

WINCLIP_IMAGE_SIZE = 240
PATCHCORE_IMAGE_SIZE = 256
PATCHCORE_CORESET_RATIO = 0.1


@contextlib.contextmanager
def _winclip_without_download() -> Iterator[None]:
    from anomalib.models.image.winclip import torch_model

    tag = torch_model.PRETRAINED
    torch_model.PRETRAINED = None
    try:
        yield
    finally:
        torch_model.PRETRAINED = tag


def build_winclip(device: str, class_name: str = "brain") -> nn.Module:
    """anomalib's ``WinClipModel`` with default settings and random weights, text embeddings ready, eval mode."""
    from anomalib.models.image.winclip.torch_model import WinClipModel

    with _winclip_without_download():
        model = WinClipModel(class_name=class_name)
    return model.to(device).eval()


def build_patchcore(device: str, support: torch.Tensor, seed: int = 0) -> nn.Module:
    """anomalib's ``PatchcoreModel`` with default settings and random weights, its memory bank filled from
    ``support`` (normal images ``(k, 3, 256, 256)``), eval mode."""
    from anomalib.models.image.patchcore.torch_model import PatchcoreModel

    model = PatchcoreModel(layers=("layer2", "layer3"), backbone="wide_resnet50_2", pre_trained=False, num_neighbors=9)
    model.to(device).train()
    with torch.no_grad():
        embeddings = torch.cat([model(image.unsqueeze(0)) for image in support])
    model.embedding_store.clear()
    size = max(1, int(len(embeddings) * PATCHCORE_CORESET_RATIO))
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(embeddings), generator=generator)[:size].to(embeddings.device)
    model.memory_bank = embeddings[chosen].contiguous()
    return model.eval()
