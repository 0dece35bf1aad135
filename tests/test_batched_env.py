"""The batched simulator (issue 9): equivalent to SyncVectorEnv over ECommerceEnv, with its invariants."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recrl_lite
from recrl_lite.envs import BatchedECommerceEnv, ECommerceConfig, ECommerceEnv

INFO_KEYS = ("clicked_item", "click", "purchase", "revenue")


def _actions(rng: np.random.Generator, cfg: ECommerceConfig, n_envs: int) -> np.ndarray:
    if cfg.slate_size == 1:
        return rng.integers(0, cfg.n_items, n_envs)
    return np.stack([rng.choice(cfg.n_items, cfg.slate_size, replace=False) for _ in range(n_envs)])


def _same_users(a: np.ndarray, b: np.ndarray) -> bool:
    return all((x is None and y is None) or (
        x.age == y.age and x.gender == y.gender and x.location == y.location and x.patience == y.patience
        and x.price_sensitivity == y.price_sensitivity and np.array_equal(x.preference, y.preference))
        for x, y in zip(a, b, strict=True))


def _check_ground_truth(batch: BatchedECommerceEnv, sync: SyncVectorEnv, slates: np.ndarray | None) -> None:
    for name in ("click_utilities", "click_probabilities", "purchase_probabilities",
                 "expected_patience_change", "expected_immediate_reward"):
        got = getattr(batch, name)()
        assert got.shape == (batch.num_envs, batch.config.n_items)
        for i, env in enumerate(sync.envs):
            assert np.array_equal(got[i], getattr(env.unwrapped, name)()), name
    if slates is not None:
        got = batch.choice_probabilities(slates)
        for i, env in enumerate(sync.envs):
            assert np.array_equal(got[i], env.unwrapped.choice_probabilities(slates[i]))


CONFIGS = [
    dict(horizon=7),
    dict(horizon=5, reward="revenue", history_length=1),
    dict(horizon=9, slate_size=3),
    dict(horizon=6, slate_size=3, reward="revenue", history_length=1),
    dict(horizon=12, slate_size=9, n_items=30, n_categories=4, skip_cost=0.5),
    dict(horizon=40, skip_cost=0.3, fatigue_decay=0.5, history_length=3),
]


@pytest.mark.parametrize("overrides", CONFIGS)
@pytest.mark.parametrize("seed", [0, 11])
def test_batch_equals_sync_vector_env(overrides: dict, seed: int) -> None:
    cfg = ECommerceConfig(**overrides)
    n_envs, n_steps = 5, 200
    batch = BatchedECommerceEnv(num_envs=n_envs, config=cfg)
    sync = SyncVectorEnv([lambda: ECommerceEnv(cfg) for _ in range(n_envs)])
    obs_b, info_b = batch.reset(seed=seed)
    obs_s, info_s = sync.reset(seed=seed)
    assert np.array_equal(obs_b, obs_s) and obs_b.dtype == obs_s.dtype
    assert _same_users(info_b["user"], info_s["user"]) and np.array_equal(info_b["_user"], info_s["_user"])
    rng = np.random.default_rng(seed)
    ends = 0
    for step in range(n_steps):
        actions = _actions(rng, cfg, n_envs)
        out_b, out_s = batch.step(actions), sync.step(actions)
        for got, want in zip(out_b[:4], out_s[:4], strict=True):
            assert np.array_equal(got, want) and got.dtype == want.dtype, step
        info_b, info_s = out_b[4], out_s[4]
        for key in INFO_KEYS:
            if key in info_s:
                assert np.array_equal(info_b[key], info_s[key]), (step, key)
                assert np.array_equal(info_b[f"_{key}"], info_s[f"_{key}"]), (step, key)
            else:  # every sub-env reset this step
                assert not info_b[f"_{key}"].any()
        assert ("user" in info_b) == ("user" in info_s)
        if "user" in info_s:
            assert _same_users(info_b["user"], info_s["user"]) and np.array_equal(info_b["_user"], info_s["_user"])
        ends += int((out_b[2] | out_b[3]).sum())
        if step % 37 == 0:
            _check_ground_truth(batch, sync, actions if cfg.slate_size > 1 else None)
    assert ends >= n_envs  # autoresets happened


def test_reset_mask_and_seed_list_match_sync() -> None:
    cfg = ECommerceConfig(horizon=5)
    batch = BatchedECommerceEnv(num_envs=3, config=cfg)
    sync = SyncVectorEnv([lambda: ECommerceEnv(cfg) for _ in range(3)])
    assert np.array_equal(batch.reset(seed=[4, None, 9])[0][[0, 2]], sync.reset(seed=[4, None, 9])[0][[0, 2]])
    batch.reset(seed=[1, 2, 3]), sync.reset(seed=[1, 2, 3])
    mask = np.array([False, True, False])
    batch.step(np.array([1, 2, 3])), sync.step(np.array([1, 2, 3]))
    assert np.array_equal(batch.reset(options={"reset_mask": mask})[0], sync.reset(options={"reset_mask": mask})[0])
    assert np.array_equal(batch.step(np.array([4, 5, 6]))[0], sync.step(np.array([4, 5, 6]))[0])


def test_spaces_and_metadata() -> None:
    for cfg in (ECommerceConfig(), ECommerceConfig(slate_size=3)):
        batch, single = BatchedECommerceEnv(num_envs=4, config=cfg), ECommerceEnv(cfg)
        assert batch.single_observation_space == single.observation_space
        assert batch.single_action_space == single.action_space
        assert batch.observation_space == gym.vector.utils.batch_space(single.observation_space, 4)
        assert batch.action_space == gym.vector.utils.batch_space(single.action_space, 4)
        assert batch.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP


def test_make_vec_returns_the_batched_env() -> None:
    envs = gym.make_vec(recrl_lite.ENV_ID, num_envs=4, horizon=10)
    assert isinstance(envs.unwrapped, BatchedECommerceEnv)
    assert envs.num_envs == 4 and envs.unwrapped.config.horizon == 10
    assert gym.make(recrl_lite.ENV_ID, horizon=10).unwrapped.config == envs.unwrapped.config
    assert isinstance(gym.make(recrl_lite.ENV_ID).unwrapped, ECommerceEnv)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (4, envs.unwrapped.layout.size)
    sync = gym.make_vec(recrl_lite.ENV_ID, num_envs=2, vectorization_mode="sync")
    assert isinstance(sync, SyncVectorEnv)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_envs=st.integers(1, 6),
    horizon=st.integers(1, 15),
    slate_size=st.integers(1, 4),
    history_length=st.integers(1, 4),
    reward=st.sampled_from(["click", "revenue"]),
    skip_cost=st.floats(0.1, 5.0),
    seed=st.integers(0, 2**31),
)
def test_invariants(n_envs: int, horizon: int, slate_size: int, history_length: int, reward: str,
                    skip_cost: float, seed: int) -> None:
    cfg = ECommerceConfig(n_items=20, n_categories=5, horizon=horizon, slate_size=slate_size,
                          history_length=history_length, reward=reward, skip_cost=skip_cost)  # type: ignore[arg-type]
    batch = BatchedECommerceEnv(num_envs=n_envs, config=cfg)
    obs, _ = batch.reset(seed=seed)
    lay, rng = batch.layout, np.random.default_rng(seed)
    length = np.zeros(n_envs, dtype=int)
    fresh = np.zeros(n_envs, dtype=bool)
    for _ in range(3 * horizon + 2):
        obs, rewards, terminated, truncated, info = batch.step(_actions(rng, cfg, n_envs))
        assert batch.observation_space.contains(obs)
        assert (rewards >= 0).all() and not (terminated & truncated).any()
        if reward == "click":
            assert set(rewards.tolist()) <= {0.0, 1.0} and np.array_equal(rewards, info["click"].astype(float))
        assert (info["purchase"] <= info["click"]).all() and np.array_equal(info["click"], (info["clicked_item"] >= 0) & ~fresh)
        assert np.array_equal(info["_click"], ~fresh)
        length = np.where(fresh, 0, length + 1)
        assert (length <= horizon).all()
        assert np.array_equal(truncated, (length == horizon) & ~terminated)
        t = np.rint(obs[:, lay.step] * horizon)
        counted = np.rint((obs[:, lay.clicks] + obs[:, lay.skips]) * horizon)
        assert np.array_equal(t, length) and np.array_equal(counted, length)
        assert np.array_equal(obs[:, lay.recent_clicks][:, -1] == 1, info["click"] & ~fresh)
        fresh = terminated | truncated


def test_bad_input_names_the_culprit() -> None:
    batch = BatchedECommerceEnv(num_envs=3)
    with pytest.raises(RuntimeError, match=r"step\(\) before reset\(\)"):
        batch.step(np.array([0, 1, 2]))
    batch.reset(seed=0)
    with pytest.raises(ValueError, match=r"invalid actions .*expected an int array of shape \(3,\).*got shape \(2,\)"):
        batch.step(np.array([0, 1]))
    with pytest.raises(TypeError, match=r"invalid actions .*float64.*expected an int array.*got dtype float64"):
        batch.step(np.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match=r"got dtype bool"):
        batch.step(np.array([True, False, True]))
    with pytest.raises(ValueError, match=r"invalid actions .*sub-env 1 got 120, out of range \[0, 119\]"):
        batch.step(np.array([0, 120, 2]))
    with pytest.raises(ValueError, match=r"sub-env 2 got -1"):
        batch.step([0, 1, -1])
    slates = BatchedECommerceEnv(num_envs=2, slate_size=3)
    slates.reset(seed=0)
    with pytest.raises(ValueError, match=r"sub-env 1 got \[4, 5, 4\], which repeats an item"):
        slates.step(np.array([[0, 1, 2], [4, 5, 4]]))
    with pytest.raises(ValueError, match=r"got shape \(2,\)"):
        slates.step(np.array([0, 1]))
    for bad, error in ((0, ValueError), (-2, ValueError), (2**21, ValueError), (2.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match=rf"invalid num_envs {bad!r}.*expected an int in \[1, 1048576\]"):
            BatchedECommerceEnv(num_envs=bad)
    with pytest.raises(ValueError, match=r"invalid num_envs 100000: expected at most"):
        BatchedECommerceEnv(num_envs=100_000, horizon=100_000)
    with pytest.raises(ValueError, match=r"invalid seed"):
        batch.reset(seed=[1, 2])
    with pytest.raises(ValueError, match=r"invalid seed -1"):
        batch.reset(seed=-1)
    with pytest.raises(ValueError, match=r"invalid options .*unknown keys \['user'\]"):
        batch.reset(options={"user": None})
    with pytest.raises(ValueError, match=r"invalid slates"):
        batch.choice_probabilities(np.array([0, 1, 2]))
