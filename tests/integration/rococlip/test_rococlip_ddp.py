"""ROCOCLIP under Lightning's DDP strategy on two CPU processes (gloo): gathered loss and whole-split retrieval."""

from pathlib import Path

import pytest
from lightning.pytorch import Trainer

from fusionmedclip_anomalib.data.roco import ROCO
from fusionmedclip_anomalib.models.rococlip.lightning_model import ROCOCLIP


@pytest.mark.slow
def test_two_process_ddp_trains_and_scores_every_validation_pair_once(
    tmp_path: Path, roco_synthetic, initial_checkpoint: Path
):
    roco_synthetic.write_roco_split(tmp_path, "train")
    rows = roco_synthetic.write_roco_split(tmp_path, "validation")
    (tmp_path / "data" / "validation" / "radiology" / "images" / f"{rows[0][0]}.png").unlink()
    model = ROCOCLIP(backbone="fmc-tiny", pretrained=str(initial_checkpoint), lr=1e-3)
    # 31 validation pairs over 2 ranks: the sampler repeats one pair to even the shards; retrieval must count 31.
    datamodule = ROCO(tmp_path, backbone="fmc-tiny", batch_size=4, eval_batch_size=8, num_workers=0)
    trainer = Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=1,
        limit_train_batches=2,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    metrics = trainer.callback_metrics
    assert float(metrics["val_retrieval_pairs"]) == 31
    assert 0.0 <= float(metrics["val_i2t_recall@10"]) <= 1.0
    assert float(metrics["train_loss"]) > 0
