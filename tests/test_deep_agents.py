"""REINFORCE and DQN: estimator correctness, n-step targets, learning on small problems, checkpoints."""

import math

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

import recrl_lite
import recrl_lite.agents
from recrl_lite.agents.dqn import DQNAgent, DQNConfig, NStepReplayBuffer, train_dqn
from recrl_lite.agents.reinforce import (
    ReinforceAgent,
    ReinforceConfig,
    TabularSoftmaxPolicy,
    discounted_returns,
    train_reinforce,
)
from recrl_lite.envs import ECommerceEnv
from recrl_lite.evaluation import LearningCurve, evaluate_policy, session_returns_in_lockstep, summarize

torch.set_num_threads(1)


class Corridor(gym.Env):
    """Walk right for a delayed reward of 1, or take 0.2 now and leave: myopic is wrong for γ > 0.2^(1/4)."""

    def __init__(self, length: int = 5):
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (length,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.config = type("C", (), {"horizon": length})()

    def _obs(self):
        o = np.zeros(self.length, dtype=np.float32)
        o[self.pos] = 1.0
        return o

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0
        return self._obs(), {}

    def step(self, action):
        if action == 0:
            return self._obs(), 0.2, True, False, {}
        self.pos += 1
        if self.pos == self.length - 1:
            return self._obs(), 1.0, True, False, {}
        return self._obs(), 0.0, False, False, {}


def test_softmax_score_function_matches_finite_differences():
    rng = np.random.default_rng(0)
    policy = TabularSoftmaxPolicy(3, 4, rng.normal(size=(3, 4)))
    for s, a in [(0, 1), (2, 3)]:
        numeric = np.zeros_like(policy.theta)
        for idx in np.ndindex(policy.theta.shape):
            for sign in (1, -1):
                shifted = TabularSoftmaxPolicy(3, 4, policy.theta.copy())
                shifted.theta[idx] += sign * 1e-6
                numeric[idx] += sign * math.log(shifted.probabilities(s)[a]) / 2e-6
        np.testing.assert_allclose(policy.grad_log_prob(s, a), numeric, atol=1e-6)


@pytest.mark.parametrize("baseline", [0.0, 0.5])
def test_reinforce_estimate_is_unbiased_on_a_softmax_bandit(baseline):
    """E[(R - b) ∇ln π(A)] = π_b (μ_b - J) for any constant baseline b (AUDIT, ch 3)."""
    rng = np.random.default_rng(1)
    mu = np.array([0.2, 0.5, 0.9])
    policy = TabularSoftmaxPolicy(1, 3, np.array([[0.3, -0.2, 0.1]]))
    pi = policy.probabilities(0)
    exact = pi * (mu - pi @ mu)
    n = 40_000
    actions = rng.choice(3, n, p=pi)
    rewards = (rng.random(n) < mu[actions]).astype(float)
    scores = -np.tile(pi, (n, 1))
    scores[np.arange(n), actions] += 1.0
    samples = (rewards - baseline)[:, None] * scores
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(mean - exact) < 4 * se), (mean, exact, se)


def test_discounted_returns():
    r = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(discounted_returns(r, 0.5), [[1.5, 1.0, 2.0], [0.5, 1.0, 0.0]])


def test_n_step_buffer_targets_for_termination_and_truncation():
    buf = NStepReplayBuffer(100, 1, n_step=3, gamma=0.5, n_envs=2)
    obs = [np.array([float(i)]) for i in range(10)]
    for t in range(4):  # env 0: four steps then termination
        buf.add(0, obs[t], t, 1.0, obs[t + 1], terminated=t == 3, truncated=False)
    ret, disc = buf.ret[: buf.size], buf.discount[: buf.size]
    # first transition completes after 3 steps: 1 + .5 + .25, bootstrap γ^3 from s_3
    assert ret[0] == pytest.approx(1.75) and disc[0] == pytest.approx(0.125) and buf.next_obs[0, 0] == 3.0
    # the episode's tail: shorter returns, no bootstrap after termination
    np.testing.assert_allclose(ret[1:4], [1.75, 1.5, 1.0])
    np.testing.assert_allclose(disc[1:4], 0.0)
    size = buf.size
    for t in range(2):  # env 1: truncated after two steps, still bootstraps
        buf.add(1, obs[t], t, 1.0, obs[t + 1], terminated=False, truncated=t == 1)
    np.testing.assert_allclose(buf.ret[size : buf.size], [1.5, 1.0])
    np.testing.assert_allclose(buf.discount[size : buf.size], [0.25, 0.5])


def test_dqn_learns_a_delayed_reward():
    env = Corridor()
    cfg = DQNConfig(total_steps=6_000, n_envs=4, learning_starts=200, batch_size=64, n_step=3,
                    target_update_interval=50, exploration_fraction=0.5, gamma=0.9, hidden=(32,), learning_rate=3e-3)
    agent = DQNAgent(env.observation_space, env.action_space, cfg, seed=0)
    train_dqn(agent, Corridor, seed=0)
    q = agent.q_values(np.eye(5, dtype=np.float32)[:4])
    assert (q.argmax(1) == 1).all(), q  # walk on although leaving pays now
    assert q[0, 1] == pytest.approx(0.9**3, abs=0.15)


def test_reinforce_learns_a_delayed_reward():
    cfg = ReinforceConfig(n_iterations=150, batch_episodes=16, learning_rate=1e-2, gamma=1.0, hidden=(32,))
    env = Corridor()
    agent = ReinforceAgent(env.observation_space, env.action_space, cfg, seed=0)
    history = train_reinforce(agent, Corridor, seed=0)
    assert history["episode_return"].iloc[-20:].mean() > 0.9
    agent.deterministic = True
    assert agent.act(np.eye(5, dtype=np.float32)[0]) == 1


@pytest.mark.parametrize("algo", ["reinforce", "dqn"])
def test_smoke_run_on_the_simulator_beats_nothing_broken(algo):
    make = lambda: gym.make(recrl_lite.ENV_ID)  # noqa: E731
    env = make()
    if algo == "reinforce":
        agent = ReinforceAgent(env.observation_space, env.action_space, ReinforceConfig(n_iterations=3, batch_episodes=4), seed=0)
        history = train_reinforce(agent, make, seed=0)
        assert len(history) == 3 and history["env_steps"].iloc[-1] > 0
    else:
        agent = DQNAgent(env.observation_space, env.action_space, DQNConfig(total_steps=600, learning_starts=200, n_envs=4), seed=0)
        history = train_dqn(agent, make, seed=0)
        assert agent.gradient_steps > 0 and len(history) > 0
    summary = summarize(evaluate_policy(agent, env, n_users=5, seeds=[0]), 120)
    assert 0 <= summary.loc["return", "mean"] <= 50


@pytest.mark.parametrize("cls,config", [(ReinforceAgent, ReinforceConfig(hidden=(16,))), (DQNAgent, DQNConfig(hidden=(16,)))])
def test_checkpoint_round_trip_and_clear_errors(tmp_path, cls, config):
    env = ECommerceEnv()
    agent = cls(env.observation_space, env.action_space, config, seed=0)
    obs, _ = env.reset(seed=0)
    agent.save(tmp_path / "agent.pt")
    clone = cls(env.observation_space, env.action_space, config, seed=1)
    clone.load(tmp_path / "agent.pt")
    for a, b in zip(agent.net.parameters(), clone.net.parameters()):
        assert torch.equal(a, b)
    # another env (other catalogue size): refused, naming the shapes
    small = ECommerceEnv(n_items=30)
    other = cls(small.observation_space, small.action_space, config, seed=0)
    with pytest.raises(ValueError, match="n_actions"):
        other.load(tmp_path / "agent.pt")
    # same env, other architecture: refused, naming the layer shapes
    wide = cls(env.observation_space, env.action_space, type(config)(hidden=(32,)), seed=0)
    with pytest.raises(ValueError, match="do not fit"):
        wide.load(tmp_path / "agent.pt")


def test_agents_reject_non_discrete_actions():
    env = ECommerceEnv(slate_size=2)
    for cls in (ReinforceAgent, DQNAgent):
        with pytest.raises(ValueError, match="Discrete"):
            cls(env.observation_space, env.action_space)


def test_pluggable_encoder_must_declare_its_width():
    env = ECommerceEnv()
    bare = torch.nn.Sequential(torch.nn.Linear(31, 16), torch.nn.ReLU())
    with pytest.raises(ValueError, match="output_dim"):
        DQNAgent(env.observation_space, env.action_space, encoder=bare)
    bare.output_dim = 16  # declared: the Q head is sized by it
    agent = DQNAgent(env.observation_space, env.action_space, encoder=bare, seed=0)
    assert agent.net.q_head.in_features == 16
    obs, _ = env.reset(seed=0)
    assert 0 <= agent.act(obs) < 120


def test_invalid_configs():
    with pytest.raises(ValueError, match="baseline"):
        ReinforceConfig(baseline="median")
    with pytest.raises(ValueError, match="epsilon"):
        DQNConfig(epsilon_start=0.1, epsilon_end=0.5)
    with pytest.raises(ValueError, match="total_steps"):
        ReinforceConfig(total_steps=0)


def test_reinforce_step_budget_stops_at_the_first_iteration_past_it():
    make = lambda: gym.make(recrl_lite.ENV_ID)  # noqa: E731
    env = make()
    agent = ReinforceAgent(env.observation_space, env.action_space,
                           ReinforceConfig(n_iterations=1000, batch_episodes=4, total_steps=200), seed=0)
    log = train_reinforce(agent, make, seed=0)
    assert log["env_steps"].iloc[-1] >= 200 > log["env_steps"].iloc[-2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_agents_run_on_cuda():
    env = ECommerceEnv()
    obs, _ = env.reset(seed=0)
    for cls in (ReinforceAgent, DQNAgent):
        agent = cls(env.observation_space, env.action_space, seed=0, device="cuda")
        assert 0 <= agent.act(obs) < 120


class _CycleItems(recrl_lite.agents.Policy):
    """Deterministic numpy policy with act_batch: item = (step index * 7) mod n."""

    def __init__(self, env):
        super().__init__()
        self.layout, self.horizon, self.n = env.unwrapped.layout, env.unwrapped.config.horizon, env.action_space.n

    def act_batch(self, observations):
        steps = np.rint(observations[:, self.layout.step] * self.horizon).astype(int).ravel()
        return (steps * 7) % self.n

    def act(self, observation):
        return int(self.act_batch(observation[None])[0])


def test_lockstep_evaluation_meets_the_users_of_evaluate_policy():
    make = lambda: gym.make(recrl_lite.ENV_ID)  # noqa: E731
    policy = _CycleItems(make())
    lockstep = session_returns_in_lockstep(policy, [make() for _ in range(12)], seed=3)
    one_by_one = evaluate_policy(policy, make(), n_users=12, seeds=[3])["return"].to_numpy()
    assert np.array_equal(lockstep, one_by_one)
    with pytest.raises(ValueError, match="act_batch"):
        session_returns_in_lockstep(recrl_lite.agents.RandomPolicy(120), [make()], seed=0)


@pytest.mark.parametrize("algo", ["dqn", "reinforce"])
def test_learning_curve_callback_does_not_change_training(algo):
    make = lambda: gym.make(recrl_lite.ENV_ID)  # noqa: E731
    env = make()

    def train(callback):
        if algo == "dqn":
            agent = DQNAgent(env.observation_space, env.action_space,
                             DQNConfig(total_steps=1_600, learning_starts=400, n_envs=4), seed=1)
            log = train_dqn(agent, make, seed=1, callback=callback)
        else:
            agent = ReinforceAgent(env.observation_space, env.action_space, ReinforceConfig(n_iterations=4, batch_episodes=4), seed=1)
            log = train_reinforce(agent, make, seed=1, callback=callback)
        weights = [p.detach().clone() for p in agent.net.parameters()]
        return log.drop(columns="seconds"), weights, agent.rng.random()

    every = 400 if algo == "dqn" else 40
    curve = LearningCurve(make, n_users=5, seed=99, every=every,
                          modes=("greedy",) if algo == "dqn" else ("greedy", "sampled"))
    log_a, weights_a, draw_a = train(None)
    log_b, weights_b, draw_b = train(curve)
    pd.testing.assert_frame_equal(log_a, log_b)
    assert all(torch.equal(a, b) for a, b in zip(weights_a, weights_b)) and draw_a == draw_b
    frame = curve.frame
    assert frame["env_steps"].iloc[0] == 0 and frame["env_steps"].is_monotonic_increasing
    assert set(frame["mode"]) == set(curve.modes) and len(frame) >= 3 * len(curve.modes)
    windows = frame["env_steps"].unique() // every  # at most one checkpoint per window of `every` steps
    assert (np.diff(windows) >= 1).all()


def test_learning_curve_rejects_bad_settings():
    make = lambda: gym.make(recrl_lite.ENV_ID)  # noqa: E731
    with pytest.raises(ValueError, match="modes"):
        LearningCurve(make, modes=("best",))
    with pytest.raises(ValueError, match="n_users"):
        LearningCurve(make, n_users=0)
    env = make()
    dqn = DQNAgent(env.observation_space, env.action_space, DQNConfig(total_steps=16), seed=0)
    with pytest.raises(ValueError, match="sampled"):
        LearningCurve(make, n_users=2, modes=("sampled",))(dqn, 0)
