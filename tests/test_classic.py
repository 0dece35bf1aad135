"""Classic recommenders of chapter 2 (recrl_lite.models.classic)."""

import math

import numpy as np
import pandas as pd
import pytest

from recrl_lite.evaluation import ndcg_at_k
from recrl_lite.models import (
    ContentBased,
    Hybrid,
    ItemKNN,
    MatrixFactorization,
    Popularity,
    PureSVD,
    UserKNN,
    click_matrix,
    cosine_similarity,
    top_k,
)

# items:      i0 i1 i2 i3
HAND = np.array([
    [1, 1, 0, 0],  # u0
    [1, 1, 0, 0],  # u1
    [0, 1, 1, 0],  # u2
    [0, 0, 1, 1],  # u3
], dtype=float)


# ------------------------------------------------------------------------------- click matrix
def test_click_matrix_counts_and_binarises():
    inter = pd.DataFrame({
        "user_index": [0, 0, 0, 1, 2],
        "item_index": [1, 1, 2, 0, 2],
        "click": [1, 1, 0, 1, 0],
    })
    counts = click_matrix(inter, 3, 3, binary=False)
    np.testing.assert_array_equal(counts, [[0, 2, 0], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(click_matrix(inter, 3, 3), [[0, 1, 0], [1, 0, 0], [0, 0, 0]])


def test_click_matrix_rejects_bad_input():
    inter = pd.DataFrame({"user_index": [0, 5], "item_index": [0, 1], "click": [1, 1]})
    with pytest.raises(ValueError, match=r"invalid interactions user_index values \[5\]: expected indices in \[0, 2\]"):
        click_matrix(inter, 3, 3)
    with pytest.raises(ValueError, match=r"invalid interactions columns \['user_index', 'item_index'\]: .*missing \['click'\]"):
        click_matrix(inter.drop(columns="click"), 6, 3)


# ------------------------------------------------------------------------------- top_k
def test_top_k_returns_distinct_best_first_and_respects_exclusion():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 30))
    exclude = rng.random((50, 30)) < 0.3
    ranked = top_k(scores, 10, exclude)
    assert ranked.shape == (50, 10)
    for row, s, ex in zip(ranked, scores, exclude):
        assert len(set(row.tolist())) == 10
        assert not ex[row].any()
        assert np.all(np.diff(s[row]) <= 0)
        # nothing allowed outside the list scores higher than the last one in it
        outside = np.setdiff1d(np.flatnonzero(~ex), row)
        assert s[outside].max() <= s[row[-1]]


def test_top_k_breaks_ties_by_lower_index():
    np.testing.assert_array_equal(top_k(np.array([1.0, 2.0, 2.0, 0.0, 2.0]), 3), [[1, 2, 4]])


@pytest.mark.parametrize(
    ("scores", "k", "exclude", "message"),
    [
        (np.zeros((2, 3)), 4, None, r"invalid k 4: expected at most the number of items, 3"),
        (np.zeros((2, 3)), 0, None, "invalid k 0: expected a positive int"),
        (np.array([[0.0, np.nan, 1.0]]), 1, None, "NaN"),
        (np.zeros((2, 3)), 1, np.zeros((2, 2), dtype=bool), "boolean mask"),
        (np.zeros((1, 3)), 2, np.array([[True, True, False]]), "only 1 items"),
    ],
)
def test_top_k_rejects_bad_input(scores, k, exclude, message):
    with pytest.raises(ValueError, match=message):
        top_k(scores, k, exclude)


# ------------------------------------------------------------------------------- item-CF
def test_item_knn_on_a_hand_made_matrix():
    model = ItemKNN().fit(HAND)
    # column cosines computed by hand: i0=(1,1,0,0), i1=(1,1,1,0), i2=(0,0,1,1), i3=(0,0,0,1)
    expected = np.array([
        [0, 2 / math.sqrt(6), 0, 0],
        [2 / math.sqrt(6), 0, 1 / math.sqrt(6), 0],
        [0, 1 / math.sqrt(6), 0, 1 / math.sqrt(2)],
        [0, 0, 1 / math.sqrt(2), 0],
    ])
    np.testing.assert_allclose(model.similarity_, expected, atol=1e-12)
    # u3 clicked i2 and i3: score(i1) = s(i2,i1) + s(i3,i1), score(i0) = 0
    np.testing.assert_allclose(model.score([3])[0], HAND[3] @ expected)
    assert model.recommend([3], k=1, exclude=HAND[[3]] > 0)[0, 0] == 1
    # u2 clicked i1 and i2: score(i0) = 2/sqrt(6) = 0.816 beats score(i3) = 1/sqrt(2) = 0.707
    assert model.recommend([2], k=2, exclude=HAND[[2]] > 0).tolist() == [[0, 3]]


def test_item_knn_matches_a_loop_over_sarwar_weighted_sum():
    rng = np.random.default_rng(1)
    x = (rng.random((30, 12)) < 0.3).astype(float)
    model = ItemKNN(k=4, normalize=True).fit(x)
    sim = np.zeros((12, 12))
    for i in range(12):
        for j in range(12):
            den = np.linalg.norm(x[:, i]) * np.linalg.norm(x[:, j])
            sim[i, j] = 0.0 if i == j or den == 0 else x[:, i] @ x[:, j] / den
    for i in range(12):  # keep the 4 most similar j for each target item i
        keep = np.argsort(-sim[:, i], kind="stable")[:4]
        sim[np.setdiff1d(np.arange(12), keep), i] = 0.0
    for u in range(30):
        for i in range(12):
            num = sum(sim[j, i] * x[u, j] for j in range(12))
            den = sum(abs(sim[j, i]) * x[u, j] for j in range(12))
            assert model.score([u])[0, i] == pytest.approx(num / den if den else 0.0, abs=1e-12)


# ------------------------------------------------------------------------------- user-CF
def test_user_knn_uses_the_nearest_neighbours():
    model = UserKNN(k=1).fit(HAND)
    # u0's only neighbour is u1 (identical history): it predicts exactly u1's row
    np.testing.assert_allclose(model.score([0])[0], HAND[1])
    # u3's nearest neighbour is u2 (shares i2): i1 is recommended among unclicked items
    assert model.recommend([3], k=1, exclude=HAND[[3]] > 0)[0, 0] == 1


def test_cosine_similarity_of_zero_rows_is_zero():
    sim = cosine_similarity(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(sim, [[0.0], [1 / math.sqrt(2)]])


# ------------------------------------------------------------------------------- MF
def _low_rank(n_users=60, n_items=40, rank=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_users, rank)) @ rng.normal(size=(rank, n_items)), rng


@pytest.mark.parametrize("masked", [False, True])
def test_als_loss_never_increases(masked):
    rng = np.random.default_rng(2)
    x = (rng.random((40, 25)) < 0.3).astype(float)
    w = (rng.random(x.shape) < 0.5).astype(float) if masked else None
    model = MatrixFactorization(n_factors=5, reg=0.5, n_iters=20).fit(x, weights=w)
    loss = np.array(model.loss_history_)
    assert loss.shape == (21,)
    assert np.all(np.diff(loss) <= 1e-9 * loss[:-1])
    assert loss[-1] < 0.8 * loss[0]


@pytest.mark.parametrize("seed", range(5))
def test_als_recovers_a_low_rank_matrix_from_half_its_entries(seed):
    truth, rng = _low_rank(seed=seed)
    observed = rng.random(truth.shape) < 0.5
    model = MatrixFactorization(n_factors=4, reg=0.1, n_iters=200).fit(np.where(observed, truth, 0.0), weights=observed)
    pred = model.score(np.arange(truth.shape[0]))
    rmse_missing = np.sqrt(np.mean((pred - truth)[~observed] ** 2))
    assert rmse_missing < 0.1 * truth.std()  # predicting 0 (or the mean) would give about 1.0 * std
    # the prediction is mu + b_u + b_i + p_u.q_i
    np.testing.assert_allclose(
        pred, model.mu_ + model.user_bias_[:, None] + model.item_bias_[None, :] + model.P_ @ model.Q_.T
    )


def _planted_clicks(seed, n_users=400, n_items=60, rank=4):
    """Clicks ~ Bernoulli(sigmoid(u.v - 2)): a train and an independent test draw."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n_users, rank))
    v = rng.normal(size=(n_items, rank))
    p = 1.0 / (1.0 + np.exp(-(u @ v.T - 2.0)))
    train = (rng.random(p.shape) < p).astype(float)
    test = (rng.random(p.shape) < p) & (train == 0)
    return train, test


def _ndcg(model, train, test):
    users = np.flatnonzero(test.any(axis=1) & train.any(axis=1))
    ranked = model.recommend(users, 10, exclude=train[users] > 0)
    return ndcg_at_k(ranked, [set(np.flatnonzero(test[u]).tolist()) for u in users], 10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_collaborative_filtering_beats_popularity_on_a_planted_low_rank_problem(seed):
    train, test = _planted_clicks(seed)
    pop = _ndcg(Popularity().fit(train), train, test)
    mf = _ndcg(MatrixFactorization(n_factors=4, reg=5.0).fit(train), train, test)
    item = _ndcg(ItemKNN().fit(train), train, test)
    user = _ndcg(UserKNN(k=30).fit(train), train, test)
    # measured: popularity ~0.19, MF ~0.50, item-CF ~0.45, user-CF ~0.47 NDCG@10
    assert mf > pop + 0.15
    assert item > pop + 0.1 and user > pop + 0.1


def test_weighted_ridge_solve_matches_one_regression_per_row():
    rng = np.random.default_rng(3)
    design, target = rng.normal(size=(12, 3)), rng.normal(size=(7, 12))
    weights = (rng.random((7, 12)) < 0.5).astype(float)
    got = MatrixFactorization._solve(design, target, weights, 0.7)
    for n in range(7):
        w = np.diag(weights[n])
        expected = np.linalg.solve(design.T @ w @ design + 0.7 * np.eye(3), design.T @ w @ target[n])
        np.testing.assert_allclose(got[n], expected, atol=1e-12)


def test_mf_on_observed_cells_ignores_the_unobserved_ones():
    rng = np.random.default_rng(4)
    x = (rng.random((30, 10)) < 0.4).astype(float)
    observed = rng.random(x.shape) < 0.5
    a = MatrixFactorization(n_factors=2, reg=1.0).fit(x, weights=observed)
    b = MatrixFactorization(n_factors=2, reg=1.0).fit(np.where(observed, x, 7.0), weights=observed)
    np.testing.assert_allclose(a.score(np.arange(30)), b.score(np.arange(30)), atol=1e-10)


# ------------------------------------------------------------------------------- PureSVD
def test_pure_svd_scores_are_the_truncated_svd():
    rng = np.random.default_rng(5)
    x = (rng.random((40, 15)) < 0.3).astype(float)
    model = PureSVD(n_factors=3).fit(x)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(model.score(np.arange(40)), (u[:, :3] * s[:3]) @ vt[:3], atol=1e-12)
    np.testing.assert_allclose(model.singular_values_, s[:3])
    # r_u Q q_i^T for one user and item, as in Cremonesi et al.
    assert model.score([7])[0, 4] == pytest.approx(x[7] @ model.Q_ @ model.Q_[4])
    # at full rank the model reproduces the matrix
    np.testing.assert_allclose(PureSVD(n_factors=15).fit(x).score(np.arange(40)), x, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pure_svd_beats_popularity_on_a_planted_low_rank_problem(seed):
    train, test = _planted_clicks(seed)
    pop = _ndcg(Popularity().fit(train), train, test)
    svd = _ndcg(PureSVD(n_factors=4).fit(train), train, test)
    assert svd > pop + 0.1


def test_pure_svd_rejects_bad_ranks():
    with pytest.raises(ValueError, match="invalid n_factors 0: expected a positive int"):
        PureSVD(n_factors=0)
    with pytest.raises(ValueError, match="invalid n_factors 2.5: expected a positive int"):
        PureSVD(n_factors=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"invalid n_factors 5: expected at most min\(4, 4\) = 4 \(the rank bound"):
        PureSVD(n_factors=5).fit(HAND)


# ------------------------------------------------------------------------------- content & hybrid
def _two_tribes(seed=0, n_users=200):
    """Two demographic groups; group 0 clicks items 0-9 (category A), group 1 items 10-19 (category B)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n_users)
    user_features = np.column_stack([group == 0, group == 1]).astype(float)
    item_features = np.zeros((20, 2))
    item_features[:10, 0] = 1.0
    item_features[10:, 1] = 1.0
    liked = np.where(group[:, None] == 0, np.arange(20) < 10, np.arange(20) >= 10)
    clicks = (liked & (rng.random((n_users, 20)) < 0.4)).astype(float)
    return clicks, user_features, item_features, group


def test_content_based_recommends_from_the_clicked_category():
    clicks, _, item_features, group = _two_tribes()
    model = ContentBased().fit(clicks, item_features=item_features)
    users = np.flatnonzero(clicks.sum(axis=1) > 0)
    ranked = model.recommend(users, 5)
    want_a = group[users] == 0
    assert np.all((ranked < 10) == want_a[:, None])


def test_hybrid_serves_cold_users_from_their_demographics():
    clicks, user_features, item_features, group = _two_tribes()
    clicks[:20] = 0.0  # twenty cold users
    model = Hybrid().fit(clicks, user_features=user_features, item_features=item_features)
    ranked = model.recommend(np.arange(20), 5)
    assert np.all((ranked < 10) == (group[:20] == 0)[:, None])
    # pure collaborative filtering knows nothing about them
    assert np.ptp(UserKNN().fit(clicks).score(np.arange(20))) == 0.0


# ------------------------------------------------------------------------------- bad input
# Classes, not instances: one instance made at collection would stay fitted if the tests ran twice
# in one process (as mutmut runs them), and then "not fitted" would not be raised.
@pytest.mark.parametrize(
    "make_model",
    [Popularity, UserKNN, ItemKNN, MatrixFactorization, lambda: PureSVD(n_factors=2), ContentBased, Hybrid],
    ids=["Popularity", "UserKNN", "ItemKNN", "MatrixFactorization", "PureSVD", "ContentBased", "Hybrid"],
)
def test_clear_errors(make_model):
    model = make_model()
    kwargs = {"user_features": np.ones((4, 2)), "item_features": np.eye(4)}
    with pytest.raises(RuntimeError, match="not fitted"):
        model.score([0])
    with pytest.raises(ValueError, match="2-D"):
        model.fit(np.ones(4), **kwargs)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.full((4, 4), np.nan), **kwargs)
    model.fit(HAND, **kwargs)
    with pytest.raises(ValueError, match=r"invalid user_indices \[4, -1\]: expected known users in \[0, 3\]"):
        model.score([0, 4, -1])
    with pytest.raises(ValueError, match=r"invalid user_indices ndarray\(\[0.5\].*: expected integer user indices"):
        model.score([0.5])
    assert model.score([0, 3]).shape == (2, 4)


def test_feature_models_check_feature_shapes():
    with pytest.raises(ValueError, match="needs item_features"):
        ContentBased().fit(HAND)
    with pytest.raises(ValueError, match=r"invalid item_features ndarray\(shape=\(3, 3\).*: expected shape \(4, n_features\)"):
        ContentBased().fit(HAND, item_features=np.eye(3))
    with pytest.raises(ValueError, match=r"invalid user_features ndarray\(\[\[1.0, 1.0\], .*: expected shape \(4, n_features\)"):
        Hybrid().fit(HAND, user_features=np.ones((3, 2)), item_features=np.eye(4))
    with pytest.raises(ValueError, match=r"invalid weights ndarray\(shape=\(3, 4\).*: expected the shape of X, \(4, 4\)"):
        MatrixFactorization().fit(HAND, weights=np.ones((3, 4)))
