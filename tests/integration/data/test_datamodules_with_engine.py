"""Medical datamodules inside anomalib's Engine: fit + test, model resize injected, manifest written, no val crash."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from medical_fakes import expected_busi_mask, make_busi_raw

from fusionmedclip_anomalib.data import BUSI, Phantom

pytestmark = pytest.mark.slow


def _toy_model(image_size: int):
    """A minimal ONE_CLASS anomalib model: distance to the mean support image; records what it was fed."""
    from anomalib import LearningType
    from anomalib.data import InferenceBatch
    from anomalib.models.components import AnomalibModule
    from anomalib.post_processing import PostProcessor
    from anomalib.pre_processing import PreProcessor
    from torch import nn
    from torchvision.transforms.v2 import Compose, Resize

    class MeanDistance(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(1, 3, image_size, image_size))
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, image: torch.Tensor) -> InferenceBatch | torch.Tensor:
            anomaly_map = (image - self.mean).abs().mean(1) * self.scale
            if self.training:
                return anomaly_map
            return InferenceBatch(pred_score=anomaly_map.flatten(1).amax(1), anomaly_map=anomaly_map)

    class Toy(AnomalibModule):
        def __init__(self) -> None:
            pre = PreProcessor(transform=Compose([Resize((image_size, image_size))]))
            super().__init__(pre_processor=pre, post_processor=PostProcessor(), visualizer=False)
            self.model = MeanDistance()
            self.seen: dict[str, list] = {"train": [], "val": [], "test": []}

        def training_step(self, batch, *args, **kwargs):
            self.seen["train"].append((tuple(batch.image.shape), batch.gt_label.tolist(), list(batch.image_path)))
            with torch.no_grad():
                self.model.mean.copy_(batch.image.mean(0, keepdim=True))
            return {"loss": self.model(batch.image).mean() * 0.0}

        def validation_step(self, batch, *args, **kwargs):
            self.seen["val"].append(list(batch.image_path))
            return batch.update(**self.model(batch.image)._asdict())

        def test_step(self, batch, *args, **kwargs):
            self.seen["test"].append((tuple(batch.gt_mask.shape), batch.gt_mask.dtype, batch.gt_label.tolist()))
            return super().test_step(batch, *args, **kwargs)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

        @property
        def learning_type(self) -> LearningType:
            return LearningType.ONE_CLASS

        @property
        def trainer_arguments(self) -> dict:
            return {}

    return Toy()


@pytest.mark.parametrize("val_split_mode", ["synthetic", "none"])
def test_phantom_fit_and_test_in_engine(tmp_path: Path, val_split_mode: str) -> None:
    from anomalib.engine import Engine

    dm = Phantom(
        modality="breast_us",
        root=tmp_path / "data",
        k_shot=3,
        seed=0,
        n_train=6,
        n_test_normal=4,
        n_test_abnormal=4,
        image_size=96,
        val_split_mode=val_split_mode,
        eval_batch_size=8,
    )
    model = _toy_model(image_size=48)
    engine = Engine(
        default_root_dir=tmp_path / "results",
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        logger=False,
    )
    engine.fit(model, datamodule=dm)
    results = engine.test(model, datamodule=dm)

    assert {"image_AUROC", "pixel_AUROC"} <= set(results[0])
    ((shape, dtype, labels),) = model.seen["test"]
    assert shape == (8, 48, 48) and dtype == torch.bool and sum(labels) == 4  # masks at the model's resolution
    train_shape, train_labels, train_paths = model.seen["train"][0]
    assert train_shape == (3, 3, 48, 48) and not any(train_labels)
    test_paths = set(dm.test_data.samples.image_path)
    val_paths = {path for batch in model.seen["val"] for path in batch}
    assert not val_paths & test_paths
    assert bool(val_paths) == (val_split_mode == "synthetic")

    written = Path(engine.trainer.default_root_dir) / "support_set.json"
    manifest = json.loads(written.read_text())
    assert manifest == dm.support_manifest and len(manifest["files"]) == 3
    assert sorted(Path(p).name for p in train_paths) == sorted(Path(p).name for p in manifest["files"])


def test_busi_prepared_from_raw_on_first_setup(tmp_path: Path) -> None:
    raw = make_busi_raw(tmp_path / "raw", n_benign=5, n_malignant=3, n_normal=9)
    dm = BUSI(root=tmp_path / "prepared", source=raw, k_shot=2, seed=0, eval_batch_size=32)
    dm.setup()
    assert (tmp_path / "prepared" / "busi" / "samples" / "test.json").is_file()
    assert len(dm.test_data) == 8 + round(9 * 101 / 133)
    batch = next(iter(dm.test_dataloader()))
    assert batch.gt_mask.dtype == torch.bool
    for index, path in enumerate(batch.image_path):
        if not batch.gt_label[index]:
            assert not batch.gt_mask[index].any()
            continue
        stem = Path(path).stem  # e.g. benign_1
        group, number = stem.rsplit("_", 1)
        expected = expected_busi_mask(f"{group} ({number})")
        assert np.array_equal(batch.gt_mask[index].numpy(), expected), stem
