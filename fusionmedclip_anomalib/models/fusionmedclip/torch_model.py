"""FusionMedCLIP as a pure PyTorch module: open_clip ViT (+ LoRA) -> block features -> Block Adapters ->
Alignment Adapters -> similarity to the class prompts -> softmax(tau) -> upsampled, averaged anomaly map."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from anomalib.data import InferenceBatch
from torch import nn

from fusionmedclip_anomalib.clip import load_clip, patch_token_maps, preprocess_stats, run_vision_blocks
from fusionmedclip_anomalib.knowledge import Knowledge, load_knowledge
from fusionmedclip_anomalib.models.fusionmedclip.adapters import (
    AlignmentAdapter,
    BlockAdapter,
    global_average_embedding,
)
from fusionmedclip_anomalib.models.fusionmedclip.lora import inject_lora, set_lora_merged
from fusionmedclip_anomalib.models.fusionmedclip.prompts import PromptMode, TokenPosition, build_prompts

Alignment = Literal["conv1x1", "gap"]
BlockAdapterPlacement = Literal["inline", "tap"]
Precision = Literal["fp32", "bf16"]


class FusionMedCLIPModel(nn.Module):
    """Few-shot medical anomaly segmentation with an adapted CLIP (SPEC §2).

    Images go in as RGB in [0, 1] (the backbone's normalisation is applied inside); the output is an
    :class:`~anomalib.data.InferenceBatch` with a per-pixel anomaly probability map ``(B, H, W)`` in [0, 1] and the
    image score ``pred_score`` = its maximum. Blocks after the deepest feature layer are removed from the backbone:
    they cannot influence the output.

    Args:
        clip: an open_clip CLIP model (see :func:`fusionmedclip_anomalib.clip.load_clip`); its weights are frozen.
        backbone: the open_clip architecture name of ``clip`` (selects the tokenizer).
        feature_layers: 1-based indices of the blocks whose patch tokens make the maps.
        prompt: ``coop_umls`` (CoOp, contexts initialised from UMLS knowledge), ``coop`` or ``manual``.
        n_ctx: number of learnable context tokens M.
        csc: class-specific contexts (one set per class) instead of one shared set.
        class_token_position: where the class phrase sits relative to the contexts.
        knowledge: the concepts; the bundled UMLS file when ``None``.
        knowledge_init: (field, index) of the knowledge phrase that initialises the contexts in ``coop_umls`` mode.
        manual_template: the prompt template of ``manual`` mode.
        alignment: ``conv1x1`` Alignment Adapters, or ``gap`` (global average pooling through the backbone's own
            projection; no localisation, ablation rows 1-4).
        block_adapters: add Block Adapters on the feature blocks' outputs.
        block_adapter_bottleneck: bottleneck width of the Block Adapters.
        block_adapter_dropout: dropout inside the Block Adapters.
        block_adapter_placement: ``inline`` (the adapted tokens continue through the later blocks) or ``tap`` (only
            the extracted features are adapted).
        lora: add LoRA to q, k, v, attention output, fc1 and fc2 of every vision block.
        lora_rank: LoRA rank r.
        lora_alpha: LoRA scaling alpha.
        lora_dropout: LoRA dropout (on the inputs of fc1 and fc2; attention LoRA adapts the fused weights).
        temperature: softmax temperature tau.
        learn_temperature: make tau a trainable parameter.
        precision: ``fp32``, or ``bf16`` to run the forward pass (backbone, adapters, prompts) under bfloat16
            autocast on the input's device (CUDA, or CPUs with native bf16); the anomaly map stays float32.

    Example:
        >>> model = FusionMedCLIPModel.from_backbone("fmc-tiny", None, feature_layers=(2, 4, 6))
        >>> model(torch.rand(1, 3, 224, 224)).anomaly_map.shape
        torch.Size([1, 224, 224])
    """

    def __init__(
        self,
        clip: nn.Module,
        backbone: str,
        feature_layers: Sequence[int] = (14, 18, 24),
        prompt: PromptMode = "coop_umls",
        n_ctx: int = 8,
        csc: bool = True,
        class_token_position: TokenPosition = "end",
        knowledge: Knowledge | None = None,
        knowledge_init: tuple[str, int] = ("synonyms", 0),
        manual_template: str = "a photo of a {}.",
        alignment: Alignment = "conv1x1",
        block_adapters: bool = True,
        block_adapter_bottleneck: int = 64,
        block_adapter_dropout: float = 0.1,
        block_adapter_placement: BlockAdapterPlacement = "inline",
        lora: bool = True,
        lora_rank: int = 8,
        lora_alpha: float = 16,
        lora_dropout: float = 0.05,
        temperature: float = 0.07,
        learn_temperature: bool = False,
        precision: Precision = "fp32",
    ) -> None:
        super().__init__()
        if alignment not in ("conv1x1", "gap"):
            raise ValueError(f"alignment must be 'conv1x1' or 'gap', got {alignment!r}")
        if block_adapter_placement not in ("inline", "tap"):
            raise ValueError(f"block_adapter_placement must be 'inline' or 'tap', got {block_adapter_placement!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        self.precision = precision
        self.feature_layers = tuple(int(layer) for layer in feature_layers)
        blocks = clip.visual.transformer.resblocks
        if not self.feature_layers or min(self.feature_layers) < 1 or max(self.feature_layers) > len(blocks):
            raise ValueError(
                f"feature_layers {self.feature_layers} out of range: {backbone} has blocks 1..{len(blocks)}"
            )
        self.alignment = alignment
        self.block_adapter_placement = block_adapter_placement

        clip.requires_grad_(False)
        clip.visual.transformer.resblocks = blocks[: max(self.feature_layers)]
        self.clip = clip
        if lora:
            inject_lora(clip.visual, lora_rank, lora_alpha, lora_dropout)

        mean, std = preprocess_stats(clip)
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.patch_size = _patch_size(clip.visual)

        width, embed_dim = clip.visual.transformer.width, clip.visual.output_dim  # C and the joint width D
        self.block_adapters = nn.ModuleDict(
            {str(j): BlockAdapter(width, block_adapter_bottleneck, block_adapter_dropout) for j in self.feature_layers}
            if block_adapters
            else {}
        )
        self.alignment_adapters = nn.ModuleDict(
            {str(j): AlignmentAdapter(width, embed_dim) for j in self.feature_layers} if alignment == "conv1x1" else {}
        )
        self.prompts = build_prompts(
            prompt,
            clip,
            backbone,
            knowledge or load_knowledge(),
            n_ctx,
            csc,
            class_token_position,
            knowledge_init,
            manual_template,
        )
        log_tau = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_temperature", log_tau, persistent=False)
        self.register_buffer("_text_cache", None, persistent=False)
        self._text_cache_key: tuple[int, ...] = ()
        self._text_cache_frozen = False

    @classmethod
    def from_backbone(cls, backbone: str, pretrained: str | None, **kwargs) -> FusionMedCLIPModel:
        """Build the backbone with :func:`~fusionmedclip_anomalib.clip.load_clip`, then the model around it."""
        return cls(load_clip(backbone, pretrained), backbone, **kwargs)

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by optimiser group: ``prompt``, ``alignment`` (with tau), ``lora``,
        ``block_adapter``. Empty groups are kept so callers see every group name."""
        groups = {
            "prompt": [p for p in self.prompts.parameters() if p.requires_grad],
            "alignment": list(self.alignment_adapters.parameters()),
            "lora": [p for name, p in self.clip.named_parameters() if "lora_" in name and p.requires_grad],
            "block_adapter": list(self.block_adapters.parameters()),
        }
        if isinstance(self.log_temperature, nn.Parameter):
            groups["alignment"].append(self.log_temperature)
        return groups

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Every parameter that training updates."""
        return [p for params in self.parameter_groups().values() for p in params]

    def merge_lora(self, merged: bool = True) -> None:
        """Fold LoRA into the base weights so inference runs the plain backbone kernels (``merged=False`` undoes
        it before training)."""
        set_lora_merged(self.clip.visual, merged)

    def prepare_for_inference(self) -> None:
        """Eval mode, LoRA merged, prompt embeddings computed and frozen: what test, predict and export run with (an
        exported graph then holds the embeddings as a constant, with no text tower)."""
        self.eval()
        self.merge_lora()
        self._text_cache_frozen = False
        with torch.no_grad():
            self.text_embeddings()
        self._text_cache_frozen = True

    def prepare_for_training(self) -> None:
        """Undo :meth:`prepare_for_inference`: LoRA unmerged, prompt embeddings follow the parameters again."""
        self.merge_lora(False)
        self._text_cache_frozen = False

    def text_embeddings(self) -> torch.Tensor:
        """``(2, D)`` normalised embeddings of the normal and abnormal prompts.

        In training mode trainable prompts are re-encoded (with autograd). Otherwise they are computed once and reused
        until a prompt parameter changes (an optimiser step bumps the parameters' version counters), so inference and
        exported graphs do no text-tower work per batch.
        """
        parameters = [p for p in self.prompts.parameters() if p.requires_grad]
        if self.training and parameters:
            return self.prompts(self.clip)
        if self._text_cache_frozen and self._text_cache is not None:
            return self._text_cache
        key = tuple(p._version for p in parameters)
        # a cache filled under inference_mode (Lightning's validation/test) cannot enter autograd: refill it
        cache = self._text_cache
        stale = cache is not None and cache.is_inference() and not torch.is_inference_mode_enabled()
        if self._text_cache is None or key != self._text_cache_key or stale:
            with torch.no_grad():
                self._text_cache = self.prompts(self.clip)
            self._text_cache_key = key
        return self._text_cache

    def anomaly_map(self, images: torch.Tensor) -> torch.Tensor:
        """Per-pixel anomaly probability ``(B, H, W)`` for RGB images ``(B, 3, H, W)`` in [0, 1]."""
        height, width = images.shape[-2:]
        grid = (height // self.patch_size, width // self.patch_size)
        x = (images - self.pixel_mean) / self.pixel_std
        inline = self.block_adapter_placement == "inline" and len(self.block_adapters) > 0
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            tokens = run_vision_blocks(self.clip.visual, x, self.feature_layers, self._adapt_block if inline else None)
            text = self.text_embeddings()
            maps = []
            for layer in self.feature_layers:
                features = tokens[layer]
                if not inline and str(layer) in self.block_adapters:
                    features = self.block_adapters[str(layer)](features)
                if self.alignment == "conv1x1":
                    aligned = self.alignment_adapters[str(layer)](patch_token_maps(features, grid))
                else:
                    aligned = global_average_embedding(features, self.clip.visual)
                maps.append(self.anomaly_probability(aligned, text))
        # bilinear upsampling is linear, so averaging the patch-grid maps first and upsampling once is the same map
        return _upsample(torch.stack(maps).mean(dim=0), (height, width))

    def anomaly_probability(
        self, aligned: torch.Tensor, text: torch.Tensor, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Softmax over {normal, abnormal} of cosine similarity / tau, abnormal channel ``(B, h, w)``; upsampled
        (bilinear) to ``size`` when given."""
        # float32 even under bf16 autocast: the 1/tau scaling would amplify bf16 rounding of the similarities
        with torch.autocast(aligned.device.type, enabled=False):
            logits = torch.einsum("bdhw,cd->bchw", aligned.float(), text.float()) / self.temperature
        probability = logits.softmax(dim=1)[:, 1]
        return probability if size is None else _upsample(probability, size)

    def forward(self, images: torch.Tensor) -> InferenceBatch:
        anomaly_map = self.anomaly_map(images)
        return InferenceBatch(pred_score=anomaly_map.flatten(1).amax(dim=1), anomaly_map=anomaly_map)

    def _adapt_block(self, layer: int, tokens: torch.Tensor) -> torch.Tensor:
        key = str(layer)
        return self.block_adapters[key](tokens) if key in self.block_adapters else tokens


def _upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(B, h, w)`` maps to ``(B, *size)``."""
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False)[:, 0]


def _patch_size(visual: nn.Module) -> int:
    size = visual.patch_size if hasattr(visual, "patch_size") else visual.conv1.kernel_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)
