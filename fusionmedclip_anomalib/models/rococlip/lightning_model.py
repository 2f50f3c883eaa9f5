"""ROCOCLIP: stage 1 of FusionMedCLIP, contrastive fine-tuning of a CLIP vision tower on image–caption pairs."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import Callback, EarlyStopping

from fusionmedclip_anomalib.clip import load_clip, preprocess_stats
from fusionmedclip_anomalib.models.rococlip.dropout import add_residual_dropout
from fusionmedclip_anomalib.models.rococlip.llrd import layerwise_param_groups
from fusionmedclip_anomalib.models.rococlip.loss import symmetric_contrastive_loss
from fusionmedclip_anomalib.models.rococlip.mixup import mixup_images, mixup_targets
from fusionmedclip_anomalib.models.rococlip.retrieval import retrieval_recall
from fusionmedclip_anomalib.models.rococlip.schedule import warmup_cosine_scheduler

logger = logging.getLogger(__name__)

VAL_LOSS = "val_loss"


class ROCOCLIP(LightningModule):
    """Full fine-tuning of an open_clip vision tower with the symmetric CLIP loss (SPEC §5, Table A2 defaults).

    Per training batch: images are mixed (mixup, with the matching caption-target mixup of
    :mod:`~fusionmedclip_anomalib.models.rococlip.mixup`), both towers embed, embeddings are gathered across devices
    (``self.all_gather`` under DDP) and the label-smoothed symmetric cross-entropy over the global batch is minimised.
    AdamW with layer-wise learning-rate decay, a step-based warmup + cosine schedule and early stopping on
    ``val_loss`` (returned by :meth:`configure_callbacks`) complete the recipe. Validation logs ``val_loss`` (same loss,
    no mixup) and image->text / text->image recall@k over the whole validation split.

    The text tower and the logit scale stay frozen by default; ``model.clip`` is a plain open_clip ``CLIP`` whose state
    dict is what :func:`~fusionmedclip_anomalib.models.rococlip.export.export_open_clip_checkpoint` writes.

    OpenAI weights run with QuickGELU, which a state dict does not record: train and later load them under the name
    ``ViT-L-14-quickgelu`` (``ViT-L-14`` + ``openai`` also trains correctly, and the exported ``rococlip.json`` then
    names ``ViT-L-14-quickgelu`` as the backbone to load the checkpoint with).

    Args:
        backbone: open_clip architecture (``ViT-L-14``; ``fmc-tiny`` for tests).
        pretrained: starting weights: an open_clip tag, a checkpoint path, or ``None`` for random weights.
        train_text: also fine-tune the text tower (same LLRD scheme over its blocks).
        train_logit_scale: also learn the temperature.
        lr: peak learning rate of the top layer.
        weight_decay: AdamW weight decay of weight matrices (1-D parameters get none).
        betas: AdamW betas.
        eps: AdamW epsilon.
        layer_decay: learning-rate multiplier per block going down from the top (1.0 disables LLRD).
        warmup_epochs: linear warmup length in epochs (converted to optimiser steps).
        min_lr: learning rate of the top layer at the end of the cosine decay.
        label_smoothing: label smoothing of both cross-entropies.
        mixup_alpha: ``alpha`` of the Beta distribution of the mixup weight (0 disables mixup).
        text_mixup: mix the caption targets with the images (see the mixup module for what exactly is mixed).
        dropout: dropout on the attention and MLP branches of every vision block during training.
        early_stopping: stop when ``val_loss`` stops improving.
        early_stopping_patience: validation epochs without improvement before stopping.
        early_stopping_min_delta: smallest decrease of ``val_loss`` that counts as an improvement.
        retrieval_ks: the recall@k cut-offs logged on the validation split.
        cache_dir: open_clip's download cache for tagged weights.

    Example:
        >>> model = ROCOCLIP(backbone="fmc-tiny", pretrained=None)
        >>> trainer = Trainer(max_epochs=50)  # doctest: +SKIP
        >>> trainer.fit(model, datamodule=ROCO("/data/roco-dataset", backbone="fmc-tiny"))  # doctest: +SKIP
    """

    def __init__(
        self,
        backbone: str = "ViT-L-14",
        pretrained: str | None = "openai",
        train_text: bool = False,
        train_logit_scale: bool = False,
        lr: float = 3e-6,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        layer_decay: float = 0.8,
        warmup_epochs: float = 5.0,
        min_lr: float = 1e-7,
        label_smoothing: float = 0.1,
        mixup_alpha: float = 0.2,
        text_mixup: bool = True,
        dropout: float = 0.1,
        early_stopping: bool = True,
        early_stopping_patience: int = 5,
        early_stopping_min_delta: float = 1e-4,
        retrieval_ks: Sequence[int] = (1, 5, 10),
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.backbone = backbone
        # load_clip returns eval mode and Lightning keeps modules' modes, so switch dropout on here.
        self.clip = load_clip(backbone, pretrained, cache_dir=cache_dir).train()
        self.clip.requires_grad_(False)
        self.clip.visual.requires_grad_(True)
        if train_text:
            for _, param in self._text_parameters():
                param.requires_grad_(True)
        if train_logit_scale:
            self.clip.logit_scale.requires_grad_(True)
        add_residual_dropout(self.clip.visual, dropout)
        self._val_outputs: list[dict[str, torch.Tensor]] = []

    # --- facts the datamodule needs ----------------------------------------------------------------------------------

    @property
    def image_size(self) -> int:
        """Input side of the vision tower."""
        size = self.clip.visual.image_size
        return int(size[0] if isinstance(size, Sequence) else size)

    @property
    def image_mean(self) -> tuple[float, ...]:
        """RGB mean the backbone was trained with."""
        return preprocess_stats(self.clip)[0]

    @property
    def image_std(self) -> tuple[float, ...]:
        """RGB std the backbone was trained with."""
        return preprocess_stats(self.clip)[1]

    # --- forward -----------------------------------------------------------------------------------------------------

    def forward(self, images: torch.Tensor, texts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L2-normalised ``(image_features, text_features)`` in float32."""
        image_features = F.normalize(self.clip.encode_image(images).float(), dim=-1)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.hparams.train_text):
            text_features = F.normalize(self.clip.encode_text(texts).float(), dim=-1)
        return image_features, text_features

    def _logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.float().exp().clamp(max=100.0)

    def _gather(self, features: torch.Tensor, sync_grads: bool) -> tuple[torch.Tensor, int]:
        """Features of the global batch and this process's offset in it (no-op on one device)."""
        if self._trainer is None or self.trainer.world_size == 1:
            return features, 0
        gathered = self.all_gather(features, sync_grads=sync_grads)
        return gathered.flatten(0, 1), self.trainer.global_rank * features.shape[0]

    def _loss(
        self, image_features: torch.Tensor, text_features: torch.Tensor, lam: float, permutation: torch.Tensor
    ) -> torch.Tensor:
        all_images, offset = self._gather(image_features, sync_grads=True)
        all_texts, _ = self._gather(text_features, sync_grads=True)
        to_text, to_image = mixup_targets(
            lam, permutation, all_texts.shape[0], offset=offset, text_mixup=self.hparams.text_mixup
        )
        return symmetric_contrastive_loss(
            image_features,
            text_features,
            all_images,
            all_texts,
            self._logit_scale(),
            to_text,
            to_image,
            label_smoothing=self.hparams.label_smoothing,
        )

    # --- steps -------------------------------------------------------------------------------------------------------

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        mixed = mixup_images(batch["image"], self.hparams.mixup_alpha)
        image_features, text_features = self(mixed.images, batch["text"])
        loss = self._loss(image_features, text_features, mixed.lam, mixed.permutation)
        size = batch["image"].shape[0]
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size, sync_dist=True)
        self.log("logit_scale", self._logit_scale(), on_step=True, on_epoch=False, batch_size=size)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._evaluation_step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._evaluation_step(batch, "test")

    def _evaluation_step(self, batch: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
        image_features, text_features = self(batch["image"], batch["text"])
        identity = torch.arange(image_features.shape[0], device=image_features.device)
        loss = self._loss(image_features, text_features, 1.0, identity)
        self.log(
            f"{prefix}_loss", loss, prog_bar=True, on_epoch=True, batch_size=image_features.shape[0], sync_dist=True
        )
        self._val_outputs.append(
            {"image": image_features, "text": text_features, "index": batch["index"], "caption": batch["caption_id"]}
        )
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_outputs.clear()

    def on_test_epoch_start(self) -> None:
        self._val_outputs.clear()

    def on_validation_epoch_end(self) -> None:
        self._log_retrieval("val")

    def on_test_epoch_end(self) -> None:
        self._log_retrieval("test")

    def _log_retrieval(self, prefix: str) -> None:
        if not self._val_outputs:
            return
        outputs = {key: torch.cat([out[key] for out in self._val_outputs]) for key in self._val_outputs[0]}
        self._val_outputs.clear()
        if self._trainer is not None and self.trainer.world_size > 1:
            outputs = {key: value.flatten(0, 1) for key, value in self.all_gather(outputs).items()}
            # DistributedSampler pads the last shard by repeating pairs: keep the first copy of each index.
            _, first = _first_occurrences(outputs["index"])
            outputs = {key: value[first] for key, value in outputs.items()}
        metrics = retrieval_recall(outputs["image"], outputs["text"], outputs["caption"], ks=self.hparams.retrieval_ks)
        metrics["retrieval_pairs"] = float(outputs["index"].shape[0])
        # The values are the same on every rank after the gather; syncing them only keeps Lightning from warning.
        self.log_dict({f"{prefix}_{name}": value for name, value in metrics.items()}, sync_dist=True)

    # --- optimisation ------------------------------------------------------------------------------------------------

    def _text_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        """The text tower's parameters (everything outside ``visual`` except the logit scale / bias)."""
        return [
            (name, param)
            for name, param in self.clip.named_parameters()
            if not name.startswith("visual.") and name not in ("logit_scale", "logit_bias")
        ]

    def parameter_groups(self) -> list[dict]:
        """AdamW groups: LLRD over the vision tower (and the text tower when trained), the logit scale at ``lr``."""
        hp = self.hparams
        groups = layerwise_param_groups(
            self.clip.visual.named_parameters(), hp.lr, hp.layer_decay, hp.weight_decay, prefix="visual"
        )
        if hp.train_text:
            groups += layerwise_param_groups(self._text_parameters(), hp.lr, hp.layer_decay, hp.weight_decay, "text")
        if hp.train_logit_scale:
            groups.append(
                {
                    "params": [self.clip.logit_scale],
                    "lr": hp.lr,
                    "weight_decay": 0.0,
                    "name": "logit_scale",
                    "lr_scale": 1.0,
                }
            )
        return groups

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.parameter_groups(), lr=hp.lr, betas=tuple(hp.betas), eps=hp.eps)
        total_steps = int(self.trainer.estimated_stepping_batches)
        warmup_steps = min(total_steps, round(hp.warmup_epochs * self._steps_per_epoch(total_steps)))
        scheduler = warmup_cosine_scheduler(optimizer, warmup_steps, total_steps, hp.lr, hp.min_lr)
        logger.info("ROCOCLIP schedule: %d warmup steps, %d steps in all", warmup_steps, total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    def _steps_per_epoch(self, total_steps: int) -> float:
        trainer = self.trainer
        batches = trainer.num_training_batches
        if math.isfinite(batches) and batches > 0:
            return max(1.0, math.ceil(batches / trainer.accumulate_grad_batches))
        if trainer.max_epochs and trainer.max_epochs > 0:
            return max(1.0, total_steps / trainer.max_epochs)
        raise ValueError(
            "cannot convert warmup epochs to steps: the training loader has no length and max_epochs is not set"
        )

    def configure_callbacks(self) -> list[Callback]:
        if not self.hparams.early_stopping:
            return []
        return [
            EarlyStopping(
                monitor=VAL_LOSS,
                mode="min",
                patience=self.hparams.early_stopping_patience,
                min_delta=self.hparams.early_stopping_min_delta,
            )
        ]


def _first_occurrences(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique values and the position of the first occurrence of each."""
    unique, inverse = torch.unique(values, return_inverse=True)
    positions = torch.arange(values.shape[0], device=values.device)
    first = torch.full((unique.shape[0],), values.shape[0], device=values.device, dtype=positions.dtype)
    first.scatter_reduce_(0, inverse, positions, reduce="amin")
    return unique, first
