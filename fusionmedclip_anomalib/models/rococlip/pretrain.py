"""``fusionmedclip pretrain``: fit ROCOCLIP on ROCO with LightningCLI, then export an open_clip checkpoint."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Literal

import torch
from lightning.pytorch import Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from fusionmedclip_anomalib.clip import BackboneWeightsUnavailable
from fusionmedclip_anomalib.data.roco import ROCO, ROCODataError
from fusionmedclip_anomalib.models.rococlip.export import export_open_clip_checkpoint
from fusionmedclip_anomalib.models.rococlip.lightning_model import ROCOCLIP, VAL_LOSS
from fusionmedclip_anomalib.models.rococlip.precision import default_precision

logger = logging.getLogger(__name__)

DESCRIPTION = """Stage 1 of FusionMedCLIP: fine-tune a CLIP vision tower on ROCO image–caption pairs (ROCOCLIP).

Writes <output>/rococlip.pt (an open_clip state dict: pass it as FusionMedCLIP(pretrained=...) or
load_clip(backbone, path)), <output>/rococlip.json (the backbone name to load it with, scores) and
<output>/config.yaml (this run's full configuration; rerun it with --config).
"""


class PretrainCLI(LightningCLI):
    """LightningCLI over :class:`ROCOCLIP` and :class:`ROCO` with the export options and SPEC §5 trainer defaults."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--output", type=str, default="results/rococlip", help="folder for all outputs")
        parser.add_argument(
            "--export_name", type=str, default="rococlip.pt", help="checkpoint file name (.pt or .safetensors)"
        )
        parser.add_argument(
            "--export_weights",
            type=Literal["best", "last"],
            default="best",
            help="export the weights of the epoch with the lowest val_loss, or those at the end of training",
        )
        parser.add_argument("--ckpt_path", type=str | None, default=None, help="Lightning checkpoint to resume from")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": VAL_LOSS,
                "checkpoint.mode": "min",
                "checkpoint.save_top_k": 1,
                "checkpoint.save_last": True,
                "checkpoint.filename": "rococlip-{epoch:02d}-{val_loss:.4f}",
                "trainer.max_epochs": 50,
                "trainer.precision": default_precision(),
            }
        )
        parser.link_arguments("output", "trainer.default_root_dir")
        parser.link_arguments("output", "checkpoint.dirpath", compute_fn=_checkpoint_dir)
        parser.link_arguments("model.backbone", "data.backbone")
        parser.link_arguments("model.image_size", "data.image_size", apply_on="instantiate")
        parser.link_arguments("model.image_mean", "data.mean", apply_on="instantiate")
        parser.link_arguments("model.image_std", "data.std", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        seed = self.config.get("seed_everything")
        # Seed explicitly before the model (random parts) and the data are built, whatever LightningCLI already did.
        if seed is not False and seed is not None:
            seed_everything(int(seed), workers=True, verbose=False)


def _checkpoint_dir(output: str) -> str:
    return str(Path(output) / "checkpoints")


def build_cli(argv: list[str]) -> PretrainCLI:
    """Parse ``argv`` and build the seeded model, datamodule and trainer without running anything."""
    # argv comes from the `fusionmedclip` dispatcher, so sys.argv also holds arguments: that is intended here.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended", category=UserWarning)
    return PretrainCLI(
        ROCOCLIP,
        ROCO,
        args=argv,
        run=False,
        seed_everything_default=0,
        save_config_callback=None,
        auto_configure_optimizers=False,
        parser_kwargs={"prog": "fusionmedclip pretrain", "description": DESCRIPTION},
    )


def run_pretrain(argv: list[str]) -> int:
    """Parse ``argv``, fit, export; returns the exit status (0 on success)."""
    try:
        cli = build_cli(argv)
    except SystemExit as exit_:  # --help, --print_config and argument errors
        return int(exit_.code or 0)
    except (FileNotFoundError, BackboneWeightsUnavailable, ValueError) as error:
        print(f"fusionmedclip pretrain: error: {error}", file=sys.stderr)
        return 1
    output = Path(cli.config.output)
    if cli.trainer.is_global_zero:
        output.mkdir(parents=True, exist_ok=True)
        cli.parser.save(cli.config, output / "config.yaml", overwrite=True, skip_none=False)
    try:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path)
    except (FileNotFoundError, ROCODataError) as error:
        print(f"fusionmedclip pretrain: error: {error}", file=sys.stderr)
        return 1
    if cli.trainer.is_global_zero:
        path = export(cli.model, cli.trainer, output / cli.config.export_name, cli.config.export_weights)
        print(f"ROCOCLIP checkpoint: {path}")
    return 0


def export(model: ROCOCLIP, trainer: Trainer, path: Path, weights: Literal["best", "last"]) -> Path:
    """Export ``model.clip`` with the best (lowest ``val_loss``) or last weights; returns the checkpoint path."""
    metadata = {
        "pretrained": model.hparams.pretrained,
        "epochs_trained": trainer.current_epoch,
        "global_step": trainer.global_step,
        "weights": "last",
        "last_epoch_metrics": {
            name: float(value) for name, value in trainer.callback_metrics.items() if value.numel() == 1
        },
    }
    best = next((callback for callback in trainer.checkpoint_callbacks if callback.monitor == VAL_LOSS), None)
    best_path = best.best_model_path if best is not None else ""
    if weights == "best" and best_path and Path(best_path).is_file():
        checkpoint = torch.load(best_path, map_location="cpu", weights_only=True)
        model.load_state_dict(checkpoint["state_dict"])
        metadata.update(
            weights="best",
            checkpoint=best_path,
            best_val_loss=float(best.best_model_score),
            epoch=checkpoint.get("epoch"),
        )
    elif weights == "best":
        logger.warning("no best checkpoint (was %s logged?): exporting the last weights", VAL_LOSS)
    written = export_open_clip_checkpoint(model.clip, path, backbone=model.backbone, metadata=metadata)
    logger.info("ROCOCLIP export: %s", json.dumps(metadata, default=str))
    return written
