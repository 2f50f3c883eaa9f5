"""Raw-score metrics: equal to scikit-learn on the same scores, whatever their range."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from fusionmedclip_anomalib.benchmark.metrics import _Pair, compute_metrics, score_metric
from fusionmedclip_anomalib.benchmark.outputs import RawOutputs


def _sklearn_f1max(labels: np.ndarray, scores: np.ndarray) -> float:
    precision, recall, _ = precision_recall_curve(labels, scores)
    return float(np.max(2 * precision * recall / np.clip(precision + recall, 1e-12, None)))


def _scores(seed: int, n: int, scale: float, offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, generator=generator) < 0.4).long()
    scores = (torch.randn(n, generator=generator) + 0.8 * labels) * scale + offset
    return scores, labels


@pytest.mark.parametrize(("scale", "offset"), [(1.0, 0.0), (25.0, 300.0), (0.1, 0.5), (3.0, -40.0)])
def test_image_metrics_equal_sklearn_on_raw_scores(scale: float, offset: float) -> None:
    scores, labels = _scores(0, 400, scale, offset)
    y, s = labels.numpy(), scores.double().numpy()
    assert score_metric("AUROC", scores, labels) == pytest.approx(roc_auc_score(y, s), abs=1e-6)
    assert score_metric("AP", scores, labels) == pytest.approx(average_precision_score(y, s), abs=1e-6)
    assert score_metric("F1max", scores, labels) == pytest.approx(_sklearn_f1max(y, s), abs=1e-6)


def test_ties_are_handled_like_sklearn() -> None:
    scores = torch.tensor([0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 5.0, 5.0])
    labels = torch.tensor([0, 0, 1, 0, 1, 1, 0, 1])
    assert score_metric("AUROC", scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-7)
    assert score_metric("AP", scores, labels) == pytest.approx(average_precision_score(labels, scores), abs=1e-7)


def test_default_anomalib_auroc_would_squash_raw_distances() -> None:
    """Why the harness disables torchmetrics' sigmoid: large raw scores saturate and tie."""
    from anomalib.metrics import AUROC

    scores, labels = _scores(1, 300, 5.0, 200.0)
    default = AUROC(fields=("preds", "target"))
    default.update(_Pair(scores, labels))
    assert float(default.compute()) == pytest.approx(0.5)
    assert score_metric("AUROC", scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    assert score_metric("AUROC", scores, labels) > 0.6


def test_pixel_metrics_pool_every_pixel_and_equal_sklearn() -> None:
    generator = torch.Generator().manual_seed(2)
    masks = torch.zeros(6, 32, 32, dtype=torch.bool)
    masks[3, 4:12, 5:15] = True
    masks[4, 20:30, 20:28] = True
    masks[5, 0:6, 0:6] = True
    maps = torch.randn(6, 32, 32, generator=generator) * 10 + masks.float() * 8 + 50
    outputs = RawOutputs(
        scores=maps.flatten(1).amax(1),
        labels=torch.tensor([0, 0, 0, 1, 1, 1]),
        maps=maps,
        masks=masks,
        image_paths=[f"{i}.png" for i in range(6)],
        score_source="map_max",
    )
    metrics = compute_metrics(outputs)
    y, s = masks.flatten().numpy(), maps.flatten().double().numpy()
    assert metrics["pixel_AUROC"] == pytest.approx(roc_auc_score(y, s), abs=1e-5)
    assert metrics["pixel_AP"] == pytest.approx(average_precision_score(y, s), abs=1e-5)
    assert metrics["pixel_F1max"] == pytest.approx(_sklearn_f1max(y, s), abs=1e-5)
    assert 0.0 < metrics["pixel_AUPRO"] <= 1.0
    assert metrics["image_AUROC"] == pytest.approx(roc_auc_score([0, 0, 0, 1, 1, 1], outputs.scores), abs=1e-6)


def test_aupro_of_a_perfect_map_is_one() -> None:
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[1, 3:9, 3:9] = True
    maps = masks.float() * 100.0 + 7.0
    assert score_metric("AUPRO", maps, masks) == pytest.approx(1.0)


def test_undefined_metrics_are_none() -> None:
    assert score_metric("AUROC", torch.tensor([1.0, 2.0]), torch.tensor([1, 1])) is None
    outputs = RawOutputs(torch.tensor([1.0, 3.0]), torch.tensor([0, 1]), None, None, ["a", "b"], "pred_score")
    metrics = compute_metrics(outputs, ("image_AUROC", "pixel_AUROC", "pixel_AUPRO"))
    assert metrics == {"image_AUROC": 1.0, "pixel_AUROC": None, "pixel_AUPRO": None}
