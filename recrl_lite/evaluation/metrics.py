"""Recommendation metrics: session-level (chapter 1) and top-K ranking metrics (chapter 2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from recrl_lite.errors import check_columns, check_int, invalid, invalid_type


def catalogue_coverage(recommended: Sequence[Sequence[int]] | np.ndarray, n_items: int) -> float:
    """Fraction of the catalogue recommended at least once across all ``recommended`` lists."""
    n_items = check_int("n_items", n_items, low=1)
    seen = np.zeros(n_items, dtype=bool)
    for row, items in enumerate(recommended):
        try:
            ids = np.asarray(items)
        except ValueError:  # a ragged row, such as [0, [1, 2]]
            raise invalid(f"recommended[{row}]", items, "a list of integer item ids") from None
        if ids.size == 0:  # an empty list covers nothing (and np.asarray([]) is float)
            continue
        if not np.issubdtype(ids.dtype, np.integer):  # casting would count 1.5 as item 1; bools are not ids
            raise invalid(f"recommended[{row}]", items, f"integer item ids in [0, {n_items - 1}]",
                          why=f"found dtype {ids.dtype}")
        if ids.min() < 0 or ids.max() >= n_items:
            bad = ids[(ids < 0) | (ids >= n_items)]
            raise invalid(f"recommended[{row}]", items, f"item ids in [0, {n_items - 1}]",
                          why=f"ids {bad[:5].tolist()} are outside; "
                              "a negative id would silently count as the last items")
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
    ranked = _check_ranked(ranked, relevant, k)
    hits = [bool(rel & set(row[:k].tolist())) for row, rel in zip(ranked, relevant)]
    return float(np.mean(hits))


def ndcg_at_k(ranked: np.ndarray, relevant: Sequence[set[int]], k: int) -> float:
    r"""NDCG@K with binary relevance: :math:`\mathrm{DCG}/\mathrm{IDCG}`, :math:`\mathrm{DCG}=\sum_{r=1}^K \mathrm{rel}_r/\log_2(r+1)`."""
    ranked = _check_ranked(ranked, relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    scores = []
    for row, rel in zip(ranked, relevant):
        gains = np.array([item in rel for item in row[:k].tolist()], dtype=float)
        ideal = discounts[: min(len(rel), k)].sum()
        scores.append(float(gains @ discounts[: gains.size]) / ideal)
    return float(np.mean(scores))


def _check_ranked(ranked: np.ndarray, relevant: Sequence[set[int]], k: int) -> np.ndarray:
    """``ranked`` itself, once it is a non-empty (n_users, >= k) integer array matching ``relevant``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise invalid("k", k, "an int in [1, inf)")
    if not isinstance(ranked, np.ndarray):
        raise invalid_type("ranked", ranked, f"an (n_users, >= {k}) numpy array of integer item indices",
                           why="the output of top_k or a model's recommend")
    if ranked.ndim != 2 or ranked.shape[1] < k:
        raise invalid("ranked", ranked, f"an (n_users, >= {k}) array of item indices")
    if not np.issubdtype(ranked.dtype, np.integer):  # 3.5 or NaN would match no item and score 0 silently
        raise invalid("ranked", ranked, "integer item indices", why=f"found dtype {ranked.dtype}")
    if ranked.shape[0] == 0:  # the mean over no users would be NaN
        raise invalid("ranked", ranked, "at least one user row")
    if len(relevant) != ranked.shape[0]:
        raise invalid("relevant", relevant, f"{ranked.shape[0]} relevance sets, one per ranked row",
                      why=f"got {len(relevant)}")
    empty = [u for u, rel in enumerate(relevant) if len(rel) == 0]
    if empty:
        raise invalid("relevant", relevant, "at least one relevant item per user",
                      why=f"rows {empty[:5]} are empty; drop users with none first")
    top = ranked[:, :k]
    repeated = [u for u, row in enumerate(top) if len(set(row.tolist())) < k]
    if repeated:
        raise invalid("ranked", top[repeated[:3]].tolist(), f"{k} distinct items in each row's top {k}",
                      why=f"rows {repeated[:5]} repeat an item; a repeat would be counted as a hit twice")
    return ranked


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
    check_columns("test", test.columns, ("user_index", "item_index", "click"))
    clicks = np.asarray(train_clicks)
    if clicks.ndim != 2:
        raise invalid("train_clicks", clicks, "a 2-D users x items click matrix")
    clicked = test[test["click"] == 1]
    for column, size in (("user_index", clicks.shape[0]), ("item_index", clicks.shape[1])):
        out_of_range = clicked[(clicked[column] < 0) | (clicked[column] >= size)]
        if len(out_of_range):
            raise invalid(f"test column {column!r}", out_of_range[column].head(5).tolist(),
                          f"indices in [0, {size - 1}] of the click matrix",
                          why=f"{len(out_of_range)} test clicks outside it, at index {out_of_range.index[:5].tolist()}")
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
