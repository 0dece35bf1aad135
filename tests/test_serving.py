"""recommend(user_or_state, k): distinct unconsumed items, explicit exploration with propensities,
batch scoring, and clear errors on bad input (chapter 5.4)."""

import gymnasium as gym
import numpy as np
import pytest

import recrl_lite  # noqa: F401  (registers the env)
from recrl_lite.agents.serving import Exploration, Recommender, ServingPolicy, policy_scores
from recrl_lite.data import generate_dataset, log_transitions


@pytest.fixture(scope="module")
def env():
    return gym.make("recrl_lite/ECommerce-v0")


def fixed_scores(n_items, seed=0):
    table = np.random.default_rng(seed).normal(size=n_items)
    return lambda obs: np.tile(table, (len(obs), 1)), table


def test_top_k_is_the_k_best_distinct_unconsumed(env):
    base = env.unwrapped
    score_fn, table = fixed_scores(base.config.n_items)
    rec = Recommender(score_fn, base.config.n_items, base.layout)
    obs, _ = env.reset(seed=3)
    obs = obs.copy()
    best = np.argsort(-table)
    # the user clicked the best item and was shown (without clicking) the second best
    obs[base.layout.recent_items][:] = -1
    items_slice, clicks_slice = base.layout.recent_items, base.layout.recent_clicks
    obs[items_slice.stop - 2], obs[clicks_slice.stop - 2] = best[0], 1.0
    obs[items_slice.stop - 1], obs[clicks_slice.stop - 1] = best[1], 0.0
    out = rec.recommend(obs, 5)
    assert out.items.shape == (1, 5)
    assert out.items[0].tolist() == best[[1, 2, 3, 4, 5]].tolist()  # consumed best[0] dropped, shown best[1] kept
    assert np.all(np.diff(out.scores[0]) <= 0)
    assert np.all(out.propensities == 1.0)


def test_batch_scoring_equals_one_at_a_time(env):
    base = env.unwrapped
    w = np.random.default_rng(1).normal(size=(base.layout.size, base.config.n_items))
    rec = Recommender(lambda obs: obs @ w, base.config.n_items, base.layout)
    states = np.stack([env.reset(seed=s)[0] for s in range(6)])
    batch = rec.recommend(states, 4)
    for row, state in enumerate(states):
        assert rec.recommend(state, 4).items[0].tolist() == batch.items[row].tolist()


@pytest.mark.parametrize("exploration", [Exploration("epsilon", epsilon=0.3), Exploration("softmax", temperature=0.5)])
def test_exploration_propensities_match_frequencies(env, exploration):
    base = env.unwrapped
    n_items = 6
    table = np.array([2.0, 1.0, 0.5, 0.0, -0.5, -1.0])
    rec = Recommender(lambda obs: np.tile(table, (len(obs), 1)), n_items, base.layout)
    obs = np.tile(env.reset(seed=0)[0], (20000, 1))
    out = rec.recommend(obs, 2, exploration=exploration, rng=np.random.default_rng(5))
    assert all(len(set(row)) == 2 for row in out.items.tolist())
    # empirical frequency of each (slot-0 item) matches its reported propensity within 4 standard errors
    for item in range(n_items):
        shown = out.items[:, 0] == item
        if shown.any():
            p = out.propensities[shown, 0][0]
            assert np.allclose(out.propensities[shown, 0], p)
            se = np.sqrt(p * (1 - p) / len(obs))
            assert abs(shown.mean() - p) < 4 * se + 1e-12
    # the list propensity is the product of the conditional ones, and the lists' probabilities sum to 1
    pairs = {}
    for items, lp in zip(map(tuple, out.items.tolist()), out.list_propensity):
        pairs[items] = lp
    assert abs(sum(pairs.values()) - 1.0) < 1e-9 or len(pairs) < n_items * (n_items - 1)
    assert sum(pairs.values()) <= 1.0 + 1e-9


def test_serving_policy_logs_its_propensities(env):
    base = env.unwrapped
    score_fn, _ = fixed_scores(base.config.n_items)
    policy = ServingPolicy(Recommender(score_fn, base.config.n_items, base.layout), Exploration("epsilon", epsilon=0.2))
    logs = log_transitions(env, policy, 300, seed=2)
    assert np.isfinite(logs.propensities).all() and (logs.propensities > 0).all()
    probs = policy.action_probabilities(logs.observations)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.allclose(probs[np.arange(len(logs)), logs.actions], logs.propensities)


def test_known_users_exclude_their_clicks_and_unknown_users_fail(env):
    data = generate_dataset(n_users=40, sessions_per_user=1, seed=0)
    rec = Recommender.from_policy(lambda obs: np.tile(np.arange(120.0), (len(obs), 1)), env, data)
    clicked = data.interactions[data.interactions["click"] == 1]
    uid = int(clicked["user_id"].iloc[0])
    out = rec.recommend(uid, 10)
    item_ids = set(out.item_ids[0].tolist())
    assert not item_ids & set(clicked.loc[clicked["user_id"] == uid, "item_id"].tolist())
    assert len(item_ids) == 10
    both = rec.recommend([uid, int(data.users["user_id"].iloc[1])], 3)
    assert both.items.shape == (2, 3)
    with pytest.raises(ValueError, match=r"invalid user_id -12345: expected a known user id"):
        rec.recommend(-12345, 3)


def test_bad_input_gets_a_clear_error(env):
    base = env.unwrapped
    score_fn, _ = fixed_scores(base.config.n_items)
    rec = Recommender(score_fn, base.config.n_items, base.layout)
    obs, _ = env.reset(seed=0)
    n_items, size = base.config.n_items, base.layout.size
    with pytest.raises(ValueError, match=rf"invalid k {n_items + 1}: expected an int in \[1, n_items\] = \[1, {n_items}\]"):
        rec.recommend(obs, n_items + 1)
    for bad_k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=rf"invalid k {bad_k}: expected an int in \[1, n_items\]"):
            rec.recommend(obs, bad_k)
    with pytest.raises(ValueError, match=rf"invalid state shape \({size - 1},\): expected \({size},\) or \(batch, {size}\)"):
        rec.recommend(obs[:-1], 3)
    with pytest.raises(ValueError, match="NaN"):
        rec.recommend(np.full_like(obs, np.nan), 3)
    with pytest.raises(ValueError, match=r"invalid k 3: expected at most 2, the unconsumed items left in row 0"):
        rec.recommend(obs, 3, exclude=[range(base.config.n_items - 2)])
    with pytest.raises(ValueError, match=r"invalid user_id 7: expected a known user id \(no users table was given"):
        rec.recommend(7, 3)
    with pytest.raises(ValueError, match=r"invalid rng None: expected a numpy Generator"):
        rec.recommend(obs, 3, exploration=Exploration())
    with pytest.raises(ValueError, match="epsilon"):
        Exploration("epsilon", epsilon=1.5)
    with pytest.raises(ValueError, match="cannot score"):
        policy_scores(object())
    wrong = Recommender(lambda o: np.zeros((len(o), 3)), base.config.n_items, base.layout)
    with pytest.raises(ValueError, match=rf"invalid score_fn output shape \(1, 3\): expected \(1, {n_items}\)"):
        wrong.recommend(obs, 2)


# ------------------------------------------------------------------ mutation survivors (issue 11)
def test_slot_probabilities_without_exploration_is_the_allowed_argmax():
    from recrl_lite.agents.serving import slot_probabilities

    scores = np.array([[0.1, 0.9, 0.5, 0.7], [3.0, 2.0, 1.0, 0.0]])
    allowed = np.array([[True, False, True, True], [False, True, True, False]])
    greedy = slot_probabilities(scores, allowed, None)
    # row 0: item 1 scores best but is excluded, so item 3; row 1: item 1
    np.testing.assert_array_equal(greedy, [[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    explore = slot_probabilities(scores, allowed, Exploration(epsilon=0.3))
    # epsilon spread uniformly over the allowed items, the rest on the argmax
    np.testing.assert_allclose(explore, [[0.1, 0.0, 0.1, 0.8], [0.0, 0.85, 0.15, 0.0]])


def test_recommendations_frame_has_one_row_per_rank_with_the_public_ids_beside_the_items():
    from recrl_lite.agents.serving import Recommendations

    recs = Recommendations(items=np.array([[2, 0], [1, 3]]), scores=np.array([[0.9, 0.5], [0.8, 0.1]]),
                           propensities=np.ones((2, 2)), item_ids=np.array([[102, 100], [101, 103]]))
    frame = recs.to_frame()
    assert list(frame.columns) == ["row", "rank", "item", "item_id", "score", "propensity"]
    assert frame["row"].tolist() == [0, 0, 1, 1] and frame["rank"].tolist() == [0, 1, 0, 1]
    assert frame["item"].tolist() == [2, 0, 1, 3] and frame["item_id"].tolist() == [102, 100, 101, 103]
    assert list(Recommendations(recs.items, recs.scores, recs.propensities).to_frame().columns) == [
        "row", "rank", "item", "score", "propensity"]


def test_policy_scores_reads_each_kind_of_agent_in_order_of_precedence():
    import torch

    obs = np.zeros((2, 3))
    values = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])

    class QAgent:  # DQN: Q-values win over everything else it may also have
        def q_values(self, o):
            return values.astype(np.float32)

        def logits(self, o):
            raise AssertionError("q_values come first")

    class OffPolicyAgent:  # off-policy REINFORCE: log-probabilities, a zero floored at 1e-300
        def policy_probabilities(self, o):
            return np.array([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]])

        def logits(self, o):
            raise AssertionError("policy_probabilities come before logits")

    class TorchAgent:  # REINFORCE: torch logits, detached to float64 numpy
        def logits(self, o):
            return torch.tensor(values, requires_grad=True) * 2.0

        def _logits(self, o):
            raise AssertionError("the public logits come first")

    class PrivateLogits:
        def _logits(self, o):
            return values.tolist()

    for agent, want in [
        (QAgent(), values.astype(np.float32).astype(np.float64)),
        (OffPolicyAgent(), np.log(np.maximum([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]], 1e-300))),
        (TorchAgent(), values * 2.0),
        (PrivateLogits(), values),
        (lambda o: values + 1.0, values + 1.0),
    ]:
        got = policy_scores(agent)(obs)
        assert isinstance(got, np.ndarray) and got.dtype == np.float64, type(agent).__name__
        np.testing.assert_array_equal(got, want)
    assert np.isfinite(policy_scores(OffPolicyAgent())(obs)).all()  # log 0 floored, not -inf
    # the scorer is named after its policy, so errors about its scores say which
    assert policy_scores(QAgent()).__qualname__ == "policy_scores(QAgent)"
