r"""Classic (non-RL) recommenders on an implicit click matrix, introduced in chapter 2.

Every model here is a few lines of vectorised numpy over a dense user x item matrix ``X``
(``X[u, i] = 1`` if user ``u`` clicked item ``i`` in the training period). Dense is deliberate: the
book's catalogue has ~100 items, and dense matrices keep the code as short as the equations.

All models share one interface::

    model.fit(X, user_features=..., item_features=...)   # features only where the model uses them
    scores = model.score(user_indices)                   # (len(user_indices), n_items), higher = better
    ranked = top_k(scores, k, exclude=...)               # (len(user_indices), k) distinct item indices

The taxonomy follows chapter 2 (and erratum E2 of the source article):

- memory-based collaborative filtering: :class:`UserKNN` (Resnick et al., 1994; Sarwar et al., 2001)
  and :class:`ItemKNN` (Sarwar, Karypis, Konstan & Riedl, WWW 2001);
- model-based collaborative filtering: :class:`MatrixFactorization`, regularised alternating least
  squares with biases (Koren, Bell & Volinsky, IEEE Computer 2009), and :class:`PureSVD`, a
  truncated SVD of the click matrix (Cremonesi, Koren & Turrin, RecSys 2010);
- :class:`ContentBased`: a user profile built from the features of clicked items;
- :class:`Hybrid`: a weighted blend of normalised MF and content scores that also serves users with no
  history, through their demographic features;
- :class:`Popularity`: the non-personalised baseline every recommender must beat.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from recrl_lite.errors import check_finite, check_int, invalid

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = [
    "ContentBased",
    "Hybrid",
    "ItemKNN",
    "MatrixFactorization",
    "Popularity",
    "PureSVD",
    "Recommender",
    "UserKNN",
    "click_matrix",
    "cosine_similarity",
    "top_k",
]


# ----------------------------------------------------------------------------------------- helpers
def click_matrix(
    interactions: pd.DataFrame,
    n_users: int,
    n_items: int,
    *,
    binary: bool = True,
    value: str = "click",
) -> FloatArray:
    """The dense user x item matrix of ``value`` (clicks by default) from prepared interactions.

    ``interactions`` needs ``user_index`` and ``item_index`` columns (as produced by
    :func:`recrl_lite.data.prepare`) and the ``value`` column. Repeated (user, item) pairs are summed;
    ``binary=True`` then clips the counts to 0/1. Shown-but-not-clicked rows contribute 0.
    Introduced in chapter 2.
    """
    required = ["user_index", "item_index", value]
    missing = [c for c in required if c not in interactions.columns]
    if missing:
        raise invalid("interactions columns", list(interactions.columns), f"the columns {required}",
                      why=f"missing {missing}; prepare the dataset with recrl_lite.data.prepare first")
    n_users = check_int("n_users", n_users, low=1)
    n_items = check_int("n_items", n_items, low=1)
    users = interactions["user_index"].to_numpy()
    items = interactions["item_index"].to_numpy()
    for name, idx, n in (("user_index", users, n_users), ("item_index", items, n_items)):
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = idx[(idx < 0) | (idx >= n)]
            raise invalid(f"interactions {name} values", bad[:5].tolist(), f"indices in [0, {n - 1}]",
                          why=f"{bad.size} rows outside")
    values = interactions[value].to_numpy(dtype=float)
    matrix = np.zeros((n_users, n_items))
    np.add.at(matrix, (users, items), values)
    if binary:
        matrix = (matrix > 0).astype(float)
    return matrix


def cosine_similarity(a: FloatArray, b: FloatArray) -> FloatArray:
    """Row-wise cosine similarity between ``a`` (n, d) and ``b`` (m, d); all-zero rows give 0.

    Introduced in chapter 2 (the similarity of user-based and item-based CF).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim != 2:
        raise invalid("a", a, "an (n, d) array")
    if b.ndim != 2 or b.shape[1] != a.shape[1]:
        raise invalid("b", b, f"an (m, d) array with the width of a, d = {a.shape[1]}")
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    return (a / np.where(na > 0, na, 1.0)) @ (b / np.where(nb > 0, nb, 1.0)).T


def top_k(scores: npt.ArrayLike, k: int, exclude: npt.ArrayLike | None = None) -> IntArray:
    """The ``k`` highest-scoring distinct item indices per row, best first.

    ``exclude`` is an optional boolean mask of the same shape as ``scores`` (e.g. items already
    consumed); excluded items are never returned, so ``k`` may not exceed the fewest allowed items of
    any row. Ties are broken by the lower item index (a stable sort), so results are deterministic.
    Introduced in chapter 2.
    """
    s = np.array(scores, dtype=float, ndmin=1)
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim != 2:
        raise invalid("scores", s, "an (n_items,) or (n_users, n_items) array")
    if np.isnan(s).any():
        raise invalid("scores", s, "no NaN", why=f"{int(np.isnan(s).sum())} NaN entries")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise invalid("k", k, "a positive int")
    if exclude is not None:
        mask = np.asarray(exclude)
        if mask.shape != s.shape or mask.dtype != bool:
            raise invalid("exclude", mask, f"a boolean mask of shape {s.shape}")
        allowed = (~mask).sum(axis=1).min()
        if k > allowed:
            raise invalid("k", k, f"at most {allowed}", why=f"some row has only {allowed} items left after exclusion")
        s = np.where(mask, -np.inf, s)
    if k > s.shape[1]:
        raise invalid("k", k, f"at most the number of items, {s.shape[1]}")
    return np.argsort(-s, axis=1, kind="stable")[:, :k].astype(np.int64)


def _check_matrix(x: npt.ArrayLike, name: str = "X") -> FloatArray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 2:
        raise invalid(name, arr, "a 2-D (n_users, n_items) matrix")
    if arr.shape[0] < 1 or arr.shape[1] < 2:
        raise invalid(name, arr, "an (n_users, n_items) matrix with at least 1 user and 2 items")
    check_finite(name, arr)
    return arr


def _check_features(f: npt.ArrayLike | None, rows: int, name: str, model: str) -> FloatArray:
    if f is None:
        raise invalid(name, f, f"a ({rows}, n_features) array", why=f"{model} needs {name}")
    arr = np.asarray(f, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != rows:
        raise invalid(name, arr, f"shape ({rows}, n_features)")
    check_finite(name, arr)
    return arr


def _zscore_rows(s: FloatArray) -> FloatArray:
    """Standardise each row to mean 0, std 1 (a constant row becomes all zeros)."""
    std = s.std(axis=1, keepdims=True)
    return (s - s.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)


# ----------------------------------------------------------------------------------------- base
class Recommender:
    """Common interface: ``fit(X, ...)`` then ``score(user_indices)`` and ``recommend``."""

    name = "recommender"

    def __init__(self) -> None:
        self.n_users_: int | None = None
        self.n_items_: int | None = None

    def fit(self, X: npt.ArrayLike, **features: Any) -> Recommender:  # noqa: N803
        raise NotImplementedError

    def _scores(self, users: IntArray) -> FloatArray:
        raise NotImplementedError

    def _check_users(self, user_indices: npt.ArrayLike) -> IntArray:
        if self.n_users_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")
        users = np.array(user_indices, ndmin=1)
        if users.ndim != 1:
            raise invalid("user_indices", users, "a 1-D array of user indices")
        if users.size and not np.issubdtype(users.dtype, np.integer):
            raise invalid("user_indices", users, "integer user indices")
        users = users.astype(np.int64)
        bad = users[(users < 0) | (users >= self.n_users_)]
        if bad.size:
            raise invalid("user_indices", bad[:5].tolist(), f"known users in [0, {self.n_users_ - 1}]",
                          why=f"the model was fitted on {self.n_users_} users")
        return users

    def score(self, user_indices: npt.ArrayLike) -> FloatArray:
        """Scores of every item for each user, shape ``(len(user_indices), n_items)``."""
        return self._scores(self._check_users(user_indices))

    def recommend(self, user_indices: npt.ArrayLike, k: int = 10, exclude: npt.ArrayLike | None = None) -> IntArray:
        """Top-``k`` distinct items per user (see :func:`top_k`)."""
        return top_k(self.score(user_indices), k, exclude)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Popularity(Recommender):
    """Everyone gets the items with the most clicks in training: the baseline to beat.

    Introduced in chapter 2.
    """

    name = "popularity"

    def fit(self, X: npt.ArrayLike, **features: Any) -> Popularity:  # noqa: N803
        x = _check_matrix(X)
        self.n_users_, self.n_items_ = x.shape
        self.counts_ = x.sum(axis=0)
        return self

    def _scores(self, users: IntArray) -> FloatArray:
        return np.tile(self.counts_, (users.size, 1))


class UserKNN(Recommender):
    r"""User-based collaborative filtering with cosine similarity over the ``k`` nearest neighbours.

    :math:`\hat r_{ui} = \sum_{v \in N_k(u)} s_{uv} x_{vi} \,/\, \sum_{v \in N_k(u)} |s_{uv}|`, the
    weighted-sum prediction of Resnick et al. (CSCW 1994) as used by Sarwar et al. (WWW 2001) as
    the user-based baseline. Memory-based: ``fit`` only stores the matrix. Introduced in chapter 2.
    """

    name = "user-CF"

    def __init__(self, k: int = 50):
        super().__init__()
        if k < 1:
            raise invalid("k", k, "an int >= 1")
        self.k = k

    def fit(self, X: npt.ArrayLike, **features: Any) -> UserKNN:  # noqa: N803
        x = _check_matrix(X)
        self.n_users_, self.n_items_ = x.shape
        self.X_ = x
        return self

    def _scores(self, users: IntArray) -> FloatArray:
        sim = cosine_similarity(self.X_[users], self.X_)
        sim[np.arange(users.size), users] = 0.0  # a user is not its own neighbour
        n_users = sim.shape[1]
        k = min(self.k, n_users - 1) if n_users > 1 else 0
        if k < sim.shape[1]:
            # zero out everything but the k largest similarities of each row
            cut = np.argpartition(-sim, k, axis=1)[:, k:]
            np.put_along_axis(sim, cut, 0.0, axis=1)
        norm = np.abs(sim).sum(axis=1, keepdims=True)
        return (sim @ self.X_) / np.where(norm > 0, norm, 1.0)


class ItemKNN(Recommender):
    r"""Item-based collaborative filtering (Sarwar, Karypis, Konstan & Riedl, WWW 2001).

    The cosine similarity of item columns, :math:`s_{ij} = \cos(x_{\cdot i}, x_{\cdot j})`, with the
    diagonal set to 0 and, optionally, only each item's ``k`` most similar items kept. A user's score
    for item :math:`i` sums the similarities to the items they clicked,
    :math:`\hat r_{ui} = \sum_j x_{uj} s_{ji}`, i.e. ``scores = X @ S`` (the top-N form of Deshpande &
    Karypis, 2004; ``normalize=True`` divides by :math:`\sum_j x_{uj}|s_{ji}|` as in Sarwar's weighted
    sum). Introduced in chapter 2.
    """

    name = "item-CF"

    def __init__(self, k: int | None = None, normalize: bool = False):
        super().__init__()
        if k is not None and k < 1:
            raise invalid("k", k, "an int >= 1 or None")
        self.k = k
        self.normalize = normalize

    def fit(self, X: npt.ArrayLike, **features: Any) -> ItemKNN:  # noqa: N803
        x = _check_matrix(X)
        self.n_users_, self.n_items_ = x.shape
        sim = cosine_similarity(x.T, x.T)
        np.fill_diagonal(sim, 0.0)
        if self.k is not None and self.k < self.n_items_:
            # keep each item's k nearest neighbours (per column: s_{ji} for the j's most similar to i);
            # a stable sort breaks ties by item id on every machine (argpartition's tie order
            # depends on numpy's version and on the CPU's SIMD code path)
            cut = np.argsort(-sim, axis=0, kind="stable")[self.k:, :]
            np.put_along_axis(sim, cut, 0.0, axis=0)
        self.X_ = x
        self.similarity_ = sim
        return self

    def _scores(self, users: IntArray) -> FloatArray:
        x = self.X_[users]
        scores = x @ self.similarity_
        if self.normalize:
            norm = np.abs(x) @ np.abs(self.similarity_)
            scores = scores / np.where(norm > 0, norm, 1.0)
        return scores


class MatrixFactorization(Recommender):
    r"""Matrix factorisation with biases, fitted by regularised alternating least squares.

    Koren, Bell & Volinsky (IEEE Computer 2009): :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i`,
    minimising the weighted, regularised squared error

    .. math:: L = \sum_{u,i} w_{ui} (x_{ui} - \hat r_{ui})^2
                  + \lambda \big(\lVert P\rVert^2 + \lVert Q\rVert^2 + \lVert b_U\rVert^2 + \lVert b_I\rVert^2\big).

    With ``weights=None`` every cell counts (the implicit-feedback reading: an unclicked cell is a
    0, as in PureSVD, Cremonesi et al., RecSys 2010). A 0/1 ``weights`` mask fits only observed
    cells (matrix completion). Each half-step solves one ridge regression per user (or item) in
    closed form, so ``loss_history_`` never increases. The defaults (4 factors, ``reg=10``) were
    chosen on a dataset of the book's simulator that no chapter evaluates on (seed 100).
    Introduced in chapter 2.
    """

    name = "MF (ALS)"

    def __init__(self, n_factors: int = 4, reg: float = 10.0, n_iters: int = 15, seed: int = 0):
        super().__init__()
        if n_factors < 1:
            raise invalid("n_factors", n_factors, "an int >= 1")
        if reg < 0:
            raise invalid("reg", reg, "a number >= 0")
        if n_iters < 1:
            raise invalid("n_iters", n_iters, "an int >= 1")
        self.n_factors = n_factors
        self.reg = reg
        self.n_iters = n_iters
        self.seed = seed

    @staticmethod
    def _solve(design: FloatArray, target: FloatArray, weights: FloatArray | None, reg: float) -> FloatArray:
        """Row-wise ridge: argmin_b sum_j w_j (t_j - design_j . b)^2 + reg |b|^2, for every target row."""
        r = design.shape[1]
        ridge = reg * np.eye(r)
        if weights is None:
            gram = design.T @ design + ridge
            return cast(FloatArray, np.linalg.solve(gram, (target @ design).T).T)
        # gram[n] = sum_m w_nm d_m d_m^T, as one matrix product with the flattened outer products
        outer = (design[:, :, None] * design[:, None, :]).reshape(design.shape[0], r * r)
        gram = (weights @ outer).reshape(-1, r, r) + ridge
        rhs = (weights * target) @ design
        return cast(FloatArray, np.linalg.solve(gram, rhs[..., None])[..., 0])

    def _loss(self, x: FloatArray, w: FloatArray | None) -> float:
        err = x - self._predict_all()
        sq = err**2 if w is None else w * err**2
        penalty = sum(float((a**2).sum()) for a in (self.P_, self.Q_, self.user_bias_, self.item_bias_))
        return float(sq.sum()) + self.reg * penalty

    def _predict_all(self) -> FloatArray:
        return self.mu_ + self.user_bias_[:, None] + self.item_bias_[None, :] + self.P_ @ self.Q_.T

    def fit(self, X: npt.ArrayLike, weights: npt.ArrayLike | None = None, **features: Any) -> MatrixFactorization:  # noqa: N803
        x = _check_matrix(X)
        w = None
        if weights is not None:
            w = np.asarray(weights, dtype=float)
            if w.shape != x.shape:
                raise invalid("weights", w, f"the shape of X, {x.shape}")
            if not np.isfinite(w).all() or (w < 0).any():
                raise invalid("weights", w, "finite, non-negative weights")
            if w.sum() == 0:
                raise invalid("weights", w, "a positive weight somewhere", why="all zero: nothing to fit")
        n_users, n_items = x.shape
        self.n_users_, self.n_items_ = n_users, n_items
        rng = np.random.default_rng(self.seed)
        f = self.n_factors
        self.mu_ = float(x.mean()) if w is None else float((w * x).sum() / w.sum())
        self.P_ = rng.normal(0.0, 0.1, (n_users, f))
        self.Q_ = rng.normal(0.0, 0.1, (n_items, f))
        self.user_bias_ = np.zeros(n_users)
        self.item_bias_ = np.zeros(n_items)
        self.loss_history_ = [self._loss(x, w)]
        ones_i, ones_u = np.ones((n_items, 1)), np.ones((n_users, 1))
        for _ in range(self.n_iters):
            # users: regress x_u - mu - b_i on [q_i, 1] to get [p_u, b_u]
            sol = self._solve(np.hstack([self.Q_, ones_i]), x - self.mu_ - self.item_bias_[None, :], w, self.reg)
            self.P_, self.user_bias_ = sol[:, :f], sol[:, f]
            # items: regress x_i - mu - b_u on [p_u, 1] to get [q_i, b_i]
            sol = self._solve(np.hstack([self.P_, ones_u]), (x - self.mu_ - self.user_bias_[:, None]).T,
                              None if w is None else w.T, self.reg)
            self.Q_, self.item_bias_ = sol[:, :f], sol[:, f]
            self.loss_history_.append(self._loss(x, w))
        return self

    def user_scores(self, P: FloatArray, user_bias: FloatArray) -> FloatArray:  # noqa: N803
        """:math:`\\hat r` for arbitrary user factors (used by :class:`Hybrid` for cold users)."""
        return self.mu_ + user_bias[:, None] + self.item_bias_[None, :] + P @ self.Q_.T

    def _scores(self, users: IntArray) -> FloatArray:
        return self.user_scores(self.P_[users], self.user_bias_[users])


class PureSVD(Recommender):
    r"""PureSVD (Cremonesi, Koren & Turrin, RecSys 2010): a truncated SVD of the click matrix.

    Missing entries are zeros, not unknowns: the whole 0/1 matrix is factorised,
    :math:`X \approx U_f \Sigma_f Q_f^\top`, its best rank-:math:`f` approximation in the Frobenius
    norm (Eckart-Young). The paper's scoring rule is :math:`\hat r_{ui} = r_u\, Q_f\, q_i^\top`: a
    user's row of clicks projected on the top-:math:`f` right singular vectors, so
    ``scores = X[u] @ Q @ Q.T``, which equals row :math:`u` of :math:`U_f \Sigma_f Q_f^\top` because
    :math:`X Q_f = U_f \Sigma_f`. No biases, no regularisation and no fitting loop: the paper's point is
    that this plain model, which is poor at predicting ratings, ranks better than models trained to
    minimise the error on observed entries only (chapter 2 measures it on the book's data).
    ``n_factors`` is :math:`f`; 4, as for :class:`MatrixFactorization`. Introduced in chapter 2.
    """

    name = "PureSVD"

    def __init__(self, n_factors: int = 4):
        super().__init__()
        if not isinstance(n_factors, (int, np.integer)) or n_factors < 1:
            raise invalid("n_factors", n_factors, "a positive int")
        self.n_factors = int(n_factors)

    def fit(self, X: npt.ArrayLike, **features: Any) -> PureSVD:  # noqa: N803
        x = _check_matrix(X)
        if self.n_factors > min(x.shape):
            raise invalid("n_factors", self.n_factors, f"at most min{x.shape} = {min(x.shape)}",
                          why="the rank bound of X")
        self.n_users_, self.n_items_ = x.shape
        # the right singular vectors of X are the eigenvectors of the small n_items x n_items
        # matrix X^T X, and its eigenvalues the squared singular values (ascending from eigh)
        eigenvalues, eigenvectors = np.linalg.eigh(x.T @ x)
        top = np.argsort(-eigenvalues, kind="stable")[: self.n_factors]
        self.singular_values_ = np.sqrt(np.maximum(eigenvalues[top], 0.0))
        self.Q_ = eigenvectors[:, top]  # (n_items, f): the top right singular vectors
        self.X_ = x
        return self

    def _scores(self, users: IntArray) -> FloatArray:
        return cast(FloatArray, (self.X_[users] @ self.Q_) @ self.Q_.T)


class ContentBased(Recommender):
    r"""Content-based filtering: a user profile from the features of the items they clicked.

    :math:`\text{profile}_u = \sum_i x_{ui} f_i / \sum_i x_{ui}` and
    :math:`\hat r_{ui} = \cos(\text{profile}_u, f_i)` (the vector-space model of content-based
    recommendation; Pazzani & Billsus, 2007). Item features are standardised column-wise first, so
    that no feature dominates by its scale. A user without clicks has a zero profile and scores 0
    everywhere. Introduced in chapter 2.
    """

    name = "content"

    def fit(self, X: npt.ArrayLike, item_features: npt.ArrayLike | None = None, **features: Any) -> ContentBased:  # noqa: N803
        x = _check_matrix(X)
        f = _check_features(item_features, x.shape[1], "item_features", type(self).__name__)
        self.n_users_, self.n_items_ = x.shape
        std = f.std(axis=0)
        self.item_features_ = (f - f.mean(axis=0)) / np.where(std > 0, std, 1.0)
        counts = x.sum(axis=1, keepdims=True)
        self.profiles_ = (x @ self.item_features_) / np.where(counts > 0, counts, 1.0)
        return self

    def profile_scores(self, profiles: FloatArray) -> FloatArray:
        """Scores for arbitrary profiles (used by :class:`Hybrid` for cold users)."""
        return cosine_similarity(profiles, self.item_features_)

    def _scores(self, users: IntArray) -> FloatArray:
        return self.profile_scores(self.profiles_[users])


class Hybrid(Recommender):
    r"""A weighted hybrid (Burke, 2002): :math:`\alpha\, z(\hat r^{MF}_u) + (1-\alpha)\, z(\hat r^{content}_u)`.

    ``z`` standardises each user's score row, so the two scales are comparable. For a user with no
    clicks in ``X`` (cold start) neither component knows anything, so their MF factors and bias and
    their content profile are predicted from their demographic ``user_features`` by ridge regressions
    fitted on the users who do have clicks. MF is :class:`MatrixFactorization` (Koren, Bell &
    Volinsky, 2009). Introduced in chapter 2.
    """

    name = "hybrid"

    def __init__(self, alpha: float = 0.8, mf: MatrixFactorization | None = None, demographic_reg: float = 1.0):
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise invalid("alpha", alpha, "a number in [0, 1]")
        self.alpha = alpha
        self.mf = mf if mf is not None else MatrixFactorization()
        self.content = ContentBased()
        self.demographic_reg = demographic_reg

    def fit(
        self,
        X: npt.ArrayLike,  # noqa: N803
        user_features: npt.ArrayLike | None = None,
        item_features: npt.ArrayLike | None = None,
        **features: Any,
    ) -> Hybrid:
        x = _check_matrix(X)
        u = _check_features(user_features, x.shape[0], "user_features", type(self).__name__)
        self.n_users_, self.n_items_ = x.shape
        self.mf.fit(x)
        self.content.fit(x, item_features=item_features)
        self.cold_ = x.sum(axis=1) == 0
        warm = ~self.cold_
        if not warm.any():
            raise invalid("X", x, "at least one user with clicks",
                          why="Hybrid learns the demographic map from the users who have clicks")
        design = np.hstack([u, np.ones((u.shape[0], 1))])
        targets = np.hstack([self.mf.P_, self.mf.user_bias_[:, None], self.content.profiles_])
        self.demographic_map_ = MatrixFactorization._solve(
            design[warm], targets[warm].T, None, self.demographic_reg
        ).T  # (n_user_features + 1, n_targets)
        self.user_design_ = design
        return self

    def _scores(self, users: IntArray) -> FloatArray:
        f = self.mf.n_factors
        mf_scores = self.mf.score(users)
        content_scores = self.content.score(users)
        cold = self.cold_[users]
        if cold.any():
            pred = self.user_design_[users[cold]] @ self.demographic_map_
            mf_scores[cold] = self.mf.user_scores(pred[:, :f], pred[:, f])
            content_scores[cold] = self.content.profile_scores(pred[:, f + 1:])
        return self.alpha * _zscore_rows(mf_scores) + (1.0 - self.alpha) * _zscore_rows(content_scores)
