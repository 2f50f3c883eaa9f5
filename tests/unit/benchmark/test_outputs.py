"""Raw output collection: one common resolution, raw values untouched, one test pass counted."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch.nn import functional as F

from fusionmedclip_anomalib.benchmark.memory import measure_peak_memory
from fusionmedclip_anomalib.benchmark.outputs import RawOutputCollector


@dataclass
class FakeBatch:
    image: torch.Tensor
    gt_label: torch.Tensor
    gt_mask: torch.Tensor | None
    image_path: list[str]
    pred_score: torch.Tensor | None = None
    anomaly_map: torch.Tensor | None = None


def _batch(start: int, labels: list[int], size: int = 16, masks: bool = True, scores: bool = True) -> FakeBatch:
    n = len(labels)
    generator = torch.Generator().manual_seed(start)
    gt_mask = torch.zeros(n, size, size, dtype=torch.bool)
    for row, label in enumerate(labels):
        if label:
            gt_mask[row, 4:9, 5:11] = True
    anomaly_map = torch.randn(n, 1, size, size, generator=generator) * 50 + 300  # far outside [0, 1]
    return FakeBatch(
        image=torch.randn(n, 3, size, size, generator=generator),
        gt_label=torch.tensor(labels, dtype=torch.bool),
        gt_mask=gt_mask if masks else None,
        image_path=[f"img{start + i}.png" for i in range(n)],
        pred_score=anomaly_map.flatten(1).amax(1) * 2 if scores else None,
        anomaly_map=anomaly_map,
    )


def _collect(collector: RawOutputCollector, batches: list[FakeBatch]) -> None:
    collector.on_test_epoch_start(None, None)
    for index, batch in enumerate(batches):
        collector.on_test_batch_end(None, None, batch, batch, index)


def test_maps_resized_bilinear_masks_nearest_scores_raw() -> None:
    batches = [_batch(0, [0, 1, 1]), _batch(3, [0, 0, 1])]
    collector = RawOutputCollector(image_size=32, gallery_size=2)
    _collect(collector, batches)
    outputs = collector.result()
    assert collector.test_passes == 1 and collector.test_images == 6
    assert outputs.maps.shape == (6, 32, 32) and outputs.masks.shape == (6, 32, 32)
    expected_map = F.interpolate(batches[0].anomaly_map, size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(outputs.maps[:3], expected_map)
    expected_mask = F.interpolate(batches[0].gt_mask[:, None].float(), size=(32, 32), mode="nearest")[:, 0] > 0.5
    assert torch.equal(outputs.masks[:3], expected_mask)
    assert outputs.masks.dtype == torch.bool
    assert torch.equal(outputs.scores, torch.cat([b.pred_score for b in batches]))  # untouched raw values
    assert outputs.scores.min() > 1.0
    assert outputs.labels.tolist() == [0, 1, 1, 0, 0, 1]
    assert outputs.score_source == "pred_score"
    assert outputs.image_paths == [f"img{i}.png" for i in range(6)]


def test_map_at_evaluation_size_is_not_resampled() -> None:
    batch = _batch(0, [0, 1], size=32)
    collector = RawOutputCollector(image_size=32)
    _collect(collector, [batch])
    assert torch.equal(collector.result().maps, batch.anomaly_map[:, 0])


def test_missing_score_falls_back_to_map_max_and_missing_masks_give_none() -> None:
    batch = _batch(0, [0, 1], masks=False, scores=False)
    collector = RawOutputCollector(image_size=16)
    _collect(collector, [batch])
    outputs = collector.result()
    assert outputs.score_source == "map_max"
    torch.testing.assert_close(outputs.scores, batch.anomaly_map.flatten(1).amax(1))
    assert outputs.masks is None


def test_gallery_keeps_first_abnormal_and_normal_images() -> None:
    collector = RawOutputCollector(image_size=16, gallery_size=3)
    _collect(collector, [_batch(0, [0, 0, 1]), _batch(3, [1, 1, 0])])
    gallery = collector.result().gallery
    assert gallery["image_path"].tolist() == ["img0.png", "img2.png", "img3.png"]
    assert gallery["label"].tolist() == [0, 1, 1]
    assert gallery["image"].shape == (3, 16, 16, 3) and gallery["image"].dtype.name == "uint8"
    assert gallery["mask"][1].any() and not gallery["mask"][0].any()
    assert gallery["anomaly_map"].shape == (3, 16, 16)


def test_passes_are_counted_and_empty_tests_are_errors() -> None:
    collector = RawOutputCollector()
    collector.on_test_epoch_start(None, None)
    collector.on_test_epoch_start(None, None)
    assert collector.test_passes == 2
    with pytest.raises(RuntimeError, match="no test batch"):
        collector.result()


def test_peak_memory_sees_an_allocation() -> None:
    with measure_peak_memory() as baseline:
        pass
    with measure_peak_memory() as memory:
        block = bytearray(200 * 2**20)
        block[::4096] = b"x" * len(block[::4096])
    assert memory.peak_rss_mb >= baseline.peak_rss_mb
    if memory.rss_scope == "run":
        assert memory.peak_rss_mb - baseline.peak_rss_mb > 100
    assert set(memory.as_dict()) == {"peak_rss_mb", "rss_scope", "cuda_max_allocated_mb"}
