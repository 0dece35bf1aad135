"""The simulator: gymnasium contract, invariants, ground truth, dynamics and bad input."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import recrl_lite
from recrl_lite.envs import (
    DiscretiseObservation,
    ECommerceConfig,
    ECommerceEnv,
    MaskObservation,
    SlateSpace,
    UserProfile,
)
from recrl_lite.errors import describe


def test_registered_and_made_through_gymnasium(env):
    assert isinstance(env.unwrapped, ECommerceEnv)
    assert env.spec.id == "recrl_lite/ECommerce-v0"
    # the horizon lives in the config only: no TimeLimit wrapper may override it
    assert env.spec.max_episode_steps is None
    assert env.action_space == gym.spaces.Discrete(120)


@pytest.mark.parametrize("overrides", [{}, {"reward": "revenue"}, {"slate_size": 3}])
def test_gymnasium_check_env(overrides):
    gym_check_env(gym.make(recrl_lite.ENV_ID, **overrides).unwrapped, skip_render_check=False)


def test_stable_baselines3_check_env():
    sb3_check_env(ECommerceEnv(), warn=True)


def test_observation_size_matches_layout():
    env = ECommerceEnv()
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (env.layout.size,)
    cfg = env.config
    assert env.layout.size == 8 + cfg.n_categories + 2 * cfg.history_length + 3


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    reward=st.sampled_from(["click", "revenue"]),
    horizon=st.integers(1, 60),
    actions=st.lists(st.integers(0, 119), min_size=1, max_size=80),
)
def test_invariants_along_random_episodes(seed, reward, horizon, actions):
    env = ECommerceEnv(reward=reward, horizon=horizon)
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    max_reward = 1.0 if reward == "click" else float(env.catalogue.price.max())
    steps = 0
    for action in actions:
        p = env.click_probabilities()
        assert np.all((p > 0) & (p < 1))
        obs, r, terminated, truncated, info = env.step(action)
        steps += 1
        assert env.observation_space.contains(obs), obs
        assert type(r) is float and 0.0 <= r <= max_reward
        assert type(terminated) is bool and type(truncated) is bool
        assert not (terminated and truncated)
        assert info["click"] or r == 0.0
        if terminated or truncated:
            break
    assert steps <= horizon
    if steps == len(actions) and not (terminated or truncated):
        assert steps < horizon
    if truncated:
        assert steps == horizon


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(2, 6), data=st.data())
def test_slate_choice_probabilities_sum_to_one_with_no_click(seed, k, data):
    env = ECommerceEnv(slate_size=k)
    env.reset(seed=seed)
    slate = data.draw(st.lists(st.integers(0, 119), min_size=k, max_size=k, unique=True))
    probs = env.choice_probabilities(slate)
    assert probs.shape == (k + 1,)
    assert math.isclose(probs.sum(), 1.0, rel_tol=1e-12)
    assert np.all(probs > 0)
    assert probs[:-1].sum() < 1.0  # the no-click option always keeps some mass
    # position bias: the same item is less likely to be clicked further down
    swapped = list(reversed(slate))
    assert env.choice_probabilities(swapped)[k - 1] < probs[0] or k == 1


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), actions=st.lists(st.integers(0, 119), min_size=1, max_size=50))
def test_reset_with_seed_is_deterministic(seed, actions):
    def trajectory():
        env = ECommerceEnv()
        out = [env.reset(seed=seed)[0]]
        for a in actions:
            obs, r, term, trunc, _ = env.step(a)
            out.append(np.append(obs, [r, term, trunc]))
            if term or trunc:
                break
        return out

    a, b = trajectory(), trajectory()
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_step_returns_fresh_arrays(env):
    obs0, _ = env.reset(seed=1)
    obs1, *_ = env.step(0)
    assert not np.shares_memory(obs0, obs1)


@pytest.mark.parametrize("action", [-1, 120, 1.5, np.array([1, 2]), "3", True, None, np.float32(2.0)])
def test_invalid_action_raises_value_error_naming_action_and_range(env, action):
    env.reset(seed=0)
    with pytest.raises(ValueError) as err:
        env.step(action)
    message = str(err.value)
    assert message.startswith(f"invalid action {describe(action)}: expected one integer item id in [0, 119]")


def test_invalid_slate_action_raises():
    env = ECommerceEnv(slate_size=3)
    env.reset(seed=0)
    for bad in ([1, 1, 2], [1, 2], [0, 1, 120], np.array([0.0, 1.0, 2.0])):
        with pytest.raises(ValueError, match="3 distinct integer item ids in \\[0, 119\\]"):
            env.step(bad)


def test_slate_space_samples_only_valid_slates():
    # a plain MultiDiscrete samples repeats (P ≈ 2.5% for 3 of 120), which step refuses: CI hit one once
    env = ECommerceEnv(slate_size=3)
    space = env.action_space
    assert isinstance(space, SlateSpace) and isinstance(space, gym.spaces.MultiDiscrete)
    space.seed(0)
    env.reset(seed=0)
    for _ in range(2000):
        slate = space.sample()
        assert slate.shape == (3,) and np.unique(slate).size == 3 and space.contains(slate)
    for _ in range(50):
        _, _, terminated, truncated, _ = env.step(space.sample())
        if terminated or truncated:
            env.reset()
    assert not space.contains(np.array([4, 4, 7])) and space.contains(np.array([4, 5, 7]))
    assert not space.contains(np.array([4, 5, 120])) and not space.contains(np.array([4, 5]))
    assert not space.contains(np.array([True, False, True])) and not space.contains("abc")
    assert space == SlateSpace(120, 3) and space != gym.spaces.MultiDiscrete([120] * 3)
    with pytest.raises(ValueError, match="slate_size"):
        SlateSpace(5, 6)


def test_numpy_integer_actions_are_accepted(env):
    env.reset(seed=0)
    env.step(np.int64(3))
    env.step(np.array(4))


def test_step_outside_an_episode_raises():
    env = ECommerceEnv(horizon=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    while True:
        *_, term, trunc, _ = env.step(0)
        if term or trunc:
            break
    with pytest.raises(RuntimeError, match="ended"):
        env.step(0)


def test_invalid_config_names_the_parameter():
    with pytest.raises(ValueError, match="horizon=0"):
        ECommerceConfig(horizon=0)
    with pytest.raises(ValueError, match="reward='ctr'"):
        ECommerceEnv(reward="ctr")


def test_click_probabilities_match_empirical_click_rate():
    """The exposed ground truth is the probability the env actually samples with."""
    env = ECommerceEnv()
    env.reset(seed=0)
    user = env.user
    rng = np.random.default_rng(0)
    for item in rng.choice(120, 4, replace=False).tolist():
        env.reset(seed=0, options={"user": user})
        p = float(env.click_probabilities()[item])
        n = 3000
        clicks = 0
        for s in range(n):
            env.reset(seed=s, options={"user": user})
            clicks += env.step(item)[4]["click"]
        assert abs(clicks / n - p) < 5 * math.sqrt(p * (1 - p) / n), (item, clicks / n, p)


def test_patience_dynamics_clickbait_drains_quality_refills():
    env = ECommerceEnv()
    cat = env.catalogue
    bait = int(np.flatnonzero(cat.is_clickbait)[0])
    good = int(np.argmax(np.where(cat.is_clickbait, -np.inf, cat.quality)))
    for item, sign in ((bait, -1), (good, +1)):
        for seed in range(200):
            env.reset(seed=seed)
            before = env.patience
            info = env.step(item)[4]
            if info["click"]:
                change = env.patience - before
                assert math.isclose(change, cat.quality[item] - 1.0)
                assert np.sign(change) == sign
                break
        else:
            pytest.fail("no click in 200 tries")
    # an ignored recommendation costs skip_cost
    for seed in range(200):
        env.reset(seed=seed)
        before = env.patience
        if not env.step(bait)[4]["click"]:
            assert math.isclose(before - env.patience, env.config.skip_cost)
            break


def test_fatigue_builds_and_decays_and_lowers_click_probability():
    env = ECommerceEnv()
    env.reset(seed=0)
    item = 0
    c = env.catalogue.category[item]
    p0 = env.click_probabilities()[item]
    env.step(item)
    assert math.isclose(env.fatigue[c], 1.0)
    assert env.click_probabilities()[item] < p0
    other = int(np.flatnonzero(env.catalogue.category != c)[0])
    env.step(other)
    assert math.isclose(env.fatigue[c], env.config.fatigue_decay)


def test_session_ends_when_patience_runs_out():
    env = ECommerceEnv()
    env.reset(seed=0, options={"user": UserProfile(30, "F", "north", np.zeros(8), patience=1.0)})
    # a user with patience 1 who ignores the item leaves at once
    worst = int(np.argmin(env.click_probabilities()))
    for seed in range(100):
        env.reset(seed=seed, options={"user": env.user})
        _, _, terminated, truncated, info = env.step(worst)
        if not info["click"]:
            assert terminated and not truncated
            return
    pytest.fail("the least attractive item was clicked 100 times")


def test_reset_rejects_a_user_of_the_wrong_type(env):
    with pytest.raises(TypeError, match="UserProfile"):
        env.reset(options={"user": {"age": 30}})


def test_render_ansi():
    env = ECommerceEnv(render_mode="ansi")
    env.reset(seed=0)
    env.step(0)
    assert "patience" in env.render()
    with pytest.raises(ValueError, match="render_mode"):
        ECommerceEnv(render_mode="human")


def test_discretise_wrapper_states_in_space(env):
    wrapped = DiscretiseObservation(env)
    assert wrapped.observation_space.n == 11 * 2 * 4
    s, _ = wrapped.reset(seed=0)
    assert s == 0  # no history, no click, no skips
    seen = set()
    for a in range(30):
        s, _, term, trunc, _ = wrapped.step(a)
        assert wrapped.observation_space.contains(s)
        seen.add(s)
        if term or trunc:
            s, _ = wrapped.reset()
    assert len(seen) > 3


def test_discretise_wrapper_with_user_parts_encodes_who_the_user_is():
    plain = DiscretiseObservation(ECommerceEnv())
    rich = DiscretiseObservation(ECommerceEnv(), user_parts=("gender", "age"), age_buckets=3)
    assert rich.observation_space.n == plain.observation_space.n * 2 * 3
    for seed in range(40):
        s_plain, info = plain.reset(seed=seed)
        s_rich, _ = rich.reset(seed=seed)
        user = info["user"]
        band = min((user.age - 18) * 3 // 52, 2)
        assert s_rich % plain.observation_space.n == s_plain  # the session part is unchanged
        assert s_rich // plain.observation_space.n == ["F", "M"].index(user.gender) * 3 + band
        for a in (3, 50):
            s_plain, *_ = plain.step(a)
            s_rich, *_ = rich.step(a)
            assert rich.observation_space.contains(s_rich) and s_rich % plain.observation_space.n == s_plain


@pytest.mark.parametrize("kwargs", [{"user_parts": ("height",)}, {"user_parts": ("age", "age")},
                                    {"skip_buckets": 0}, {"age_buckets": 0}, {"skip_buckets": 2.5}])
def test_discretise_wrapper_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DiscretiseObservation(ECommerceEnv(), **kwargs)


def test_mask_wrapper_hides_only_the_named_parts(env):
    masked = MaskObservation(gym.make(recrl_lite.ENV_ID), hide=("user", "skips"))
    gym_check_env(masked.unwrapped)
    lay = env.unwrapped.layout
    full, _ = env.reset(seed=3)
    hidden, _ = masked.reset(seed=3)
    for a in (5, 7, 9):
        assert masked.observation_space.contains(hidden)
        low = masked.observation_space.low
        np.testing.assert_array_equal(hidden[lay.user], low[lay.user])
        assert hidden[lay.skips] == low[lay.skips]
        shown = np.ones(lay.size, dtype=bool)
        shown[lay.user] = False
        shown[lay.skips] = False
        np.testing.assert_array_equal(hidden[shown], full[shown])  # the rest is untouched
        full, *_ = env.step(a)
        hidden, *_ = masked.step(a)
    with pytest.raises(ValueError, match="parts of the observation"):
        MaskObservation(env, hide=("patience",))  # hidden already, not an observed part
    with pytest.raises(ValueError, match="parts of the observation"):
        MaskObservation(env, hide=())


def test_sb3_ppo_smoke_run():
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", gym.make(recrl_lite.ENV_ID), n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    env = ECommerceEnv()
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    env.step(action)


# ----------------------------------------------------------------------------- hostile input (issue 11)
@pytest.mark.parametrize("overrides, field", [
    ({"horizon": 10**9}, "horizon"), ({"horizon": 2.5}, "horizon"), ({"horizon": "50"}, "horizon"),
    ({"n_items": 10**6}, "n_items"), ({"n_items": 120.0}, "n_items"), ({"n_items": True}, "n_items"),
    ({"skip_cost": float("nan")}, "skip_cost"), ({"no_click_bias": float("inf")}, "no_click_bias"),
    ({"appeal_noise": -1.0}, "appeal_noise"), ({"embedding_noise": -0.1}, "embedding_noise"),
    ({"preference_noise": float("nan")}, "preference_noise"), ({"quality_range": (1.0, 0.5)}, "quality_range"),
    ({"quality_range": (0.0, float("inf"))}, "quality_range"), ({"clickbait_quality_range": 0.3}, "clickbait_quality_range"),
    ({"patience_high": 1.0}, "patience_high"), ({"fatigue_decay": 1.0}, "fatigue_decay"),
    ({"catalogue_seed": -1}, "catalogue_seed"), ({"price_sensitivity_mean": -1.0}, "price_sensitivity_mean"),
])
def test_config_rejects_bad_values_naming_the_field_and_its_range(overrides, field):
    with pytest.raises(ValueError, match=rf"invalid ECommerceConfig: {field}=.*; expected"):
        ECommerceConfig(**overrides)


def test_every_config_field_is_validated():
    """A new field must get a rule, or it could hold NaN or a huge value unnoticed."""
    import dataclasses

    from recrl_lite.envs.ecommerce import _CONFIG_RULES
    names = {f.name for f in dataclasses.fields(ECommerceConfig)}
    assert names - set(_CONFIG_RULES) == {"reward", "item_categories"}  # checked by hand in __post_init__
    assert set(_CONFIG_RULES) <= names


def test_slates_refuse_bools_as_ids():
    env = ECommerceEnv(slate_size=3)
    env.reset(seed=0)
    for slate in ([True, False, 2], [np.True_, 1, 2], np.array([True, False, True])):
        with pytest.raises(ValueError, match="invalid action"):
            env.step(slate)
    assert env.step([0, 1, 2])[4]["slate"] == [0, 1, 2]


@pytest.mark.parametrize("change, trait", [
    ({"gender": "X"}, "gender"), ({"location": "moon"}, "location"), ({"age": 12}, "age"), ({"age": 71}, "age"),
    ({"age": 30.5}, "age"), ({"preference": np.zeros(3)}, "preference"), ({"preference": np.full(8, np.nan)}, "preference"),
    ({"patience": float("nan")}, "patience"), ({"patience": -1.0}, "patience"), ({"patience": 0.0}, "patience"),
    ({"price_sensitivity": float("inf")}, "price_sensitivity"),
])
def test_replayed_users_must_be_possible_users(change, trait):
    import dataclasses
    env = ECommerceEnv()
    _, info = env.reset(seed=0)
    bad = dataclasses.replace(info["user"], **change)
    with pytest.raises(ValueError, match=rf"invalid options\['user'\]: {trait}="):
        env.reset(seed=1, options={"user": bad})
    obs, _ = env.reset(seed=1, options={"user": info["user"]})  # the real one still replays
    assert env.observation_space.contains(obs)
