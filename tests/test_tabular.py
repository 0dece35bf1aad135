"""Tabular Q-learning and SARSA (chapter 3): Bellman targets, the worked example, convergence to q*,
the cliff, checkpoints and a smoke run on the simulator."""

from __future__ import annotations


import gymnasium as gym
import numpy as np
import pytest

import recrl_lite
from recrl_lite.agents import QLearningAgent, SarsaAgent, TabularConfig, train_tabular
from recrl_lite.agents.tabular import random_argmax
from recrl_lite.envs import DiscretiseObservation
from recrl_lite.envs.toy import TabularMDP, TabularMDPEnv, clickbait_mdp, q_from_v, value_iteration
from recrl_lite.evaluation import evaluate_policy


def chain_mdp(slip: float = 0.1, gamma: float = 0.9) -> TabularMDP:
    """Three live states in a row and a terminal goal. 'right' moves on (or slips and stays, w.p.
    ``slip``), and moving from s2 to the goal pays 1; 'left' moves back and pays nothing."""
    S, A = 4, 2
    P = np.zeros((S, A, S))
    R = np.zeros((S, A))
    for s in range(3):
        P[s, 0, max(s - 1, 0)] = 1.0  # left
        P[s, 1, s + 1] = 1.0 - slip  # right
        P[s, 1, s] += slip
    P[3, :, 3] = 1.0
    R[2, 1] = 1.0 - slip  # expected reward of 'right' in s2
    return TabularMDP(P=P, R=R, terminal=np.array([False, False, False, True]), gamma=gamma)


# ----------------------------------------------------------------------------- the update
@pytest.mark.parametrize("cls", [QLearningAgent, SarsaAgent])
def test_terminated_does_not_bootstrap_but_truncated_does(cls):
    agent = cls(3, 2, alpha=1.0, gamma=0.9, seed=0)
    agent.q[2] = [4.0, 10.0]
    nxt = {"next_action": 1}
    out = agent.update(0, 0, 1.0, 2, terminated=True, truncated=False, **nxt)
    assert out["target"] == 1.0 and agent.q[0, 0] == 1.0
    out = agent.update(0, 1, 1.0, 2, terminated=False, truncated=True, **nxt)
    assert out["target"] == pytest.approx(1.0 + 0.9 * 10.0) and agent.q[0, 1] == pytest.approx(10.0)
    # both flags: terminated wins (gymnasium never sets both, but the absorbing state has value 0)
    out = agent.update(1, 0, 1.0, 2, terminated=True, truncated=True, **nxt)
    assert out["target"] == 1.0


def test_q_learning_maxes_and_sarsa_uses_the_next_action():
    q = QLearningAgent(2, 2, alpha=0.5, gamma=0.5, seed=0)
    s = SarsaAgent(2, 2, alpha=0.5, gamma=0.5, seed=0)
    for agent in (q, s):
        agent.q[1] = [2.0, 6.0]
    out_q = q.update(0, 0, 1.0, 1, False, False, next_action=0)  # Q-learning ignores next_action
    out_s = s.update(0, 0, 1.0, 1, False, False, next_action=0)
    assert out_q["target"] == pytest.approx(1.0 + 0.5 * 6.0) and out_q["td_error"] == pytest.approx(4.0)
    assert out_s["target"] == pytest.approx(1.0 + 0.5 * 2.0) and out_s["td_error"] == pytest.approx(2.0)
    assert q.q[0, 0] == pytest.approx(2.0) and s.q[0, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="next_action"):
        s.update(0, 0, 1.0, 1, False, True)  # truncated still bootstraps, so SARSA needs a'


def test_worked_example_of_audit_e9():
    """α = 0.1, γ = 0.9, Q0 = 0; path s1 -a1-> s2 (r = 5) -a2-> s3 terminal (r = 10), s1 first."""
    agent = QLearningAgent(3, 2, alpha=0.1, gamma=0.9, initial_q=0.0, seed=0)
    s1, s2, s3, a1, a2 = 0, 1, 2, 0, 1
    expected = [(0.5, 1.0), (1.04, 1.9), (1.607, 2.71)]
    for n in range(1, 201):
        agent.update(s1, a1, 5.0, s2, terminated=False, truncated=False)
        agent.update(s2, a2, 10.0, s3, terminated=True, truncated=False)
        got = (agent.q[s1, a1], agent.q[s2, a2])
        if n <= 3:
            assert got == pytest.approx(expected[n - 1], abs=1e-12)
        assert got == pytest.approx((14 - (14 + n) * 0.9**n, 10 * (1 - 0.9**n)), abs=1e-9)  # closed form
    assert got == pytest.approx((14.0, 10.0), abs=1e-6)
    # the order matters: updating s2 first gives 0.59 after episode 1 (AUDIT E9)
    rev = QLearningAgent(3, 2, alpha=0.1, gamma=0.9, seed=0)
    rev.update(s2, a2, 10.0, s3, True, False)
    rev.update(s1, a1, 5.0, s2, False, False)
    assert rev.q[s1, a1] == pytest.approx(0.59)


def test_ties_are_broken_at_random_not_by_np_argmax():
    agent = QLearningAgent(1, 3, seed=0)  # Q(s, ·) = (0, 0, 0)
    picks = np.bincount([agent.greedy_action(0) for _ in range(600)], minlength=3)
    assert np.argmax(agent.q[0]) == 0 and picks.min() > 150  # np.argmax would pick a1 600 times
    agent.q[0] = [0.0, 1.0, 1.0]
    assert set(agent.greedy_action(0) for _ in range(100)) == {1, 2}
    rng = np.random.default_rng(0)
    assert random_argmax(np.array([3.0, 1.0]), rng) == 0
    with pytest.raises(ValueError, match="NaN"):
        random_argmax(np.array([np.nan, 1.0]), rng)


def test_epsilon_schedules():
    assert TabularConfig(epsilon_start=0.2).epsilon_at(50) == 0.2
    exp = TabularConfig(epsilon_schedule="exponential", epsilon_start=1.0, epsilon_end=0.05, epsilon_decay=0.5)
    assert [exp.epsilon_at(k) for k in range(6)] == [1.0, 0.5, 0.25, 0.125, 0.0625, 0.05]
    glie = TabularConfig(epsilon_schedule="inverse", epsilon_start=1.0, epsilon_end=0.0)
    assert [glie.epsilon_at(k) for k in range(4)] == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4])
    agent = SarsaAgent(2, 2, config=glie)
    agent.end_episode()
    agent.end_episode()
    assert agent.epsilon == pytest.approx(1 / 3)


# ----------------------------------------------------------------------------- convergence
def test_q_learning_converges_to_q_star_off_policy():
    """Uniformly random behaviour (ε = 1) and Robbins–Monro steps α_n = 1/n^0.7: Q → q*
    (Watkins & Dayan 1992), the q* of value iteration. Over seeds 0-7 the error after 1000
    episodes is at most 0.022; the tolerance is 0.05 on values up to 0.99."""
    mdp = chain_mdp()
    q_star = q_from_v(mdp, value_iteration(mdp).v)
    env = TabularMDPEnv(mdp, start=None)
    agent = QLearningAgent.for_env(env, alpha=1.0, alpha_power=0.7, gamma=mdp.gamma, epsilon_start=1.0)
    log = train_tabular(agent, env, n_episodes=1000, seed=0)
    live = ~mdp.terminal
    assert np.abs(agent.q[live] - q_star[live]).max() < 0.05, (agent.q[live], q_star[live])
    assert [agent.greedy_action(s) for s in range(3)] == [1, 1, 1] == q_star[live].argmax(axis=1).tolist()
    assert log["terminated"].all() and len(log) == 1000
    # the greedy policy is never executed on purpose, yet it is the one learned (AUDIT E5)
    assert log["epsilon"].eq(1.0).all()


def test_q_learning_learns_the_clickbait_mdp():
    """Chapter 2's clickbait MDP: q*(engaged, ·) = (1 + 0.9·0.5·6, 0.6/(1 - 0.9)) = (3.7, 6).

    Sessions are truncated at 10 steps (about a quarter of them) and the update bootstraps there
    (AUDIT E10). Over seeds 0-7 the error is at most 0.17; treating truncation as termination
    instead gives errors of 1.78 to 2.04."""
    mdp = clickbait_mdp()
    env = TabularMDPEnv(mdp)
    agent = QLearningAgent.for_env(env, alpha=1.0, alpha_power=0.7, gamma=0.9, epsilon_start=0.5)
    log = train_tabular(agent, env, n_episodes=1000, seed=0, max_episode_steps=10)
    assert agent.q[0] == pytest.approx([3.7, 6.0], abs=0.3)
    assert agent.greedy_action(0) == mdp.action("quality")
    assert 0.1 < log["truncated"].mean() < 0.5


def _greedy_path(agent, env) -> tuple[int, float]:
    state, _ = env.reset(seed=0)
    total, steps, done = 0.0, 0, False
    while not done and steps < 100:
        state, reward, terminated, truncated, _ = env.step(agent.greedy_action(state))
        total += reward
        steps += 1
        done = terminated or truncated
    return steps, total


@pytest.mark.parametrize("seed", [0, 1])
def test_cliff_walking_sarsa_safe_q_learning_edge(seed):
    """Sutton & Barto Example 6.6 (ε = 0.1, α = 0.5, γ = 1, 500 episodes)."""
    results = {}
    for cls in (QLearningAgent, SarsaAgent):
        env = gym.make("CliffWalking-v1")
        agent = cls.for_env(env, alpha=0.5, gamma=1.0, epsilon_start=0.1)
        log = train_tabular(agent, env, n_episodes=500, seed=seed)
        results[cls.name] = (_greedy_path(agent, env), log["return"].tail(100).mean())
    (q_steps, q_return), q_online = results["Q-learning"]
    (s_steps, s_return), s_online = results["SARSA"]
    assert (q_steps, q_return) == (13, -13.0)  # the optimal path along the cliff edge
    assert s_steps > 13 and s_return == -s_steps  # a longer path that never falls (-100)
    assert s_online > q_online  # ...and SARSA earns more while exploring


# ----------------------------------------------------------------------------- checkpoints, errors
def test_save_load_round_trip_and_wrong_shape(tmp_path):
    agent = SarsaAgent(5, 3, seed=0)
    agent.q[:] = np.arange(15.0).reshape(5, 3)
    agent.visits[2, 1] = 7
    agent.episode = 11
    agent.save(tmp_path / "sarsa.pt")
    clone = SarsaAgent(5, 3)
    clone.load(tmp_path / "sarsa.pt")
    assert np.array_equal(clone.q, agent.q) and clone.visits[2, 1] == 7 and clone.episode == 11
    assert isinstance(clone.q, np.ndarray)
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4, 3\)"):
        SarsaAgent(4, 3).load(tmp_path / "sarsa.pt")
    with pytest.raises(ValueError, match="SarsaAgent"):
        QLearningAgent(5, 3).load(tmp_path / "sarsa.pt")


def test_bad_input_raises_clear_errors():
    agent = QLearningAgent(4, 2, seed=0)
    with pytest.raises(ValueError, match="Discrete state"):
        agent.act(np.zeros(3, dtype=np.float32))  # AUDIT E10: Q[continuous vector]
    with pytest.raises(ValueError, match=r"invalid state 4: expected an int in \[0, 3\]"):
        agent.act(4)
    with pytest.raises(ValueError, match=r"invalid action 2: expected an int in \[0, 1\]"):
        agent.update(0, 2, 1.0, 1, False, False)
    with pytest.raises(ValueError, match="reward"):
        agent.update(0, 1, float("nan"), 1, False, False)
    with pytest.raises(ValueError, match="alpha=0"):
        TabularConfig(alpha=0)
    with pytest.raises(ValueError, match="epsilon_schedule='linear'"):
        QLearningAgent(4, 2, epsilon_schedule="linear")
    with pytest.raises(ValueError, match="n_states"):
        QLearningAgent(0, 2)
    with pytest.raises(ValueError, match=r"invalid env.observation_space Box\(.*: expected a Discrete space"):
        QLearningAgent.for_env(gym.make(recrl_lite.ENV_ID))
    with pytest.raises(ValueError, match="invalid env.observation_space size 48: expected 4 "):
        train_tabular(QLearningAgent(4, 4), gym.make("CliffWalking-v1"), 1)


def test_train_tabular_stops_envs_without_time_limit():
    env = gym.make("CliffWalking-v1")
    agent = QLearningAgent.for_env(env, epsilon_start=0.0, initial_q=1.0)  # optimistic, greedy: wanders
    log = train_tabular(agent, env, n_episodes=3, seed=0, max_episode_steps=20)
    assert (log["length"] <= 20).all()
    assert list(log.columns) == ["episode", "return", "length", "terminated", "truncated", "epsilon"]


# ----------------------------------------------------------------------------- the simulator
def test_smoke_on_the_simulator_through_discretise_observation():
    env = DiscretiseObservation(gym.make(recrl_lite.ENV_ID))
    for cls in (QLearningAgent, SarsaAgent):
        agent = cls.for_env(env, epsilon_schedule="exponential", epsilon_start=1.0, epsilon_decay=0.9)
        log = train_tabular(agent, env, n_episodes=15, seed=0)
        assert agent.q.shape == (env.observation_space.n, 120)
        assert (log["length"] <= 50).all() and (log["terminated"] | log["truncated"]).all()
        assert log["epsilon"].iloc[-1] == pytest.approx(0.9**14)
        assert np.isfinite(agent.q).all() and np.abs(agent.q).max() > 0
        agent.explore = False
        sessions = evaluate_policy(agent, env, n_users=3, seeds=[0])
        assert len(sessions) == 3


# ----------------------------------------------------------------------------- hostile checkpoints (issue 11)
@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"), (b"not a torch file at all", "not"), (b"PK\x03\x04truncated", "not"),
])
def test_corrupt_checkpoint_files_are_named_as_not_ours(tmp_path, content, reason):
    agent = QLearningAgent(3, 2)
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"not a recrl_lite checkpoint: .*bad\.pt \(.*{reason}"):
        agent.load(path)


def test_truncated_checkpoint_and_wrong_payloads(tmp_path):
    import torch
    agent = QLearningAgent(3, 2)
    agent.save(tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a recrl_lite checkpoint: .*cut.pt"):
        agent.load(tmp_path / "cut.pt")
    for payload in ([1, 2, 3], {"class": "QLearningAgent"}, {"class": "QLearningAgent", "state": [1]}):
        torch.save(payload, tmp_path / "odd.pt")
        with pytest.raises(ValueError, match="not a recrl_lite checkpoint: .*odd.pt"):
            agent.load(tmp_path / "odd.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        agent.load(tmp_path / "missing.pt")


def test_pickled_objects_are_refused_for_safety(tmp_path):
    from fractions import Fraction

    import torch
    # any object of a class: unpickling it imports and calls code named by the file
    torch.save({"class": "QLearningAgent", "state": {"q": Fraction(1, 3)}}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="refused for safety") as error:
        QLearningAgent(3, 2).load(tmp_path / "evil.pt")
    assert "weights_only=False" not in str(error.value)


def test_nan_statistics_do_not_load(tmp_path):
    from recrl_lite.agents import UCB1
    agent = QLearningAgent(3, 2)
    state = agent.state_dict()
    state["q"][1, 0] = np.nan
    with pytest.raises(ValueError, match=r"invalid QLearningAgent checkpoint entry 'q' .*: expected finite values "
                                         r"\(1 of 6 values are NaN or inf\)"):
        agent.load_state_dict(state)
    bandit = UCB1(4)
    bad = bandit.state_dict()
    bad["values"][2] = np.inf
    with pytest.raises(ValueError, match=r"invalid UCB1 checkpoint entry 'values' .*inf.*: expected finite values"):
        bandit.load_state_dict(bad)
