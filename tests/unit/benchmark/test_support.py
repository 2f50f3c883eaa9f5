"""Support sets for any datamodule, and the split checks that keep the protocol honest."""

from __future__ import annotations

import pandas as pd
import pytest

from fusionmedclip_anomalib.benchmark.factory import ProtocolError
from fusionmedclip_anomalib.benchmark.support import prepare_support_set


class FakeDataset:
    def __init__(self, paths: list[str], labels: list[int] | None = None) -> None:
        self.samples = pd.DataFrame({"image_path": paths, "label_index": labels or [0] * len(paths)})

    def subsample(self, indices: list[int]) -> FakeDataset:
        rows = self.samples.iloc[indices]
        return FakeDataset(rows["image_path"].tolist(), rows["label_index"].tolist())


class FakeDataModule:
    def __init__(self, train: int = 10, val_paths: list[str] | None = None, manifest: dict | None = None) -> None:
        self.calls: list[str] = []
        self._train = train
        self._val = val_paths
        if manifest is not None:
            self.support_manifest = manifest

    def prepare_data(self) -> None:
        self.calls.append("prepare_data")

    def setup(self, stage: object) -> None:
        self.calls.append(f"setup:{getattr(stage, 'value', stage)}")
        self.train_data = FakeDataset([f"train/{i:02d}.png" for i in range(self._train)])
        self.test_data = FakeDataset(["test/n.png", "test/a.png", "test/b.png"], [0, 1, 1])
        if self._val is not None:
            self.val_data = FakeDataset(self._val)


def test_harness_draws_a_seeded_support_set_when_the_datamodule_does_not() -> None:
    first, second, other = FakeDataModule(), FakeDataModule(), FakeDataModule()
    support, sizes = prepare_support_set(first, k_shot=4, seed=7, native=False)
    again, _ = prepare_support_set(second, k_shot=4, seed=7, native=False)
    different, _ = prepare_support_set(other, k_shot=4, seed=8, native=False)
    assert first.calls == ["prepare_data", "setup:fit"]  # set up once, as the trainer would for fitting
    assert support.source == "harness" and len(support.files) == 4
    assert support.files == again.files and support.sha256 == again.sha256
    assert support.files != different.files
    assert first.train_data.samples["image_path"].tolist() == list(support.files)
    assert support.manifest == {"k_shot": 4, "seed": 7, "drawn_by": "fusionmedclip bench", "files": list(support.files)}
    assert (sizes.train, sizes.val, sizes.test, sizes.test_abnormal) == (4, 0, 3, 2)


def test_native_support_set_keeps_the_datamodule_manifest() -> None:
    datamodule = FakeDataModule(train=3, manifest={"dataset": "x", "files": ["a", "b", "c"], "k_shot": 3})
    support, _ = prepare_support_set(datamodule, k_shot=3, seed=0, native=True)
    assert support.source == "datamodule" and support.manifest["dataset"] == "x"


def test_wrong_support_size_and_test_images_in_validation_are_refused() -> None:
    with pytest.raises(ProtocolError, match="gave 5 training images for k_shot=3"):
        prepare_support_set(FakeDataModule(train=5), k_shot=3, seed=0, native=True)
    with pytest.raises(ProtocolError, match="has only 10 images"):
        prepare_support_set(FakeDataModule(), k_shot=11, seed=0, native=False)
    leaky = FakeDataModule(val_paths=["train/00.png", "test/a.png"])
    with pytest.raises(ProtocolError, match="1 validation images are test images"):
        prepare_support_set(leaky, k_shot=2, seed=0, native=False)
