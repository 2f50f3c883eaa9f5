"""Image<->text retrieval recall@k over a set of image–caption pairs."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def retrieval_recall(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    caption_ids: torch.Tensor | None = None,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Recall@k of image->text and text->image retrieval, pair ``i`` being image ``i`` with caption ``i``.

    A query is a hit at ``k`` when one of its ``k`` most similar candidates carries the same caption as the query's
    own pair: identical captions (same ``caption_ids``) are interchangeable, so repeated captions such as "Panoramic
    radiograph" do not count as misses. ``k`` larger than the number of pairs is clipped (recall 1).

    Args:
        image_features: ``(N, D)`` image embeddings (normalised or not; cosine similarity is used).
        text_features: ``(N, D)`` caption embeddings, row ``i`` belonging to image ``i``.
        caption_ids: ``(N,)`` integer id of each pair's caption text; ``None`` treats every caption as distinct.
        ks: the cut-offs.
        chunk_size: number of query rows scored at once (bounds memory at ``chunk_size * N``).

    Returns:
        ``{"i2t_recall@k": ..., "t2i_recall@k": ...}`` for each ``k``, plus ``"mean_recall"`` over all of them.

    Example:
        >>> features = torch.eye(4)
        >>> retrieval_recall(features, features, ks=(1,))["i2t_recall@1"]
        1.0
    """
    if image_features.shape[0] != text_features.shape[0]:
        raise ValueError(f"{image_features.shape[0]} images but {text_features.shape[0]} captions")
    count = image_features.shape[0]
    if count == 0:
        raise ValueError("retrieval recall needs at least one image–caption pair")
    image_features = torch.nn.functional.normalize(image_features.float(), dim=-1)
    text_features = torch.nn.functional.normalize(text_features.float(), dim=-1)
    if caption_ids is None:
        ids = torch.arange(count, device=image_features.device)
    else:
        ids = caption_ids.to(device=image_features.device, dtype=torch.long)
    results: dict[str, float] = {}
    for direction, queries, candidates in (
        ("i2t", image_features, text_features),
        ("t2i", text_features, image_features),
    ):
        hits = _hits_at_k(queries, candidates, ids, ks, chunk_size)
        for k in ks:
            results[f"{direction}_recall@{k}"] = hits[k] / count
    results["mean_recall"] = sum(results.values()) / len(results)
    return results


def _hits_at_k(
    queries: torch.Tensor, candidates: torch.Tensor, ids: torch.Tensor, ks: Sequence[int], chunk_size: int
) -> dict[int, int]:
    top = min(max(ks), candidates.shape[0])
    hits = dict.fromkeys(ks, 0)
    for start in range(0, queries.shape[0], chunk_size):
        scores = queries[start : start + chunk_size] @ candidates.t()
        ranked = scores.topk(top, dim=1).indices
        matches = ids[ranked] == ids[start : start + chunk_size, None]
        for k in ks:
            hits[k] += int(matches[:, : min(k, top)].any(dim=1).sum())
    return hits
