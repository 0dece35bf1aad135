"""Recommendation metrics: session-level (chapter 1) and top-K ranking metrics (chapter 2)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def catalogue_coverage(recommended: Sequence[Sequence[int]] | np.ndarray, n_items: int) -> float:
    """Fraction of the catalogue recommended at least once across all ``recommended`` lists."""
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    seen = np.zeros(n_items, dtype=bool)
    for items in recommended:
        seen[np.asarray(items, dtype=int)] = True
    return float(seen.mean())


def category_diversity(categories: Sequence[int] | np.ndarray, n_categories: int) -> float:
    """Distinct categories among a session's recommendations, over the most that were possible.

    1.0 means every recommendation (up to ``n_categories`` of them) came from a new category.
    """
    categories = np.asarray(categories, dtype=int)
    if categories.size == 0:
        return float("nan")
    return len(np.unique(categories)) / min(categories.size, n_categories)


def hit_rate_at_k(ranked: np.ndarray, relevant: Sequence[set[int]], k: int) -> float:
    """HR@K: fraction of users with at least one relevant item in their top K.

    ``ranked`` is (n_users, >= K) item indices, best first; ``relevant[u]`` the held-out items.
    """
    _check_ranked(ranked, relevant, k)
    hits = [bool(rel & set(row[:k].tolist())) for row, rel in zip(ranked, relevant)]
    return float(np.mean(hits))


def ndcg_at_k(ranked: np.ndarray, relevant: Sequence[set[int]], k: int) -> float:
    r"""NDCG@K with binary relevance: :math:`\mathrm{DCG}/\mathrm{IDCG}`, :math:`\mathrm{DCG}=\sum_{r=1}^K \mathrm{rel}_r/\log_2(r+1)`."""
    _check_ranked(ranked, relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    scores = []
    for row, rel in zip(ranked, relevant):
        gains = np.array([item in rel for item in row[:k].tolist()], dtype=float)
        ideal = discounts[: min(len(rel), k)].sum()
        scores.append(float(gains @ discounts[: gains.size]) / ideal)
    return float(np.mean(scores))


def _check_ranked(ranked: np.ndarray, relevant: Sequence[set[int]], k: int) -> None:
    if ranked.ndim != 2 or ranked.shape[1] < k:
        raise ValueError(f"ranked must be (n_users, >= {k}), got shape {ranked.shape}")
    if len(relevant) != ranked.shape[0]:
        raise ValueError(f"{len(relevant)} relevance sets for {ranked.shape[0]} ranked rows")
    if any(len(rel) == 0 for rel in relevant):
        raise ValueError("every user needs at least one relevant item; drop users with none first")
