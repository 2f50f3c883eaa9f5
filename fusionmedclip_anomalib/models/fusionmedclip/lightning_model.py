"""FusionMedCLIP as an anomalib model: training on synthesised anomalies, per-group AdamW, compact checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import open_clip
import torch
from anomalib import LearningType
from anomalib.data import Batch
from anomalib.metrics import Evaluator
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch import Trainer, seed_everything
from torch import nn
from torchvision.transforms.v2 import Resize

from fusionmedclip_anomalib.clip import load_clip, register_bundled_configs
from fusionmedclip_anomalib.knowledge import load_knowledge
from fusionmedclip_anomalib.models.fusionmedclip.loss import binary_dice_loss, binary_focal_loss
from fusionmedclip_anomalib.models.fusionmedclip.prompts import PromptMode, TokenPosition
from fusionmedclip_anomalib.models.fusionmedclip.synthesis_step import (
    AnomalySynthesiser,
    SynthesisedBatch,
    synthesise_in_loader,
)
from fusionmedclip_anomalib.models.fusionmedclip.torch_model import (
    Alignment,
    BlockAdapterPlacement,
    FusionMedCLIPModel,
    Precision,
)

logger = logging.getLogger(__name__)

BACKBONE_PREFIX = "model.clip."


class FusionMedCLIP(AnomalibModule):
    """FusionMedCLIP (SPEC §2): CoOp+UMLS prompts, Alignment Adapters, LoRA and Block Adapters on an open_clip ViT,
    trained on anomalies synthesised from the k normal training images.

    The model is ``ONE_CLASS`` for anomalib, so ``Engine.fit`` runs its ``training_step``; the k-shot support set
    comes from the datamodule's training split. Synthesis is applied here, inside the model (as anomalib's DRAEM
    does), so other models fed by the same datamodule see the clean normal images.

    Checkpoints hold the trainable parameters and the backbone's identity (``backbone`` + ``pretrained``), not the
    frozen backbone, which is rebuilt from that identity when the checkpoint is loaded.

    Args:
        backbone: open_clip architecture (``ViT-L-14``; bundled ``fmc-tiny`` for tests and demos).
        pretrained: open_clip tag (``openai``), path to a checkpoint (e.g. a ROCOCLIP one), or ``None`` (random).
        feature_layers: 1-based ViT blocks whose patch tokens make the anomaly maps.
        prompt: ``coop_umls``, ``coop`` or ``manual``.
        n_ctx: CoOp context length M.
        csc: class-specific contexts.
        class_token_position: ``end``, ``middle`` or ``front``.
        knowledge_file: JSON knowledge file (bundled UMLS concepts when ``None``).
        knowledge_init_field: knowledge list whose entry initialises the contexts (``synonyms`` or ``definitions``).
        knowledge_init_index: which entry of that list.
        manual_template: template of ``manual`` prompts.
        alignment: ``conv1x1`` or ``gap``.
        block_adapters: use Block Adapters.
        block_adapter_bottleneck: Block Adapter bottleneck width.
        block_adapter_dropout: Block Adapter dropout.
        block_adapter_placement: ``inline`` or ``tap``.
        lora: use LoRA in every vision block.
        lora_rank: LoRA r.
        lora_alpha: LoRA alpha.
        lora_dropout: LoRA dropout (on the inputs of fc1 and fc2; attention LoRA adapts the fused weights).
        temperature: softmax temperature tau.
        learn_temperature: train tau.
        precision: ``fp32``, or ``bf16`` for a bfloat16-autocast forward pass (CUDA, or CPUs with native bf16);
            anomaly maps and scores stay float32 and within 1e-2 of ``fp32``.
        focal_on: ``image`` (focal loss on the image score = max of the map) or ``pixel`` (per pixel, MediCLIP).
        focal_gamma: focal loss gamma.
        image_loss_weight: weight of the focal term.
        seg_loss_weight: weight of the Dice term.
        synthesis: synthesis pool, a preset name (``fusionmedclip``, ``mediclip``) or ``{task: probability}``.
        lr_prompt: learning rate of the CoOp contexts.
        lr_alignment: learning rate of the Alignment Adapters (and tau).
        lr_lora: learning rate of LoRA.
        lr_block_adapter: learning rate of the Block Adapters.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        eps: AdamW epsilon.
        max_epochs: training epochs (passed to the trainer; it overrides the trainer's own value).
        seed: seeds parameter initialisation, data order and synthesis; the same seed gives the same weights.
        pre_processor: anomalib pre-processor (``True``: resize to the backbone's input size; normalisation is done
            inside the model).
        post_processor: anomalib post-processor.
        evaluator: anomalib evaluator.
        visualizer: anomalib visualizer.

    Example:
        >>> from anomalib.engine import Engine
        >>> model = FusionMedCLIP(backbone="fmc-tiny", pretrained=None, feature_layers=(2, 4, 6), max_epochs=5)
        >>> Engine().fit(model, datamodule=datamodule)  # doctest: +SKIP
    """

    def __init__(
        self,
        backbone: str = "ViT-L-14",
        pretrained: str | None = "openai",
        feature_layers: Sequence[int] = (14, 18, 24),
        prompt: PromptMode = "coop_umls",
        n_ctx: int = 8,
        csc: bool = True,
        class_token_position: TokenPosition = "end",
        knowledge_file: str | None = None,
        knowledge_init_field: str = "synonyms",
        knowledge_init_index: int = 0,
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
        focal_on: str = "image",
        focal_gamma: float = 2.0,
        image_loss_weight: float = 1.0,
        seg_loss_weight: float = 1.0,
        synthesis: str | dict[str, float] = "fusionmedclip",
        lr_prompt: float = 1e-3,
        lr_alignment: float = 1e-3,
        lr_lora: float = 3e-5,
        lr_block_adapter: float = 5e-5,
        weight_decay: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        max_epochs: int = 200,
        seed: int = 0,
        pre_processor: nn.Module | bool = True,
        post_processor: nn.Module | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
    ) -> None:
        if focal_on not in ("image", "pixel"):
            raise ValueError(f"focal_on must be 'image' or 'pixel', got {focal_on!r}")
        self.image_size = native_image_size(backbone)  # read by configure_pre_processor inside super().__init__
        super().__init__(pre_processor, post_processor, evaluator, visualizer)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.model = FusionMedCLIPModel(
                clip=load_clip(backbone, pretrained),
                backbone=backbone,
                feature_layers=feature_layers,
                prompt=prompt,
                n_ctx=n_ctx,
                csc=csc,
                class_token_position=class_token_position,
                knowledge=load_knowledge(knowledge_file),
                knowledge_init=(knowledge_init_field, knowledge_init_index),
                manual_template=manual_template,
                alignment=alignment,
                block_adapters=block_adapters,
                block_adapter_bottleneck=block_adapter_bottleneck,
                block_adapter_dropout=block_adapter_dropout,
                block_adapter_placement=block_adapter_placement,
                lora=lora,
                lora_rank=lora_rank,
                lora_alpha=lora_alpha,
                lora_dropout=lora_dropout,
                temperature=temperature,
                learn_temperature=learn_temperature,
                precision=precision,
            )
        self.synthesiser = AnomalySynthesiser(synthesis)

    # -- anomalib contract -------------------------------------------------------------------------------------
    @property
    def learning_type(self) -> LearningType:
        """``ONE_CLASS``: anomalib then runs ``training_step`` (few/zero-shot types are never trained)."""
        return LearningType.ONE_CLASS

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        return {"max_epochs": self.hparams.max_epochs, "num_sanity_val_steps": 0}

    def configure_pre_processor(self, image_size: tuple[int, int] | int | None = None) -> PreProcessor:
        """Resize to the backbone's input size. CLIP normalisation happens inside the torch model."""
        size = image_size or getattr(self, "image_size", 224)
        size = (size, size) if isinstance(size, int) else tuple(size)
        return PreProcessor(transform=Resize(size, antialias=True))

    @classmethod
    def configure_post_processor(cls) -> PostProcessor:
        return PostProcessor()

    def configure_optimizers(self) -> torch.optim.Optimizer | None:
        """AdamW with one learning rate per part (SPEC §2); parts that are switched off have no group. ``None``
        when nothing trains (ablation row 1: manual prompts, GAP, no LoRA, no adapters)."""
        rates = {
            "prompt": self.hparams.lr_prompt,
            "alignment": self.hparams.lr_alignment,
            "lora": self.hparams.lr_lora,
            "block_adapter": self.hparams.lr_block_adapter,
        }
        groups = [
            {"params": params, "lr": rates[name], "name": name}
            for name, params in self.model.parameter_groups().items()
            if params
        ]
        if not groups:
            return None
        return torch.optim.AdamW(
            groups, weight_decay=self.hparams.weight_decay, betas=tuple(self.hparams.betas), eps=self.hparams.eps
        )

    # -- training ------------------------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        seed_everything(self.hparams.seed, workers=True, verbose=False)
        self.model.prepare_for_training()

    def on_train_epoch_start(self) -> None:
        """Synthesis moves into the training DataLoader (its workers, when it has any), so that it overlaps with
        the forward and backward passes instead of adding to them. A configuration with nothing to train skips it."""
        trains = bool(self.model.trainable_parameters())
        if trains and synthesise_in_loader(self.trainer.train_dataloader, self.synthesiser):
            restart_epoch_iterator(self.trainer)

    def training_step(self, batch: Batch | SynthesisedBatch, *args, **kwargs) -> dict[str, torch.Tensor] | None:
        del args, kwargs
        if not self.model.trainable_parameters():
            return None  # zero-shot configuration: nothing to optimise
        if isinstance(batch, SynthesisedBatch):
            images, masks = batch.tensors()
        else:  # a loader that could not take the synthesis (not a single DataLoader)
            images, masks = self.synthesiser(batch.image)
        anomaly_map = self.model.anomaly_map(images)
        loss = self.loss(anomaly_map, masks)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(images))
        return {"loss": loss}

    def loss(self, anomaly_map: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``w_img * focal + w_seg * dice``; the image label is 1 iff the binarised mask has a positive pixel."""
        target = (masks > 0.5).to(anomaly_map.dtype)
        if self.hparams.focal_on == "image":
            focal = binary_focal_loss(
                anomaly_map.flatten(1).amax(dim=1), target.flatten(1).amax(dim=1), self.hparams.focal_gamma
            )
        else:
            focal = binary_focal_loss(anomaly_map, target, self.hparams.focal_gamma)
        dice = binary_dice_loss(anomaly_map, masks.to(anomaly_map.dtype))
        return self.hparams.image_loss_weight * focal + self.hparams.seg_loss_weight * dice

    def validation_step(self, batch: Batch, *args, **kwargs) -> Batch:
        del args, kwargs
        return batch.update(**self.model(batch.image)._asdict())

    def on_validation_start(self) -> None:
        """Validation is inference: with LoRA merged it runs the plain backbone kernels (unmerged, every attention
        layer builds its adapted weights on each forward)."""
        self.model.merge_lora()

    def on_validation_end(self) -> None:
        self.model.merge_lora(False)  # training (or anything after validation) starts from the unmerged state

    # -- inference: LoRA folded into the backbone ----------------------------------------------------------------
    def on_test_start(self) -> None:
        self.model.prepare_for_inference()

    def on_predict_start(self) -> None:
        self.model.prepare_for_inference()

    def to_torch(self, *args, **kwargs):  # anomalib's export, with LoRA merged and prompts encoded first
        self.eval()
        self.model.prepare_for_inference()
        return super().to_torch(*args, **kwargs)

    def to_onnx(self, *args, **kwargs):
        self.eval()
        self.model.prepare_for_inference()
        return super().to_onnx(*args, **kwargs)

    def to_openvino(self, *args, **kwargs):
        self.eval()
        self.model.prepare_for_inference()
        return super().to_openvino(*args, **kwargs)

    # -- compact checkpoints -------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Drop the frozen backbone weights; keep LoRA, adapters, prompts, processors."""
        checkpoint["state_dict"] = trainable_state(checkpoint["state_dict"])
        checkpoint["fusionmedclip_backbone"] = {
            "backbone": self.hparams.backbone,
            "pretrained": self.hparams.pretrained,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Complete a compact checkpoint with this instance's (freshly built, unmerged) backbone weights."""
        self.model.prepare_for_training()
        saved = checkpoint["state_dict"]
        backbone = {key: value for key, value in self.state_dict().items() if key.startswith(BACKBONE_PREFIX)}
        checkpoint["state_dict"] = {**backbone, **saved}


def restart_epoch_iterator(trainer: Trainer) -> None:
    """Lightning makes the first epoch's loader iterator (and its workers) before any model hook runs; make it
    again so that the first epoch sees a loader changed in ``on_train_epoch_start``. Not once a batch of the epoch
    has been fetched or when resuming (the loader is then used as it is, with synthesis in the training step)."""
    fit_loop = trainer.fit_loop
    fetcher = getattr(fit_loop, "_data_fetcher", None)
    if fetcher is None or fit_loop.restarting or fit_loop.epoch_loop.batch_progress.current.ready:
        return
    iter(fetcher)


def trainable_state(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of a FusionMedCLIP state dict that are not frozen backbone weights."""
    return {key: value for key, value in state_dict.items() if not key.startswith(BACKBONE_PREFIX) or "lora_" in key}


def native_image_size(backbone: str) -> int:
    """Input size of an open_clip architecture, read from its config without building it."""
    register_bundled_configs()
    config = open_clip.get_model_config(backbone)
    if config is None:
        raise ValueError(f"Unknown open_clip architecture {backbone!r} (see open_clip.list_models()).")
    size = config["vision_cfg"]["image_size"]
    return int(size[0] if isinstance(size, (list, tuple)) else size)
