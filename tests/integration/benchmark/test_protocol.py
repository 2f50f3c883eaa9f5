"""The protocol's promises through the real Engine: raw outputs, one test pass, no test image in validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from anomalib.engine import Engine
from lightning.pytorch import seed_everything

from fusionmedclip_anomalib.benchmark.config import parse_config
from fusionmedclip_anomalib.benchmark.factory import ProtocolError, build_datamodule, build_model
from fusionmedclip_anomalib.benchmark.outputs import RawOutputCollector
from fusionmedclip_anomalib.benchmark.run import TRAINER_DEFAULTS, execute_run
from fusionmedclip_anomalib.benchmark.support import prepare_support_set

from .conftest import PATCHCORE, TinyGrid, tiny_config

pytestmark = pytest.mark.slow


def _spec(tiny_grid: TinyGrid, model: dict, **dataset_args: object):
    data = tiny_config(tiny_grid.phantom_root, models=[model], seeds=[0])
    data["datasets"][0]["init_args"].update(dataset_args)
    return parse_config(data).runs()[0]


def test_metrics_are_computed_on_the_models_raw_outputs(tiny_grid: TinyGrid, tmp_path: Path) -> None:
    """The collected scores are exactly the torch model's output: no normalisation, no clamping."""
    spec = _spec(tiny_grid, PATCHCORE)
    seed_everything(spec.seed, verbose=False)
    datamodule, native = build_datamodule(spec)
    model = build_model(spec)
    assert model.post_processor is None and model.evaluator is None and model.visualizer is None
    prepare_support_set(datamodule, spec.k_shot, spec.seed, native)
    collector = RawOutputCollector(image_size=64)
    engine = Engine(default_root_dir=tmp_path, callbacks=[collector], **TRAINER_DEFAULTS)
    engine.fit(model, datamodule=datamodule)
    engine.trainer.test(model, datamodule=datamodule, verbose=False)
    outputs = collector.result()

    model.eval()
    scores, maps = [], []
    with torch.no_grad():
        for batch in datamodule.test_dataloader():
            prediction = model.model(model.pre_processor.transform(batch.image))
            scores.append(prediction.pred_score.reshape(-1))
            maps.append(prediction.anomaly_map.reshape(len(batch.image), *prediction.anomaly_map.shape[-2:]))
    torch.testing.assert_close(outputs.scores, torch.cat(scores))
    expected_maps = torch.nn.functional.interpolate(
        torch.cat(maps)[:, None], size=(64, 64), mode="bilinear", align_corners=False
    )[:, 0]
    torch.testing.assert_close(outputs.maps, expected_maps)
    assert len(outputs.scores.unique()) == len(outputs.scores)  # no clamping ties


def test_few_shot_model_sees_the_test_set_once(tiny_grid: TinyGrid) -> None:
    """WinCLIP is FEW_SHOT: Engine.fit only validates and Engine.test would validate again; the harness tests once."""
    winclip = {
        "name": "WinCLIP",
        "class_path": "fusionmedclip_anomalib.models.winclip.WinClip",
        "init_args": {"backbone": "fmc-tiny"},
    }
    result = execute_run(_spec(tiny_grid, winclip))
    record = result.record
    assert record["status"] == "ok", record.get("error")
    assert record["learning_type"] == "few_shot"
    assert record["test_passes"] == 1
    assert record["spec"]["model"]["init_args"] == {"backbone": "fmc-tiny"}
    assert any("RANDOM weights" in warning for warning in record["warnings"])
    assert result.gallery["image"].shape == (2, 64, 64, 3)


def test_any_anomalib_datamodule_gets_a_seeded_support_set_and_a_clean_validation(
    tiny_grid: TinyGrid, tmp_path: Path
) -> None:
    """anomalib's Folder takes no k_shot: the harness draws the support set; same_as_test validation is refused."""
    from PIL import Image

    for split, count in (("train/normal", 6), ("test/normal", 2), ("test/abnormal", 2)):
        folder = tmp_path / "folder" / split
        folder.mkdir(parents=True)
        for index in range(count):
            Image.new("RGB", (32, 32), (index * 40, 90, 90)).save(folder / f"{index}.png")

    def spec(val_split_mode: str):
        data = tiny_config(tiny_grid.phantom_root, models=[PATCHCORE], seeds=[0])
        data["datasets"] = [
            {
                "name": "folder",
                "class_path": "anomalib.data.Folder",
                "init_args": {
                    "name": "folder",
                    "root": str(tmp_path / "folder"),
                    "normal_dir": "train/normal",
                    "abnormal_dir": "test/abnormal",
                    "normal_test_dir": "test/normal",
                    "num_workers": 0,
                    "val_split_mode": val_split_mode,
                    "val_split_ratio": 0.3,
                },
            }
        ]
        return parse_config(data).runs()[0]

    result = execute_run(spec("from_train"))
    assert result.record["status"] == "ok", result.record.get("error")
    assert result.record["support"]["source"] == "harness"
    assert result.record["splits"]["train"] == 2 and result.record["splits"]["test"] == 4
    files = result.support_manifest["files"]
    assert len(files) == 2 and all("/train/normal/" in path for path in files)
    assert result.support_manifest["seed"] == 0

    refused = execute_run(spec("same_as_test")).record
    assert refused["status"] == "failed"
    assert refused["error"]["type"] == ProtocolError.__name__
    assert "validation images are test images" in refused["error"]["message"]
