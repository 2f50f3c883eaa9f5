"""ROCOCLIP under a real Lightning Trainer: step schedule from epochs, callbacks, per-epoch retrieval metrics."""

import math
from pathlib import Path

import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import EarlyStopping

from fusionmedclip_anomalib.data.roco import ROCO
from fusionmedclip_anomalib.models.rococlip.lightning_model import ROCOCLIP
from fusionmedclip_anomalib.models.rococlip.schedule import warmup_cosine_factor


@pytest.mark.slow
def test_fit_converts_warmup_epochs_to_steps_and_logs_retrieval(roco_root: Path, initial_checkpoint: Path):
    model = ROCOCLIP(backbone="fmc-tiny", pretrained=str(initial_checkpoint), lr=1e-3, min_lr=1e-5, warmup_epochs=1)
    datamodule = ROCO(roco_root, backbone="fmc-tiny", batch_size=8, num_workers=0)
    trainer = Trainer(
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=2,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)

    assert any(isinstance(callback, EarlyStopping) for callback in trainer.callbacks)
    assert trainer.global_step == 4
    # 2 steps per epoch: warmup = 1 epoch = 2 steps, 4 steps in all; after the last step the factor is at its floor.
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.last_epoch == 4
    factor = warmup_cosine_factor(4, warmup_steps=2, total_steps=4, min_ratio=1e-5 / 1e-3)
    for group in trainer.optimizers[0].param_groups:
        assert math.isclose(group["lr"], group["initial_lr"] * factor, rel_tol=1e-9)
    top = max(trainer.optimizers[0].param_groups, key=lambda group: group["initial_lr"])
    assert math.isclose(top["lr"], 1e-5, rel_tol=1e-9)

    metrics = trainer.callback_metrics
    for name in (
        "val_loss",
        "val_i2t_recall@1",
        "val_i2t_recall@5",
        "val_i2t_recall@10",
        "val_t2i_recall@1",
        "val_t2i_recall@5",
        "val_t2i_recall@10",
    ):
        assert name in metrics, name
    assert model.clip.training  # Lightning restored train mode after validation
