"""The reward model r_hat(s, a) and the logged transitions it is fitted on."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import recrl_lite
from recrl_lite.agents import RandomPolicy, SoftmaxBehaviourPolicy
from recrl_lite.data import Transitions, log_transitions
from recrl_lite.models.reward import RewardModel, RewardModelPolicy, fit_reward_model, log_loss, probability_log_loss

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def logged():
    env = gym.make(recrl_lite.ENV_ID)
    return env, log_transitions(env, RandomPolicy(120), 6000, seed=0)


def test_log_transitions_records_whole_sessions_with_ground_truth(logged):
    env, log = logged
    n = len(log)
    assert n >= 6000
    assert log.observations.shape == log.next_observations.shape == (n, env.observation_space.shape[0])
    for name in ("actions", "rewards", "clicks", "propensities", "true_click_probability", "terminated", "truncated", "session"):
        assert getattr(log, name).shape == (n,), name
    # every session ends exactly once, on its last row, and sessions are numbered in order
    ends = log.terminated | log.truncated
    last_of_session = np.r_[log.session[1:] != log.session[:-1], True]
    np.testing.assert_array_equal(ends, last_of_session)
    assert log.session[0] == 0 and np.all(np.diff(log.session) >= 0)
    # the next observation of a step is the observation of the following step, within a session
    same = ~ends[:-1]
    np.testing.assert_array_equal(log.next_observations[:-1][same], log.observations[1:][same])
    assert np.isnan(log.propensities).all()  # RandomPolicy reports none
    assert ((log.true_click_probability > 0) & (log.true_click_probability < 1)).all()
    np.testing.assert_array_equal(log.rewards, log.clicks)  # the default reward is the click
    # clicks are Bernoulli draws of the true probabilities: the means agree within 4 standard errors
    se = np.sqrt(np.mean(log.true_click_probability * (1 - log.true_click_probability)) / n)
    assert abs(log.clicks.mean() - log.true_click_probability.mean()) < 4 * se


def test_log_transitions_is_seeded_and_reports_propensities():
    env = gym.make(recrl_lite.ENV_ID)
    a = log_transitions(env, SoftmaxBehaviourPolicy(env), 500, seed=1)
    b = log_transitions(env, SoftmaxBehaviourPolicy(env), 500, seed=1)
    c = log_transitions(env, SoftmaxBehaviourPolicy(env), 500, seed=2)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.observations, b.observations)
    assert not np.array_equal(a.actions[:100], c.actions[:100])
    assert ((a.propensities >= 0.1 / 120 - 1e-12) & (a.propensities <= 1)).all()


def test_split_keeps_sessions_whole(logged):
    _, log = logged
    train, test = log.split(0.8)
    assert len(train) + len(test) == len(log)
    assert train.session.max() < test.session.min()
    assert isinstance(train, Transitions)
    with pytest.raises(ValueError, match="train_fraction"):
        log.split(1.0)


def test_reward_model_shapes_and_all_items_agree(logged):
    env, log = logged
    torch.manual_seed(0)
    model = RewardModel(env.observation_space, 120)
    obs = torch.as_tensor(log.observations[:5])
    every = model.all_items(obs)
    assert every.shape == (5, 120)
    for a in (0, 7, 119):
        pair = model(obs, torch.full((5,), a, dtype=torch.int64))
        torch.testing.assert_close(pair, every[:, a])
    state_only = RewardModel(env.observation_space, 120, use_action=False)
    scores = state_only.all_items(obs)
    assert torch.all(scores == scores[:, :1])  # without the action, every item gets the same score


def test_the_item_carries_the_signal(logged):
    """Under uniform logging, r(s, a) beats a constant rate on held-out sessions; r(s) does not."""
    env, log = logged
    train, test = log.split(0.8)
    constant = probability_log_loss(np.full(len(test), train.clicks.mean()), test.clicks)
    losses = {}
    for use_action in (False, True):
        torch.manual_seed(0)
        model = RewardModel(env.observation_space, 120, use_action=use_action)
        history = fit_reward_model(model, train.observations, train.actions, train.clicks, epochs=8)
        assert list(history.columns) == ["epoch", "loss"] and len(history) == 8
        losses[use_action] = log_loss(model, test.observations, test.actions, test.clicks)
    assert losses[True] < constant - 0.02
    assert losses[False] > constant - 0.01


def test_reward_model_policy_is_greedy_and_checkpoints(tmp_path, logged):
    env, log = logged
    torch.manual_seed(0)
    policy = RewardModelPolicy(RewardModel(env.observation_space, 120))
    obs = log.observations[0]
    assert policy.act(obs) == int(np.argmax(policy.scores(obs)))
    assert policy.scores(obs).shape == (120,) and ((policy.scores(obs) > 0) & (policy.scores(obs) < 1)).all()
    policy.save(tmp_path / "rm.pt")
    torch.manual_seed(1)
    other = RewardModelPolicy(RewardModel(env.observation_space, 120))
    other.load(tmp_path / "rm.pt")
    np.testing.assert_array_equal(other.scores(obs), policy.scores(obs))
    with pytest.raises(ValueError, match=r"invalid RewardModelPolicy checkpoint meta \{.*'n_actions': 120\}: "
                                         r"expected \{.*'n_actions': 50\}"):
        RewardModelPolicy(RewardModel(env.observation_space, 50)).load(tmp_path / "rm.pt")


def test_bad_input_raises_clear_errors(logged):
    env, log = logged
    model = RewardModel(env.observation_space, 120)
    with pytest.raises(ValueError, match=r"\[0, 119\]"):
        model(torch.as_tensor(log.observations[:2]), torch.tensor([0, 120]))
    with pytest.raises(ValueError, match="integer item indices"):
        model(torch.as_tensor(log.observations[:2]), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="binary clicks"):
        fit_reward_model(model, log.observations[:4], log.actions[:4], np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=r"invalid actions Tensor\(\[.*\], dtype=torch.int64\): expected shape \(4,\), one action per"):
        fit_reward_model(model, log.observations[:4], log.actions[:3], log.clicks[:4])
    with pytest.raises(ValueError, match="strictly between"):
        probability_log_loss(np.array([0.0, 0.5]), np.array([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        probability_log_loss(np.array([0.5]), np.array([0, 1]))
    with pytest.raises(ValueError, match="n_steps"):
        log_transitions(env, RandomPolicy(120), 0)
