"""Classic recommenders served in the simulator (recrl_lite.agents.recommenders), chapter 2."""

import numpy as np
import pandas as pd
import pytest

from recrl_lite import ECommerceEnv
from recrl_lite.agents import (
    LongHorizonReference, MyopicOracle, RecommenderPolicy, SoftmaxBehaviourPolicy, logged_user_profiles, replay_users,
)
from recrl_lite.data import Dataset, generate_dataset, prepare
from recrl_lite.models import ItemKNN, MatrixFactorization, Popularity, click_matrix


@pytest.fixture(scope="module")
def logged():
    dataset = generate_dataset(n_users=60, seed=3)
    data = prepare(dataset)
    X = click_matrix(data.train, len(data.user_index), len(data.item_index))
    return dataset, data, X


@pytest.fixture()
def env():
    return ECommerceEnv()


def _scored(n_users=5, n_items=120, seed=0):
    """A Popularity model whose click counts are a random permutation (distinct scores)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n_users, n_items))
    counts = rng.permutation(n_items)
    for item, c in enumerate(counts):
        X[: c % (n_users + 1), item] = 1.0
    return Popularity().fit(X)


def test_acts_on_the_top_item_not_shown_recently(env):
    model = _scored()
    policy = RecommenderPolicy(model, env)
    ranking = np.argsort(-model.score([0])[0], kind="stable")
    obs, _ = env.reset(seed=0)
    policy.start_session(0)
    h = env.config.history_length
    shown = []
    for _ in range(2 * (h + 1)):
        action = policy.act(obs)
        recent = set(obs[env.layout.recent_items].astype(int).tolist())
        assert action not in recent
        # the best-ranked item that is not recent
        assert action == next(int(i) for i in ranking if int(i) not in recent)
        shown.append(action)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset(seed=1)
            policy.start_session(0)
            shown.clear()
    # with a long enough session it cycles through the top h + 1 items
    assert set(shown) <= set(ranking[: h + 1].tolist())


def test_cycles_through_the_top_items_in_a_long_session():
    env = ECommerceEnv(clickbait_quality_range=(1.0, 1.0), quality_range=(1.0, 1.0), skip_cost=0.01)
    model = _scored()
    policy = RecommenderPolicy(model, env)
    top = np.argsort(-model.score([2])[0], kind="stable")[: env.config.history_length + 1].tolist()
    sessions = replay_users(policy, env, [env.reset(seed=4)[1]["user"]], [2], seed=0)
    assert sessions["length"].iloc[0] == env.config.horizon  # patience never runs out here
    # replay the same session by hand and check the order: top[0], top[1], ..., top[h], top[0], ...
    obs, _ = env.reset(seed=int(np.random.SeedSequence(0).generate_state(1)[0]), options={"user": env.user})
    policy.start_session(2)
    actions = []
    for _ in range(14):
        a = policy.act(obs)
        actions.append(a)
        obs, *_ = env.step(a)
    assert actions == (top * 3)[:14]


def test_scores_are_those_of_the_model_for_that_user(logged, env):
    _, _, X = logged
    model = ItemKNN().fit(X)
    users = np.flatnonzero(X.sum(axis=1) > 0)[:2]
    policy = RecommenderPolicy(model, env, name="item-CF online")
    assert policy.name == "item-CF online"
    firsts = []
    for u in users:
        obs, _ = env.reset(seed=0)
        policy.start_session(int(u))
        firsts.append(policy.act(obs))
        assert firsts[-1] == int(np.argmax(model.score([u])[0]))  # nothing recent at the first step


def test_clear_errors(logged, env):
    _, _, X = logged
    with pytest.raises(TypeError, match="fitted recrl_lite.models Recommender"):
        RecommenderPolicy(object(), env)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not fitted"):
        RecommenderPolicy(Popularity(), env)
    with pytest.raises(ValueError, match=r"invalid model n_items_ 30: expected 120, the env's n_items"):
        RecommenderPolicy(Popularity().fit(np.ones((3, 30))), env)
    with pytest.raises(ValueError, match=r"invalid env slate_size 3: expected 1"):
        RecommenderPolicy(Popularity().fit(X), ECommerceEnv(slate_size=3))
    with pytest.raises(TypeError, match="ECommerceEnv"):
        RecommenderPolicy(Popularity().fit(X), object())
    policy = RecommenderPolicy(Popularity().fit(X), env)
    obs, _ = env.reset(seed=0)
    with pytest.raises(RuntimeError, match="start_session"):
        policy.act(obs)
    with pytest.raises(ValueError, match=r"invalid user_index 60: expected an int in \[0, 59\]"):
        policy.start_session(60)
    with pytest.raises(ValueError, match=r"invalid user_index -1: expected an int in \[0, 59\]"):
        policy.start_session(-1)
    with pytest.raises(TypeError, match=r"invalid user_index 1.0 \(type float\): expected an int row"):
        policy.start_session(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"invalid user_index True \(type bool\): expected an int row"):
        policy.start_session(True)
    policy.start_session(np.int64(3))
    with pytest.raises(ValueError, match=r"invalid observation shape \(30,\): expected \(31,\)"):
        policy.act(obs[:-1])


def test_logged_profiles_are_the_generators_users(logged):
    dataset, data, _ = logged
    profiles = logged_user_profiles(dataset)
    users = dataset.users
    assert [p.age for p in profiles] == users["age"].tolist()
    assert [p.gender for p in profiles] == users["gender"].tolist()
    assert [p.location for p in profiles] == users["location"].tolist()
    by_index = logged_user_profiles(dataset, user_index=data.user_index)
    rows = data.user_index.index_of(users["user_id"])
    for row, profile in zip(rows, profiles):
        assert by_index[row].patience == profile.patience
        np.testing.assert_array_equal(by_index[row].preference, profile.preference)
    with pytest.raises(ValueError, match="read from files"):
        logged_user_profiles(Dataset(dataset.users, dataset.items, dataset.interactions))
    edited = Dataset(dataset.users.assign(age=dataset.users["age"] + 1), dataset.items, dataset.interactions,
                     profiles=dataset.profiles)
    with pytest.raises(ValueError, match="do not match"):
        logged_user_profiles(edited)


def test_a_replayed_user_clicks_as_logged(logged):
    """Replaying the first logged session (same user, seed and behaviour policy) gives the logged rows."""
    dataset, _, _ = logged
    profiles = logged_user_profiles(dataset)
    env = ECommerceEnv()
    behaviour = SoftmaxBehaviourPolicy(env, seed=3)  # generate_dataset's defaults
    obs, _ = env.reset(seed=int(np.random.SeedSequence(3).generate_state(1)[0]), options={"user": profiles[0]})
    replayed, done = [], False
    while not done:
        action = behaviour.act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        replayed.append((int(env.catalogue.item_id[action]), int(info["click"])))
        done = terminated or truncated
    mine = dataset.interactions[dataset.interactions["user_id"] == dataset.users["user_id"].iloc[0]]
    logged_rows = list(zip(mine["item_id"].tolist(), mine["click"].tolist()))
    n = len(replayed)
    assert any(logged_rows[i:i + n] == replayed for i in range(len(logged_rows) - n + 1))


def test_replay_users_meets_the_same_users_for_every_policy(logged):
    dataset, data, X = logged
    env = ECommerceEnv()
    profiles = logged_user_profiles(dataset, user_index=data.user_index)
    users = np.flatnonzero(X.sum(axis=1) > 0)[:8]
    chosen = [profiles[u] for u in users]
    mf = RecommenderPolicy(MatrixFactorization().fit(X), env)
    a = replay_users(mf, env, chosen, users, seed=5)
    b = replay_users(mf, env, chosen, users, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert a["user_index"].tolist() == users.tolist()
    assert set(a.columns) == {"user_index", "return", "length", "clicks", "ctr", "clickbait", "terminated"}
    assert (a["return"] == a["clicks"]).all() and a["clickbait"].between(0, 1).all()
    # the yardsticks ignore the user index and see the same users
    myopic = replay_users(MyopicOracle(env), env, chosen, users, seed=5)
    assert (myopic["clickbait"] > 0.5).all()
    with pytest.raises(ValueError, match="another env instance"):
        replay_users(LongHorizonReference(ECommerceEnv()), env, chosen, users, seed=5)
    with pytest.raises(ValueError, match=r"invalid profiles length 8: expected 7"):
        replay_users(mf, env, chosen, users[:7])
    with pytest.raises(ValueError, match="integers"):
        replay_users(mf, env, chosen, users.astype(float))
    with pytest.raises(TypeError, match="UserProfile"):
        replay_users(mf, env, ["someone"], [0])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one"):
        replay_users(mf, env, [], [])
