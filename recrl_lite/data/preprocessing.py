"""Preprocessing done right (chapter 2; the article's version is erratum E13).

- ids become contiguous indices (for embedding tables), never scaled;
- categorical columns are one-hot encoded;
- numeric columns are standardised with statistics fitted on the training split only;
- the train/test split is temporal, so the model never sees the future.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recrl_lite.data.synthetic import Dataset
from recrl_lite.errors import check_columns, check_number, invalid, invalid_type


class IdIndex:
    """A bijection between public ids and contiguous indices 0..n-1 (sorted id order)."""

    def __init__(self, ids: Sequence[int] | np.ndarray | pd.Series, name: str = "id"):
        values = np.asarray(ids)
        unique, counts = np.unique(values, return_counts=True)
        if unique.size != values.size:
            raise invalid(name, unique[counts > 1][:5].tolist(), "unique ids to build an index",
                          why=f"{values.size - unique.size} repeat")
        self.ids = unique
        self.name = name

    def __len__(self) -> int:
        return int(self.ids.size)

    def index_of(self, ids: Sequence[int] | np.ndarray | pd.Series) -> np.ndarray:
        """Indices of ``ids``; raises ``KeyError`` naming any unknown id."""
        values = np.asarray(ids)
        pos = np.searchsorted(self.ids, values)
        pos_clipped = np.minimum(pos, self.ids.size - 1)
        unknown = self.ids[pos_clipped] != values
        if unknown.any():
            raise KeyError(f"{self.name}: unknown ids {values[unknown][:5].tolist()} ({int(unknown.sum())} in all)")
        return pos_clipped.astype(np.int64)

    def id_of(self, index: Sequence[int] | np.ndarray) -> np.ndarray:
        """Public ids of contiguous ``index`` values."""
        return self.ids[np.asarray(index, dtype=np.int64)]


def temporal_split(interactions: pd.DataFrame, test_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split at the timestamp below which ``1 - test_fraction`` of the interactions fall.

    ``timestamp`` must hold real numbers (the schema's seconds since the log began) or numpy
    datetimes, none missing: a string or bool column has no quantile, and a NaN would have no side.
    """
    if not isinstance(interactions, pd.DataFrame):
        raise invalid_type("interactions", interactions, "a pandas DataFrame")
    # validated only: the caller's value itself is used below, so valid splits stay bit-identical
    check_number("test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True)
    check_columns("interactions", interactions.columns, ["timestamp"])
    if len(interactions) < 2:
        raise invalid("len(interactions)", len(interactions), "at least 2 interactions (one on each side of the split)")
    column = "interactions column 'timestamp'"
    missing = interactions["timestamp"].isna().to_numpy()
    if missing.any():
        raise invalid(column, interactions["timestamp"], "no missing timestamps",
                      why=f"{int(missing.sum())} NaN entries, at rows {np.flatnonzero(missing)[:5].tolist()}")
    timestamps = interactions["timestamp"].to_numpy()
    real = np.issubdtype(timestamps.dtype, np.number) and not np.issubdtype(timestamps.dtype, np.complexfloating)
    if not (real or np.issubdtype(timestamps.dtype, np.datetime64)):  # bool is not np.number
        raise invalid_type(column, interactions["timestamp"], "real-number (or datetime64) timestamps",
                           why=f"found dtype {interactions['timestamp'].dtype}; the split cuts at a quantile of them")
    if real and np.isinf(timestamps).any():
        raise invalid(column, interactions["timestamp"], "finite timestamps",
                      why=f"{int(np.isinf(timestamps).sum())} infinite entries")
    cutoff = np.quantile(timestamps, 1.0 - test_fraction)
    before = interactions["timestamp"] < cutoff
    if not before.any():
        raise invalid(column, timestamps,
                      f"some timestamps earlier than the cut-off {f'{cutoff:g}' if real else cutoff}",
                      why=f"all {len(interactions)} share the earliest times; the training period would be empty")
    return interactions[before].reset_index(drop=True), interactions[~before].reset_index(drop=True)


class FeatureEncoder:
    """One-hot categoricals and standardised numerics, fitted once on training rows.

    Categories unseen at fit time encode as all zeros (and are counted in ``unseen_``), rather than
    failing or silently shifting columns.
    """

    def __init__(self, categorical: Sequence[str] = (), numeric: Sequence[str] = ()):
        self.categorical = list(categorical)
        self.numeric = list(numeric)
        self.categories_: dict[str, list[str]] = {}
        self.mean_: dict[str, float] = {}
        self.std_: dict[str, float] = {}
        self.unseen_: dict[str, int] = {}

    def _check(self, frame: pd.DataFrame) -> None:
        check_columns("frame", frame.columns, self.categorical + self.numeric)

    def fit(self, frame: pd.DataFrame) -> FeatureEncoder:
        self._check(frame)
        if len(frame) == 0:
            raise invalid("len(frame)", len(frame), "at least one row",
                          why="FeatureEncoder.fit fits on the training rows")
        for col in self.categorical:
            self.categories_[col] = sorted(frame[col].astype(str).unique().tolist())
        for col in self.numeric:
            values = frame[col].to_numpy(dtype=float)
            std = float(values.std())
            self.mean_[col] = float(values.mean())
            self.std_[col] = std if std > 0 else 1.0
        return self

    @property
    def feature_names(self) -> list[str]:
        if not self.mean_ and not self.categories_:
            raise RuntimeError("FeatureEncoder is not fitted; call fit() on the training rows first")
        names = list(self.numeric)
        for col in self.categorical:
            names += [f"{col}={value}" for value in self.categories_[col]]
        return names

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        names = self.feature_names
        self._check(frame)
        out = np.zeros((len(frame), len(names)), dtype=np.float32)
        for j, col in enumerate(self.numeric):
            out[:, j] = (frame[col].to_numpy(dtype=float) - self.mean_[col]) / self.std_[col]
        offset = len(self.numeric)
        for col in self.categorical:
            cats = self.categories_[col]
            codes = pd.Index(cats).get_indexer(frame[col].astype(str))
            seen = codes >= 0
            self.unseen_[col] = int((~seen).sum())
            out[np.flatnonzero(seen), offset + codes[seen]] = 1.0
            offset += len(cats)
        return out

    def fit_transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self.fit(frame).transform(frame)


@dataclass
class PreparedData:
    """Model-ready arrays from a :class:`Dataset` (chapter 2 and chapter 5)."""

    train: pd.DataFrame  # interactions with user_index and item_index columns
    test: pd.DataFrame
    user_index: IdIndex
    item_index: IdIndex
    user_features: np.ndarray  # (n_users, f_u), row = user index
    item_features: np.ndarray  # (n_items, f_i), row = item index
    user_encoder: FeatureEncoder
    item_encoder: FeatureEncoder


def prepare(dataset: Dataset, test_fraction: float = 0.2) -> PreparedData:
    """Index ids, split by time, and encode user/item features fitted on the training split.

    User statistics are fitted on users who appear in the training split; item statistics on the
    catalogue rows of items that appear there.
    """
    user_index = IdIndex(dataset.users["user_id"], "user_id")
    item_index = IdIndex(dataset.items["item_id"], "item_id")
    train, test = temporal_split(dataset.interactions, test_fraction)
    for part in (train, test):
        part["user_index"] = user_index.index_of(part["user_id"])
        part["item_index"] = item_index.index_of(part["item_id"])
    users = dataset.users.set_index("user_id").loc[user_index.ids].reset_index()
    items = dataset.items.set_index("item_id").loc[item_index.ids].reset_index()
    user_encoder = FeatureEncoder(categorical=["gender", "location"], numeric=["age"])
    item_encoder = FeatureEncoder(categorical=["category"], numeric=["price"])
    user_encoder.fit(users[users["user_id"].isin(train["user_id"])])
    item_encoder.fit(items[items["item_id"].isin(train["item_id"])])
    return PreparedData(
        train=train,
        test=test,
        user_index=user_index,
        item_index=item_index,
        user_features=user_encoder.transform(users),
        item_features=item_encoder.transform(items),
        user_encoder=user_encoder,
        item_encoder=item_encoder,
    )
