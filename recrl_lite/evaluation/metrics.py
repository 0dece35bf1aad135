"""Recommendation metrics: session-level (chapter 1) and top-K ranking metrics (chapter 2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd


def catalogue_coverage(recommended: Sequence[Sequence[int]] | np.ndarray, n_items: int) -> float:
    """Fraction of the catalogue recommended at least once across all ``recommended`` lists."""
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    seen = np.zeros(n_items, dtype=bool)
    for row, items in enumerate(recommended):
        ids = np.asarray(items, dtype=int)
        if ids.size and (ids.min() < 0 or ids.max() >= n_items):
            bad = ids[(ids < 0) | (ids >= n_items)]
            raise ValueError(f"recommended[{row}] has item id(s) {bad[:5].tolist()} outside [0, {n_items - 1}] "
                             "(a negative id would silently count as the last items)")
        seen[ids] = True
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
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    if ranked.ndim != 2 or ranked.shape[1] < k:
        raise ValueError(f"ranked must be (n_users, >= {k}), got shape {ranked.shape}")
    if len(relevant) != ranked.shape[0]:
        raise ValueError(f"{len(relevant)} relevance sets for {ranked.shape[0]} ranked rows")
    if any(len(rel) == 0 for rel in relevant):
        raise ValueError("every user needs at least one relevant item; drop users with none first")
    top = ranked[:, :k]
    repeated = [u for u, row in enumerate(top) if len(set(row.tolist())) < k]
    if repeated:
        raise ValueError(f"ranked rows {repeated[:5]} repeat an item in their top {k}: a ranking lists each item "
                         "once (a repeat would be counted as a hit twice)")


class RankingUsers(NamedTuple):
    """One group of test users for top-K evaluation (chapter 2)."""

    users: np.ndarray
    """Row indices of the users in the click matrix."""
    relevant: list[set[int]]
    """For each user, the items clicked in the test period and not in training."""
    exclude: np.ndarray
    """Boolean mask, one row per user: the items clicked in training, kept out of the ranking."""


def split_test_users(train_clicks: np.ndarray, test: pd.DataFrame) -> dict[str, RankingUsers]:
    """Chapter 2's offline protocol: the ``"warm"`` and ``"cold"`` test users of a temporal split.

    ``train_clicks`` is the users x items click matrix of the training period
    (:func:`recrl_lite.models.click_matrix`) and ``test`` the later interactions, with
    ``user_index``, ``item_index`` and ``click`` columns (:func:`recrl_lite.data.prepare`). A user's
    relevant items are the *new* items they click in the test period; items they clicked in
    training are excluded from their list, so the metrics measure discovery, not repetition. Users
    with no training click are *cold*, the others *warm*; users with no new test click are left out.
    """
    missing = [c for c in ("user_index", "item_index", "click") if c not in test.columns]
    if missing:
        raise ValueError(f"test interactions lack column(s) {missing}; found {list(test.columns)}")
    clicks = np.asarray(train_clicks)
    if clicks.ndim != 2:
        raise ValueError(f"train_clicks must be a users x items matrix, got shape {clicks.shape}")
    clicked = test[test["click"] == 1]
    for column, size in (("user_index", clicks.shape[0]), ("item_index", clicks.shape[1])):
        out_of_range = clicked[(clicked[column] < 0) | (clicked[column] >= size)]
        if len(out_of_range):
            raise ValueError(f"{len(out_of_range)} test click(s) have {column} outside [0, {size - 1}] "
                             f"of the click matrix, e.g. {out_of_range[column].iloc[0]}")
    seen = clicks > 0
    groups: dict[str, tuple[list[int], list[set[int]]]] = {"warm": ([], []), "cold": ([], [])}
    for user, items in clicked.groupby("user_index")["item_index"].apply(set).items():
        new_items = {int(i) for i in items} - set(np.flatnonzero(seen[user]).tolist())
        if new_items:
            users, relevant = groups["warm" if seen[user].any() else "cold"]
            users.append(int(user))
            relevant.append(new_items)
    return {name: RankingUsers(np.array(users, dtype=int), relevant, seen[np.array(users, dtype=int)])
            for name, (users, relevant) in groups.items()}
