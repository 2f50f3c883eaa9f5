"""Retrieval recall@k over image–caption pairs."""

import torch

from fusionmedclip_anomalib.models.rococlip.retrieval import retrieval_recall


def test_perfect_alignment_gives_recall_one():
    features = torch.randn(12, 8)
    metrics = retrieval_recall(features, features, ks=(1, 5))
    assert all(value == 1.0 for value in metrics.values())
    assert set(metrics) == {"i2t_recall@1", "i2t_recall@5", "t2i_recall@1", "t2i_recall@5", "mean_recall"}


def test_shifted_alignment_misses_at_one_and_hits_at_two():
    texts = torch.eye(4)
    images = texts[[1, 2, 3, 0]] + 0.5 * texts  # image i looks most like caption i+1, then caption i
    metrics = retrieval_recall(images, texts, ks=(1, 2))
    assert metrics["i2t_recall@1"] == 0.0 and metrics["i2t_recall@2"] == 1.0


def test_identical_captions_are_interchangeable():
    texts = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    images = torch.tensor([[0.9, 0.1], [1.0, 0.0], [0.1, 1.0]])  # images 0 and 1 each prefer the other's caption
    assert retrieval_recall(images, texts, ks=(1,))["i2t_recall@1"] == 1 / 3
    assert retrieval_recall(images, texts, torch.tensor([0, 0, 1]), ks=(1,))["i2t_recall@1"] == 1.0


def test_random_embeddings_are_near_chance_and_k_beyond_n_is_clipped():
    torch.manual_seed(0)
    metrics = retrieval_recall(torch.randn(400, 64), torch.randn(400, 64), ks=(10, 1000), chunk_size=64)
    assert abs(metrics["i2t_recall@10"] - 10 / 400) < 0.03
    assert metrics["t2i_recall@1000"] == 1.0
