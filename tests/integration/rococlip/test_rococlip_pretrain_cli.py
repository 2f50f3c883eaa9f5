"""`fusionmedclip pretrain` end to end on generated ROCO-layout data: checkpoint, sidecar, config, bad input."""

import csv
import json
import warnings
from pathlib import Path

import pytest
import torch

from fusionmedclip_anomalib.clip import load_clip
from fusionmedclip_anomalib.models.rococlip.cli import main

TINY_RUN = [
    "--model.backbone",
    "fmc-tiny",
    "--model.lr",
    "1e-3",
    "--data.num_workers",
    "0",
    "--data.batch_size",
    "8",
    "--trainer.max_epochs",
    "2",
    "--trainer.limit_train_batches",
    "2",
    "--trainer.limit_val_batches",
    "1",
    "--trainer.num_sanity_val_steps",
    "0",
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
]


@pytest.mark.slow
def test_pretrain_writes_a_checkpoint_that_load_clip_reads_and_that_changes_features(
    roco_root: Path, initial_checkpoint: Path, tmp_path: Path, capsys
):
    output = tmp_path / "run"
    code = main(
        [
            "--data.root",
            str(roco_root),
            "--model.pretrained",
            str(initial_checkpoint),
            "--output",
            str(output),
            *TINY_RUN,
        ]
    )
    assert code == 0
    checkpoint = output / "rococlip.pt"
    assert checkpoint.is_file() and (output / "config.yaml").is_file()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuned, original = load_clip("fmc-tiny", checkpoint), load_clip("fmc-tiny", initial_checkpoint)
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    texts = torch.randint(1, 1000, (2, 77))
    with torch.no_grad():
        assert not torch.allclose(tuned.encode_image(images), original.encode_image(images), atol=1e-4)
        assert torch.equal(tuned.encode_text(texts), original.encode_text(texts))  # text tower frozen

    # Stage 2 takes it as its backbone: same seeded adapters, different anomaly maps than on the original weights.
    from fusionmedclip_anomalib import FusionMedCLIP

    def anomaly_map(pretrained: Path) -> torch.Tensor:
        torch.manual_seed(0)
        model = FusionMedCLIP(backbone="fmc-tiny", pretrained=str(pretrained), feature_layers=(2, 4, 6))
        model.model.eval()
        with torch.no_grad():
            return model.model(images[:1].clamp(0, 1)).anomaly_map

    assert not torch.allclose(anomaly_map(checkpoint), anomaly_map(initial_checkpoint), atol=1e-5)

    sidecar = json.loads((output / "rococlip.json").read_text())
    assert sidecar["backbone"] == "fmc-tiny"
    assert sidecar["metadata"]["weights"] == "best" and sidecar["metadata"]["best_val_loss"] > 0

    # Retrieval recall on the validation split is logged every epoch.
    (metrics_file,) = output.glob("lightning_logs/version_*/metrics.csv")
    rows = [row for row in csv.DictReader(metrics_file.open()) if row.get("val_i2t_recall@1")]
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    assert all(0.0 <= float(row["val_t2i_recall@5"]) <= 1.0 for row in rows)

    # The written config reproduces the run: it parses back to the same values.
    capsys.readouterr()
    assert main(["--config", str(output / "config.yaml"), "--print_config"]) == 0
    printed = capsys.readouterr().out
    assert "backbone: fmc-tiny" in printed and f"root: {roco_root}" in printed and "label_smoothing: 0.1" in printed


def test_missing_captions_file_fails_with_a_message_naming_it(tmp_path: Path, roco_synthetic, capsys):
    roco_synthetic.write_roco_split(tmp_path / "roco", "train")
    roco_synthetic.write_roco_split(tmp_path / "roco", "validation")
    captions = tmp_path / "roco" / "data" / "validation" / "radiology" / "captions.txt"
    captions.unlink()
    code = main(
        [
            "--data.root",
            str(tmp_path / "roco"),
            "--model.pretrained",
            "null",
            "--output",
            str(tmp_path / "o"),
            *TINY_RUN,
        ]
    )
    assert code == 1
    assert str(captions) in capsys.readouterr().err
    assert not (tmp_path / "o" / "rococlip.pt").exists()


def test_help_through_the_fusionmedclip_command(capsys):
    from fusionmedclip_anomalib.cli import main as fusionmedclip

    assert fusionmedclip(["pretrain", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--data.root" in out and "--model.layer_decay" in out and "--export_weights" in out


def test_seed_and_links_are_applied_before_the_model_and_data_are_built(roco_root: Path, tmp_path: Path):
    from fusionmedclip_anomalib.models.rococlip.precision import default_precision
    from fusionmedclip_anomalib.models.rococlip.pretrain import build_cli

    def weights(seed: int) -> dict:
        cli = build_cli(
            [
                "--data.root",
                str(roco_root),
                "--model.backbone",
                "fmc-tiny",
                "--model.pretrained",
                "null",
                "--seed_everything",
                str(seed),
                "--output",
                str(tmp_path),
            ]
        )
        assert cli.datamodule.backbone == "fmc-tiny" and cli.datamodule.image_size == cli.model.image_size
        assert cli.datamodule.mean == cli.model.image_mean and cli.datamodule.std == cli.model.image_std
        assert cli.config.trainer.precision == default_precision() and cli.config.trainer.max_epochs == 50
        return cli.model.clip.visual.state_dict()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first, again, other = weights(3), weights(3), weights(4)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not torch.equal(first["conv1.weight"], other["conv1.weight"])
