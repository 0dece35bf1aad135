"""Reference policies, online evaluation, statistics and ranking metrics."""

import math

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recrl_lite
from recrl_lite.agents import LongHorizonReference, MyopicOracle, PopularityPolicy, RandomPolicy, SoftmaxBehaviourPolicy
from recrl_lite.evaluation import (
    compare_policies,
    evaluate_policy,
    hit_rate_at_k,
    intervals_disjoint,
    mean_ci,
    paired_difference_ci,
    ndcg_at_k,
    split_test_users,
    summarize,
)


def test_the_long_horizon_property(small_dataset):
    """The property the book depends on (issue: >= 5 seeds, non-overlapping 95% CIs)."""
    env = gym.make(recrl_lite.ENV_ID)
    policies = {
        "random": RandomPolicy(120),
        "popularity": PopularityPolicy.from_interactions(small_dataset.interactions, small_dataset.items, env),
        "myopic": MyopicOracle(env),
        "reference": LongHorizonReference(env),
    }
    table = compare_policies(policies, env, n_users=200, seeds=range(5))
    ret = {name: (table.loc[name, ("return", "mean")], table.loc[name, ("return", "ci95")]) for name in policies}
    assert ret["myopic"][0] < ret["reference"][0] and intervals_disjoint(ret["myopic"], ret["reference"])
    for strong in ("myopic", "reference"):
        for weak in ("random", "popularity"):
            assert ret[strong][0] > ret[weak][0] and intervals_disjoint(ret[strong], ret[weak]), (strong, weak)


def test_myopic_oracle_chases_clickbait_and_reference_does_not():
    env = gym.make(recrl_lite.ENV_ID)
    bait = env.unwrapped.catalogue.is_clickbait
    share = {}
    for policy in (MyopicOracle(env), LongHorizonReference(env)):
        items = np.concatenate(evaluate_policy(policy, env, n_users=50, seeds=[0])["items"].to_numpy())
        share[policy.name] = bait[items].mean()
    assert share["myopic oracle"] > 0.8 > 0.2 > share["long-horizon reference"]


def test_same_seeds_meet_the_same_users():
    env = gym.make(recrl_lite.ENV_ID)
    a = evaluate_policy(RandomPolicy(120), env, n_users=20, seeds=[7])
    b = evaluate_policy(RandomPolicy(120), env, n_users=20, seeds=[7])
    assert a.drop(columns="items").equals(b.drop(columns="items"))
    assert a["items"].tolist() == b["items"].tolist()


def test_evaluate_policy_columns_and_summary(env):
    sessions = evaluate_policy(RandomPolicy(120), env, n_users=30, seeds=[0, 1, 2])
    assert len(sessions) == 90
    assert (sessions["return"] == sessions["clicks"]).all()
    assert (sessions["ctr"] == sessions["clicks"] / sessions["length"]).all()
    assert sessions["length"].between(1, 50).all()
    summary = summarize(sessions, 120)
    assert {"return", "coverage", "diversity", "revenue"} <= set(summary.index)
    per_seed = sessions.groupby("seed")["return"].mean()
    assert summary.loc["return", "mean"] == pytest.approx(per_seed.mean())
    assert 0 < summary.loc["coverage", "mean"] <= 1


def test_oracle_bound_to_another_env_is_refused(env):
    other = gym.make(recrl_lite.ENV_ID)
    with pytest.raises(ValueError, match="another env"):
        evaluate_policy(MyopicOracle(other), env, n_users=1, seeds=[0])


def test_revenue_reward_sums_revenue():
    env = gym.make(recrl_lite.ENV_ID, reward="revenue")
    sessions = evaluate_policy(LongHorizonReference(env), env, n_users=30, seeds=[0])
    np.testing.assert_allclose(sessions["return"], sessions["revenue"])
    assert sessions["revenue"].sum() > 0


def test_behaviour_policy_probabilities(env):
    policy = SoftmaxBehaviourPolicy(env, temperature=1.0, epsilon=0.2, seed=0)
    obs, _ = env.reset(seed=0)
    p = policy.probabilities()
    assert p.sum() == pytest.approx(1.0) and p.min() >= 0.2 / 120 - 1e-15
    a = policy.act(obs)
    assert policy.last_propensity == pytest.approx(p[a])
    with pytest.raises(ValueError):
        SoftmaxBehaviourPolicy(env, epsilon=0.0)


def test_popularity_skips_recent_items(env, small_dataset):
    policy = PopularityPolicy.from_interactions(small_dataset.interactions, small_dataset.items, env)
    obs, _ = env.reset(seed=0)
    shown = []
    for _ in range(6):
        a = policy.act(obs)
        shown.append(a)
        obs, *_ = env.step(a)
    assert len(set(shown[:5])) == 5
    assert shown[0] == int(np.argmax(policy.item_scores))


def test_policy_save_load_round_trip_and_wrong_checkpoint(env, small_dataset, tmp_path):
    policy = PopularityPolicy.from_interactions(small_dataset.interactions, small_dataset.items, env)
    policy.save(tmp_path / "pop.pt")
    fresh = PopularityPolicy(np.zeros(120), env)
    fresh.load(tmp_path / "pop.pt")
    np.testing.assert_array_equal(fresh.item_scores, policy.item_scores)
    RandomPolicy(120).save(tmp_path / "random.pt")
    with pytest.raises(ValueError, match=r"invalid class of checkpoint .*random\.pt 'RandomPolicy': expected 'PopularityPolicy'"):
        fresh.load(tmp_path / "random.pt")
    with pytest.raises(ValueError, match="shape"):
        PopularityPolicy(np.zeros(5), env)


def test_mean_ci_matches_the_t_interval():
    mean, half = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0
    assert half == pytest.approx(2.776 * math.sqrt(2.5) / math.sqrt(5))
    assert math.isnan(mean_ci([4.0])[1])
    with pytest.raises(ValueError):
        mean_ci([])
    assert intervals_disjoint((0.0, 1.0), (2.5, 1.0)) and not intervals_disjoint((0.0, 1.0), (1.5, 1.0))


def test_paired_difference_ci_is_the_interval_of_the_differences():
    a, b = [3.0, 5.0, 4.0, 6.0, 7.0], [2.0, 4.5, 2.0, 5.0, 6.5]
    assert paired_difference_ci(a, b) == mean_ci([1.0, 0.5, 2.0, 1.0, 0.5])
    # shared per-seed difficulty cancels: separate intervals overlap, the paired one excludes 0
    hard = np.array([1.0, 5.0, 9.0, 3.0, 7.0])
    m, h = paired_difference_ci(hard + 0.5, hard)
    assert m == pytest.approx(0.5) and h == pytest.approx(0.0, abs=1e-12)
    assert not intervals_disjoint(mean_ci(hard + 0.5), mean_ci(hard))
    with pytest.raises(ValueError, match=r"invalid b ndarray\(\[1\.0\], dtype=float64\): expected as many values as a \(2\)"):
        paired_difference_ci([1.0, 2.0], [1.0])


def test_ci_covers_the_true_mean_about_95_percent():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(2000):
        m, h = mean_ci(rng.normal(1.0, 2.0, 5))
        covered += abs(m - 1.0) <= h
    assert 0.93 < covered / 2000 < 0.97


def test_hit_rate_and_ndcg_by_hand():
    ranked = np.array([[3, 1, 2], [0, 1, 2]])
    relevant = [{1}, {5, 2}]
    assert hit_rate_at_k(ranked, relevant, 2) == 0.5
    assert ndcg_at_k(ranked, relevant, 2) == pytest.approx((1 / math.log2(3)) / 2)
    assert ndcg_at_k(ranked, relevant, 3) == pytest.approx((1 / math.log2(3) + (1 / 2) / (1 + 1 / math.log2(3))) / 2)
    with pytest.raises(ValueError, match="at least one relevant"):
        hit_rate_at_k(ranked, [{1}, set()], 2)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 20), st.integers(1, 5), st.data())
def test_ranking_metrics_are_bounded_and_perfect_at_the_top(n_items, k, data):
    k = min(k, n_items)
    perm = data.draw(st.permutations(range(n_items)))
    ranked = np.array([perm])
    rel = set(data.draw(st.lists(st.integers(0, n_items - 1), min_size=1, max_size=n_items)))
    assert 0.0 <= ndcg_at_k(ranked, [rel], k) <= 1.0 + 1e-12
    assert hit_rate_at_k(ranked, [rel], k) in (0.0, 1.0)
    top = np.array([sorted(rel) + [i for i in range(n_items) if i not in rel]])
    assert ndcg_at_k(top, [rel], k) == pytest.approx(1.0)


def test_split_test_users_warm_cold_relevant_and_excluded():
    # user 0 clicked item 1 in training; user 1 never clicked in training; user 2 clicks nothing new
    train = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=float)
    test = pd.DataFrame({"user_index": [0, 0, 0, 1, 1, 2, 2],
                         "item_index": [1, 2, 3, 3, 0, 0, 2],
                         "click": [1, 1, 0, 1, 1, 1, 0]})
    groups = split_test_users(train, test)
    warm, cold = groups["warm"], groups["cold"]
    assert warm.users.tolist() == [0] and warm.relevant == [{2}]   # item 1 was seen, item 3 not clicked
    assert warm.exclude.tolist() == [[False, True, False, False]]
    assert cold.users.tolist() == [1] and cold.relevant == [{0, 3}] and not cold.exclude.any()
    # user 2's only test click repeats a training click: nothing to discover, so no group
    assert 2 not in warm.users and 2 not in cold.users


def test_split_test_users_rejects_bad_input():
    train = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"invalid test columns \['user_index', 'item_index'\]: .*\(missing \['click'\]\)"):
        split_test_users(train, pd.DataFrame({"user_index": [0], "item_index": [1]}))
    with pytest.raises(ValueError, match=r"invalid test column 'item_index' \[5\]: expected indices in \[0, 2\]"):
        split_test_users(train, pd.DataFrame({"user_index": [0], "item_index": [5], "click": [1]}))
    with pytest.raises(ValueError, match=r"invalid train_clicks ndarray\(\[0\.0, 0\.0, 0\.0\], .*: expected a 2-D users x items"):
        split_test_users(np.zeros(3), pd.DataFrame({"user_index": [0], "item_index": [1], "click": [1]}))



def test_evaluate_policy_replays_logged_users_and_tells_recommenders_whose_session_it_is():
    import gymnasium as gym

    from recrl_lite.agents import RecommenderPolicy, logged_user_profiles
    from recrl_lite.data import generate_dataset, prepare
    from recrl_lite.evaluation import evaluate_policy
    from recrl_lite.models import Popularity, click_matrix

    data = generate_dataset(n_users=60, seed=3)
    prepared = prepare(data)
    profiles = logged_user_profiles(data, user_index=prepared.user_index)
    env = gym.make("recrl_lite/ECommerce-v0")
    X = click_matrix(prepared.train, len(prepared.user_index), len(prepared.item_index))
    policy = RecommenderPolicy(Popularity().fit(X), env)
    rows = np.arange(len(profiles))
    out = evaluate_policy(policy, env, n_users=10, seeds=[0, 1], users=(profiles, rows))
    assert len(out) == 20 and out.groupby("seed")["user_index"].nunique().tolist() == [10, 10]
    # seed 0 replays the users default_rng(0) picks, each in the session a direct reset would give
    picked = np.random.default_rng(0).choice(len(profiles), 10, replace=False)
    assert out.query("seed == 0")["user_index"].tolist() == picked.tolist()
    session_seed = int(np.random.SeedSequence(0).generate_state(10)[0])
    obs, _ = env.reset(seed=session_seed, options={"user": profiles[picked[0]]})
    policy.seed(0)
    policy.start_session(int(picked[0]))
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
        total, done = total + reward, terminated or truncated
    assert out.query("seed == 0")["return"].iloc[0] == total
    with pytest.raises(ValueError, match=r"invalid n_users 61: expected an int in \[1, 60\] \(only 60 logged users"):
        evaluate_policy(policy, env, n_users=61, seeds=[0], users=(profiles, rows))


# ----------------------------------------------------------------------------- hostile input (issue 11)
def test_evaluation_refuses_bad_seeds_and_metrics(env):
    policy = RandomPolicy(120)
    with pytest.raises(ValueError, match="at least one seed"):
        evaluate_policy(policy, env, n_users=2, seeds=[])
    with pytest.raises(ValueError, match=r"\[3\] repeated"):
        evaluate_policy(policy, env, n_users=2, seeds=[3, 1, 3])
    with pytest.raises(ValueError, match="expected integers"):
        evaluate_policy(policy, env, n_users=2, seeds=[0.5])
    with pytest.raises(ValueError, match=r"unknown \['ndcg'\]"):
        compare_policies({"random": policy}, env, n_users=2, seeds=[0], metrics=("return", "ndcg"))


def test_ranking_metrics_refuse_repeats_and_bad_k():
    from recrl_lite.evaluation import catalogue_coverage, hit_rate_at_k, ndcg_at_k
    ranked = np.array([[3, 3, 1], [0, 1, 2]])
    with pytest.raises(ValueError, match=r"rows \[0\] repeat an item"):
        ndcg_at_k(ranked, [{3}, {0}], 3)
    good = np.array([[3, 2, 1], [0, 1, 2]])
    assert ndcg_at_k(good, [{3}, {0}], 3) == 1.0
    for k in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match=rf"invalid k {k}: expected an int in \[1, inf\)"):
            hit_rate_at_k(good, [{3}, {0}], k)
    with pytest.raises(ValueError, match=r"invalid recommended\[1\] \[-1\]: expected item ids in \[0, 4\]"):
        catalogue_coverage([[0, 1], [-1]], 5)
    with pytest.raises(ValueError, match=r"invalid recommended\[0\] \[5\]: expected item ids in \[0, 4\]"):
        catalogue_coverage([[5]], 5)
    assert catalogue_coverage([[0, 1], []], 4) == 0.5
