"""FusionMedCLIP through anomalib's own command line: train, test and predict from the checkpoint, export."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.blob_images import write_blob_folder

MODEL = [
    "--model",
    "fusionmedclip_anomalib.FusionMedCLIP",
    "--model.backbone",
    "fmc-tiny",
    "--model.pretrained",
    "null",
    "--model.feature_layers",
    "[2, 4, 6]",
    "--model.max_epochs",
    "2",
    "--model.visualizer",
    "false",
]


def anomalib(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("anomalib")), *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def folder_data(root: Path) -> list[str]:
    return [
        "--data",
        "anomalib.data.Folder",
        "--data.name",
        "blobs",
        "--data.root",
        str(root),
        "--data.normal_dir",
        "train/normal",
        "--data.abnormal_dir",
        "test/abnormal",
        "--data.normal_test_dir",
        "test/normal",
        "--data.mask_dir",
        "masks",
        "--data.num_workers",
        "0",
        "--data.val_split_mode",
        "synthetic",
        "--data.train_batch_size",
        "4",
    ]


@pytest.mark.slow
def test_train_test_predict_export_through_the_anomalib_cli(tmp_path):
    data = write_blob_folder(tmp_path / "data", n_train=8, n_test=4)
    results = tmp_path / "results"
    common = ["--trainer.enable_progress_bar", "false", "--default_root_dir", str(results)]
    anomalib("train", *MODEL, *folder_data(data), *common, cwd=tmp_path)
    checkpoint = next(results.rglob("model.ckpt"))
    assert checkpoint.stat().st_size < 5_000_000  # trainable parts only; the full tiny model is ~19 MB

    tested = anomalib("test", *MODEL, *folder_data(data), "--ckpt_path", str(checkpoint), *common, cwd=tmp_path)
    assert "image_AUROC" in tested.stdout + tested.stderr
    anomalib(
        "predict",
        *MODEL,
        "--data",
        str(data / "test/abnormal"),
        "--ckpt_path",
        str(checkpoint),
        "--default_root_dir",
        str(tmp_path / "predict"),
        cwd=tmp_path,
    )

    anomalib(
        "export",
        *MODEL,
        "--export_type",
        "torch",
        "--ckpt_path",
        str(checkpoint),
        "--default_root_dir",
        str(tmp_path / "export"),
        cwd=tmp_path,
    )
    exported = torch.load(next((tmp_path / "export").rglob("model.pt")), weights_only=False)["model"].eval()
    image = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        torch_output = exported(image)
    assert torch_output.anomaly_map.shape[-2:] == (224, 224)

    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    anomalib(
        "export",
        *MODEL,
        "--export_type",
        "onnx",
        "--ckpt_path",
        str(checkpoint),
        "--default_root_dir",
        str(tmp_path / "export"),
        cwd=tmp_path,
    )
    import onnxruntime

    session = onnxruntime.InferenceSession(str(next((tmp_path / "export").rglob("model.onnx"))))
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": image.numpy()})))
    torch.testing.assert_close(
        torch.from_numpy(outputs["pred_score"]).flatten(), torch_output.pred_score.flatten(), atol=1e-4, rtol=1e-4
    )
