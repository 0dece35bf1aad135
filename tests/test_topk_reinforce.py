"""Top-K off-policy corrected REINFORCE (Chen et al. 2019; chapter 5).

Every expectation here is computed independently of the implementation: finite differences of the
objectives whose gradients the estimators claim to follow, closed forms derived by hand (naive
pi ∝ beta·r, the KKT point of the top-K objective), brute force over a simplex grid, and the
simulator's ground truth.
"""

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from recrl_lite.agents.base import Policy, unwrap
from recrl_lite.agents.baselines import SoftmaxBehaviourPolicy
from recrl_lite.agents.topk_reinforce import (
    OffPolicyReinforceAgent,
    OffPolicyReinforceConfig,
    importance_weights,
    off_policy_loss,
    section6_expected_gradient,
    section6_fixed_point,
    section6_sampled_simulation,
    section6_setting,
    section6_simulation,
    session_returns,
    topk_multiplier,
    train_offpolicy_reinforce,
)
from recrl_lite.data import log_transitions
from recrl_lite.envs import ECommerceEnv

torch.set_num_threads(1)


def alpha(pi, K):
    """P(item on a page of K draws without duplicates), the paper's α = 1 - (1 - π)^K."""
    return 1.0 - (1.0 - pi) ** K


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


# ----------------------------------------------------------------------------- the estimator
@pytest.mark.parametrize("K", [1, 2, 3, 16])
def test_topk_multiplier_is_the_derivative_of_alpha(K):
    pi = np.random.default_rng(K).uniform(0.01, 0.99, 50)
    h = 1e-6
    numeric = (alpha(pi + h, K) - alpha(pi - h, K)) / (2 * h)
    np.testing.assert_allclose(topk_multiplier(pi, K), numeric, rtol=1e-6, atol=1e-8)
    # the limits the paper lists under eq. 8, and torch agrees with numpy
    assert topk_multiplier(np.array([0.0]), K)[0] == K
    assert topk_multiplier(np.array([1.0]), K)[0] == (1.0 if K == 1 else 0.0)
    np.testing.assert_allclose(topk_multiplier(torch.tensor(pi), K).numpy(), topk_multiplier(pi, K))


def _batch(seed, n=8, n_actions=7):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, n_actions))
    actions = rng.integers(0, n_actions, n)
    beta = rng.uniform(0.05, 0.6, n)
    returns = rng.uniform(-1.0, 3.0, n)
    return logits, actions, beta, returns


def _surrogate_grad(logits, actions, beta, returns, **kwargs):
    z = torch.tensor(logits, requires_grad=True)
    log_pi = torch.log_softmax(z, 1)[torch.arange(len(actions)), torch.as_tensor(actions)]
    loss = off_policy_loss(log_pi, log_pi.exp().detach(), torch.tensor(beta), torch.tensor(returns), **kwargs)
    loss.backward()
    return z.grad.numpy()


@pytest.mark.parametrize("seed,K", [(0, 1), (1, 2), (2, 5), (3, 16)])
def test_surrogate_gradient_is_minus_the_gradient_of_the_page_reward_over_beta(seed, K):
    """Uncapped, λ_K (π/β) R ∇log π = ∇(α(π) R / β): finite differences of -mean_i R_i α_i / β_i."""
    logits, actions, beta, returns = _batch(seed)

    def objective(z):
        pi = np.array([softmax(row)[a] for row, a in zip(z, actions)])
        return -np.mean(returns * alpha(pi, K) / beta)

    numeric = np.zeros_like(logits)
    h = 1e-6
    for idx in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (objective(up) - objective(down)) / (2 * h)
    np.testing.assert_allclose(_surrogate_grad(logits, actions, beta, returns, K=K), numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("K,cap", [(1, 1.5), (3, 0.7), (2, None)])
def test_surrogate_gradient_matches_the_softmax_jacobian_with_capping(K, cap):
    """With a cap the weight is min(π/β, c)·λ_K, times R, times ∂log π_a/∂z_j = 1[a=j] - π_j."""
    logits, actions, beta, returns = _batch(10 + K)
    expected = np.zeros_like(logits)
    capped = 0
    for i, (z, a) in enumerate(zip(logits, actions)):
        pi = softmax(z)
        ratio = pi[a] / beta[i]
        capped += cap is not None and ratio > cap
        w = (ratio if cap is None else min(ratio, cap)) * K * (1 - pi[a]) ** (K - 1)
        expected[i] = -w * returns[i] * (np.eye(len(z))[a] - pi) / len(actions)
    assert cap is None or capped > 0  # the cap is exercised
    np.testing.assert_allclose(_surrogate_grad(logits, actions, beta, returns, K=K, cap=cap), expected, rtol=1e-9, atol=1e-12)


def test_expected_update_over_beta_is_the_gradient_of_the_right_objective():
    """Σ_a β(a)·(per-sample update at a) = ∇ of Σ r α (top-K), Σ π r (K=1), Σ β r log π (naive)."""
    rng = np.random.default_rng(5)
    n = 6
    z0, beta, r = rng.normal(0, 1, n), rng.dirichlet(np.ones(n)), rng.uniform(0.5, 3, n)

    def enumerated_grad(**kwargs):
        grads = _surrogate_grad(np.tile(z0, (n, 1)), np.arange(n), beta, r, **kwargs)  # row a: logged action a
        return -(beta[:, None] * grads * n).sum(0)  # undo the batch mean, weight by β, ascend

    def fd(objective):
        h = 1e-6
        return np.array([(objective(z0 + h * e) - objective(z0 - h * e)) / (2 * h) for e in np.eye(n)])

    np.testing.assert_allclose(enumerated_grad(K=3), fd(lambda z: np.sum(r * alpha(softmax(z), 3))), rtol=1e-6)
    np.testing.assert_allclose(enumerated_grad(K=1), fd(lambda z: np.sum(r * softmax(z))), rtol=1e-6)
    np.testing.assert_allclose(enumerated_grad(correction="none"), fd(lambda z: np.sum(beta * r * np.log(softmax(z)))),
                               rtol=1e-6)


def test_k1_is_the_standard_correction_and_capping_caps():
    pi = np.array([0.05, 0.3, 0.9, 0.5])
    beta = np.array([0.5, 0.1, 0.3, 0.5])
    np.testing.assert_allclose(importance_weights(pi, beta), pi / beta)
    np.testing.assert_allclose(importance_weights(pi, beta, cap=2.0), [0.1, 2.0, 2.0, 1.0])
    np.testing.assert_allclose(importance_weights(torch.tensor(pi), torch.tensor(beta), cap=2.0).numpy(), [0.1, 2.0, 2.0, 1.0])
    log_pi = torch.tensor(np.log(pi), requires_grad=True)
    R = torch.tensor([1.0, 2.0, 0.5, -1.0], dtype=torch.float64)
    loss = off_policy_loss(log_pi, None, torch.tensor(beta), R, K=1)
    assert loss.item() == pytest.approx(-np.mean(pi / beta * R.numpy() * np.log(pi)))
    # normalised importance sampling divides the weights by their batch mean
    nis = off_policy_loss(log_pi, None, torch.tensor(beta), R, K=1, normalize=True)
    assert nis.item() * np.mean(pi / beta) == pytest.approx(loss.item())
    # the naive loss ignores β
    assert off_policy_loss(log_pi, None, torch.tensor(beta), R, correction="none").item() == pytest.approx(
        -np.mean(R.numpy() * np.log(pi)))
    # the weight is not differentiated: passing π with a gradient gives the same update
    g1 = torch.autograd.grad(off_policy_loss(log_pi, log_pi.exp(), torch.tensor(beta), R, K=2), log_pi)[0]
    g2 = torch.autograd.grad(off_policy_loss(log_pi, log_pi.exp().detach(), torch.tensor(beta), R, K=2), log_pi)[0]
    torch.testing.assert_close(g1, g2)


def test_bad_estimator_inputs_raise():
    pi, beta = np.array([0.2, 0.5]), np.array([0.5, 0.5])
    for K in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="K"):
            topk_multiplier(pi, K)
    for cap in (0, -1.0):
        with pytest.raises(ValueError, match="cap"):
            importance_weights(pi, beta, cap=cap)
    for bad in (np.array([0.0, 0.5]), np.array([-0.1, 0.5]), np.array([np.nan, 0.5]), np.array([1.2, 0.5])):
        with pytest.raises(ValueError, match="beta"):
            importance_weights(pi, bad)
    log_pi = torch.log(torch.tensor(pi))
    with pytest.raises(ValueError, match="correction='none'"):
        off_policy_loss(log_pi, None, torch.tensor(beta), torch.ones(2), K=2, correction="none")
    with pytest.raises(ValueError, match=r"invalid beta shape \(1,\): expected \(2,\)"):
        off_policy_loss(log_pi, None, torch.tensor([0.5]), torch.ones(2))
    with pytest.raises(ValueError, match="K"):
        OffPolicyReinforceConfig(K=0)
    with pytest.raises(ValueError, match="cap"):
        OffPolicyReinforceConfig(cap=0.0)


# ----------------------------------------------------------------------------- §6 simulations
@pytest.mark.parametrize("correction,K,setting", [("none", None, "fig2"), ("standard", None, "fig3"),
                                                  ("topk", 2, "fig3"), ("topk", 4, "fig2")])
def test_section6_expected_gradient_is_the_gradient_of_the_objective(correction, K, setting):
    r, beta = section6_setting(setting)
    objective = {"none": lambda z: np.sum(beta * r * np.log(softmax(z))),
                 "standard": lambda z: np.sum(r * softmax(z)),
                 "topk": lambda z: np.sum(r * alpha(softmax(z), K))}[correction]
    theta = np.random.default_rng(1).normal(0, 1, 10)
    h = 1e-6
    numeric = np.array([(objective(theta + h * e) - objective(theta - h * e)) / (2 * h) for e in np.eye(10)])
    np.testing.assert_allclose(section6_expected_gradient(theta, correction, K, setting=setting), numeric, rtol=1e-6,
                               atol=1e-9)


def test_section6_settings_are_the_papers():
    r2, b2 = section6_setting("fig2")
    np.testing.assert_array_equal(r2, np.arange(1, 11))  # r(a_i) = i
    assert np.all(np.diff(b2) < 0)  # skewed towards the items of least reward
    r3, b3 = section6_setting("fig3")
    np.testing.assert_array_equal(r3, [10, 9, 1, 1, 1, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(b3, 0.1)


def test_figure2_naive_imitates_beta_and_the_correction_finds_the_best_item():
    r, beta = section6_setting("fig2")
    by_hand = np.arange(1, 11) * (11 - np.arange(1, 11)) / 220.0  # β ∝ 11 - i: π ∝ i(11 - i), Σ = 220
    np.testing.assert_allclose(section6_fixed_point("none", setting="fig2"), by_hand, rtol=1e-12)
    naive = section6_simulation("none", setting="fig2").probabilities
    np.testing.assert_allclose(naive, by_hand, atol=1e-3)
    assert set(np.argsort(naive)[-2:]) == {4, 5}  # the middle items, not the best one
    corrected = section6_simulation("standard", setting="fig2").probabilities
    assert corrected.argmax() == 9 and corrected[9] > 0.95
    np.testing.assert_array_equal(section6_fixed_point("standard", setting="fig2"), np.eye(10)[9])


def test_figure3_topk_keeps_the_second_best_item():
    """KKT of max Σ r(1-(1-π)^2): 2r_a(1-π_a) = μ on {a1, a2}: π = (10/19, 9/19, 0, ...)."""
    by_hand = np.r_[10 / 19, 9 / 19, np.zeros(8)]
    np.testing.assert_allclose(section6_fixed_point("topk", 2, setting="fig3"), by_hand, atol=1e-12)
    topk = section6_simulation("topk", 2, setting="fig3").probabilities
    standard = section6_simulation("standard", setting="fig3").probabilities
    np.testing.assert_allclose(topk, by_hand, atol=2e-3)
    assert topk[1] > 0.1 and topk[0] > topk[1] > topk[2:].max()  # order kept, mass on the runner-up
    assert standard[0] > 0.95 and standard[1] < 0.05
    # K = 1 is the standard correction
    np.testing.assert_allclose(section6_simulation("topk", 1, setting="fig3").probabilities, standard, rtol=1e-12)


@pytest.mark.parametrize("K,setting", [(2, "fig2"), (3, "fig3"), (16, "fig3"), (16, "fig2")])
def test_topk_fixed_point_satisfies_kkt_and_is_where_the_exact_flow_goes(K, setting):
    r, _ = section6_setting(setting)
    pi = section6_fixed_point("topk", K, setting=setting)
    assert pi.sum() == pytest.approx(1.0) and (pi >= 0).all()
    marginal = r * K * (1 - pi) ** (K - 1)  # ∂J_K/∂π_a
    on = pi > 1e-12
    np.testing.assert_allclose(marginal[on], marginal[on].max(), rtol=1e-9)
    assert (marginal[~on] <= marginal[on].max() + 1e-9).all()
    flow = section6_simulation("topk", K, setting=setting, n_steps=20_000, lr=0.1, record_every=1000).probabilities
    np.testing.assert_allclose(flow, pi, atol=3e-3)


def test_topk_fixed_point_is_the_brute_force_maximiser_on_a_simplex_grid():
    r = np.array([3.0, 2.0, 0.5])
    beta = np.full(3, 1 / 3)
    grid = np.array([(i, j, 400 - i - j) for i in range(401) for j in range(401 - i)]) / 400.0
    for K in (2, 3, 5):
        best = grid[np.argmax((r * alpha(grid, K)).sum(1))]
        np.testing.assert_allclose(section6_fixed_point("topk", K, rewards=r, beta=beta), best, atol=2.5e-3)


def test_capping_makes_the_standard_limit_depend_on_beta_again():
    """Capped at c, an item with π > cβ has weight c: the fixed point is π_j = cβ_j r_j / S for the capped
    items and r_j = S for the uncapped ones with mass, S = Σ min(π, cβ) r. With c = 2 (cβ = 0.2) both good
    items are capped: π ∝ r on them, (10/19, 9/19); with c = 5, only a1 is: S = 9, π = (5/9, 4/9)."""
    for cap, expected in ((2.0, [10 / 19, 9 / 19]), (5.0, [5 / 9, 4 / 9])):
        pi = section6_simulation("standard", setting="fig3", cap=cap, n_steps=40_000, record_every=1000).probabilities
        np.testing.assert_allclose(pi[:2], expected, atol=3e-3)
    with pytest.raises(ValueError, match="cap"):
        section6_fixed_point("standard", setting="fig3", cap=2.0)


def test_sampled_simulation_reproduces_the_figures_over_seeds():
    by_hand = np.arange(1, 11) * (11 - np.arange(1, 11)) / 220.0
    for seed in range(5):
        naive = section6_sampled_simulation("none", setting="fig2", seed=seed, n_steps=3000).probabilities
        assert np.abs(naive - by_hand).max() < 0.03
        standard = section6_sampled_simulation("standard", setting="fig3", seed=seed, n_steps=3000).probabilities
        topk = section6_sampled_simulation("topk", 2, setting="fig3", seed=seed, n_steps=3000).probabilities
        assert standard[0] > 0.95 and standard[1] < 0.05
        assert topk[1] > 0.1 and topk[:2].sum() > 0.98


def test_one_sampled_step_is_unbiased():
    """From θ = 0 one SGD step is lr times the sampled gradient; its mean over seeds is the exact update."""
    r, beta = section6_setting("fig2")
    exact = section6_expected_gradient(np.zeros(10), "topk", 2, setting="fig2")
    steps = np.array([section6_sampled_simulation("topk", 2, setting="fig2", n_steps=1, lr=1.0, batch_size=50,
                                                  seed=s).theta for s in range(400)])
    se = steps.std(0, ddof=1) / np.sqrt(len(steps))
    assert (np.abs(steps.mean(0) - exact) < 4 * se + 1e-12).all()


def test_bad_simulation_inputs_raise():
    with pytest.raises(ValueError, match="correction"):
        section6_simulation("ips")
    with pytest.raises(ValueError, match="K"):
        section6_simulation("standard", K=2)
    with pytest.raises(ValueError, match="K"):
        section6_simulation("topk", K=0)
    with pytest.raises(ValueError, match="cap"):
        section6_simulation("standard", cap=-1.0)
    with pytest.raises(ValueError, match="beta"):
        section6_simulation("standard", beta=np.r_[0.0, np.full(9, 1 / 9)])
    with pytest.raises(ValueError, match="n_steps"):
        section6_simulation("standard", n_steps=0)
    with pytest.raises(ValueError, match="best reward"):
        section6_fixed_point("standard", rewards=np.ones(10), setting="fig3")


# ----------------------------------------------------------------------------- the agent
class AntiUtilityBehaviour(Policy):
    """A skewed logger: favours the items the user is *least* likely to click, plus ε uniform."""

    name = "anti-utility"

    def __init__(self, env, temperature=1.0, epsilon=0.3):
        super().__init__()
        self.env, self.temperature, self.epsilon = unwrap(env), temperature, epsilon

    def act(self, observation):
        z = -self.env.click_utilities() / self.temperature
        p = np.exp(z - z.max())
        p = (1 - self.epsilon) * p / p.sum() + self.epsilon / p.size
        action = min(int(np.searchsorted(np.cumsum(p), self.rng.random(), side="right")), p.size - 1)
        self.last_propensity = float(p[action])
        return action


def expected_click_rate(agent, config, n_sessions, seed):
    """Mean true click probability of the agent's recommendations over fresh sessions."""
    envs = [ECommerceEnv(config) for _ in range(n_sessions)]
    agent.seed(seed)
    obs = np.stack([e.reset(seed=int(s))[0] for e, s in zip(envs, np.random.SeedSequence(seed).generate_state(n_sessions))])
    live, total, steps = list(range(n_sessions)), 0.0, 0
    while live:
        still = []
        for i, a in zip(live, agent.act_batch(obs[live]).tolist()):
            total += envs[i].click_probabilities()[a]
            steps += 1
            obs[i], _, terminated, truncated, _ = envs[i].step(a)
            if not (terminated or truncated):
                still.append(i)
        live = still
    return total / steps


@pytest.fixture(scope="module")
def small_log():
    env = ECommerceEnv(n_items=20)
    return env, log_transitions(env, SoftmaxBehaviourPolicy(env), 1500, seed=0)


def test_session_returns_match_a_loop_per_session():
    rng = np.random.default_rng(0)
    session = np.repeat(np.arange(6), rng.integers(1, 8, 6))
    rewards = rng.normal(size=session.size)
    expected = np.zeros_like(rewards)
    for s in np.unique(session):
        rows = np.flatnonzero(session == s)
        for k, row in enumerate(rows):
            expected[row] = sum(0.7 ** j * rewards[rows[k + j]] for j in range(len(rows) - k))
    np.testing.assert_allclose(session_returns(rewards, session, 0.7), expected, rtol=1e-12)


def test_behaviour_head_gradient_is_blocked_from_the_shared_encoder(small_log):
    env, log = small_log
    agent = OffPolicyReinforceAgent(env.observation_space, env.action_space, seed=0)
    x = torch.as_tensor(log.observations[:64])
    a = torch.as_tensor(log.actions[:64])
    policy_logits, behaviour_logits = agent.net(x)
    torch.nn.functional.cross_entropy(behaviour_logits, a).backward()
    assert all(p.grad is None or not p.grad.any() for p in agent.net.encoder.parameters())
    assert all(p.grad is None or not p.grad.any() for p in agent.net.policy_head.parameters())
    assert agent.net.behaviour_head.weight.grad.abs().sum() > 0
    agent.net.zero_grad()
    policy_logits, _ = agent.net(x)
    torch.nn.functional.cross_entropy(policy_logits, a).backward()
    assert all(p.grad is None or not p.grad.any() for p in agent.net.behaviour_head.parameters())
    assert any(p.grad.abs().sum() > 0 for p in agent.net.encoder.parameters())


def test_training_log_serving_and_checkpoint(small_log, tmp_path):
    env, log = small_log
    cfg = OffPolicyReinforceConfig(K=4, epochs=2, batch_size=256)
    agent = OffPolicyReinforceAgent(env.observation_space, env.action_space, cfg, seed=0)
    history = train_offpolicy_reinforce(log, agent, seed=0, progress=True)
    assert list(history.epoch) == [0, 1, 2]
    for column in ("policy_loss", "behaviour_nll", "mean_weight", "ess", "ess_fraction", "capped_fraction",
                   "behaviour_log_error"):
        assert np.isfinite(history[column].iloc[1:]).all()
    assert (history.ess <= len(log) + 1e-6).all() and (history.max_weight <= cfg.K * cfg.cap + 1e-6).all()
    obs = log.observations[:50]
    probs = agent.policy_probabilities(obs)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    top = agent.recommend_topk(obs, 5)
    assert top.shape == (50, 5)
    np.testing.assert_array_equal(top[:, 0], probs.argmax(1))
    assert (np.diff(np.take_along_axis(probs, top, 1), axis=1) <= 0).all()
    assert agent.recommend_topk(obs[0], 3).shape == (3,)
    np.testing.assert_array_equal(agent.act_batch(obs, deterministic=True), probs.argmax(1))
    with pytest.raises(ValueError, match=r"invalid k 0: expected an int in \[1, n_actions\]"):
        agent.recommend_topk(obs, 0)
    path = tmp_path / "topk.pt"
    agent.save(path)
    other = OffPolicyReinforceAgent(env.observation_space, env.action_space, cfg, seed=1)
    assert not np.allclose(other.policy_probabilities(obs), probs)
    other.load(path)
    np.testing.assert_allclose(other.policy_probabilities(obs), probs, rtol=1e-6)
    big = ECommerceEnv(n_items=30)
    with pytest.raises(ValueError, match="checkpoint"):
        OffPolicyReinforceAgent(big.observation_space, big.action_space, cfg).load(path)


def test_bad_logs_raise(small_log):
    env, log = small_log
    agent = OffPolicyReinforceAgent(env.observation_space, env.action_space, OffPolicyReinforceConfig(epochs=1))

    def changed(**fields):
        return dataclasses.replace(log, **fields)

    props = log.propensities.copy()
    props[3] = 0.0
    with pytest.raises(ValueError, match=r"invalid transitions\.propensities .*: expected values in \(0, 1\] "
                                         r"\(1 rows are not; row 3: 0\.0\)"):
        train_offpolicy_reinforce(changed(propensities=props), agent)
    props = log.propensities.copy()
    props[3] = np.nan
    with pytest.raises(ValueError, match="NaN in 1 of"):
        train_offpolicy_reinforce(changed(propensities=props), agent)
    def reorder(rows):
        return changed(**{f.name: getattr(log, f.name)[rows] for f in dataclasses.fields(log) if getattr(log, f.name) is not None})

    reversed_sessions = reorder(np.lexsort((np.arange(len(log)), -log.session)))  # last session first, rows in order
    with pytest.raises(ValueError, match="non-decreasing"):
        train_offpolicy_reinforce(reversed_sessions, agent)
    swap = np.arange(len(log))
    swap[[1, 2]] = swap[[2, 1]]  # two rows of the first session swapped (the first session is longer than 3)
    assert log.session[3] == log.session[0]
    with pytest.raises(ValueError, match="time order"):
        train_offpolicy_reinforce(reorder(swap), agent)
    cut = reorder(np.arange(len(log) - 1))
    with pytest.raises(ValueError, match="terminated/truncated"):
        train_offpolicy_reinforce(cut, agent)
    with pytest.raises(ValueError, match="actions"):
        train_offpolicy_reinforce(changed(actions=log.actions + 20), agent)


def test_behaviour_head_recovers_the_logged_propensities_over_seeds():
    """Logs without propensities (NaN): β̂ is fitted to the logged actions alone. On held-out sessions it is
    much closer to the logger's true propensities than the state-free action frequency of Strehl et al."""
    env = ECommerceEnv(n_items=20)
    for seed in range(5):
        log = log_transitions(env, SoftmaxBehaviourPolicy(env), 6000, seed=seed)
        train, test = log.split(0.8)
        frequency = np.bincount(train.actions, minlength=20) / len(train)
        baseline = np.abs(np.log(frequency[test.actions]) - np.log(test.propensities)).mean()
        for encoder, ratio, correlation in (("shared", 0.95, 0.75), ("separate", 0.75, 0.85)):
            cfg = OffPolicyReinforceConfig(epochs=10, behaviour_encoder=encoder)
            agent = OffPolicyReinforceAgent(env.observation_space, env.action_space, cfg, seed=seed)
            train_offpolicy_reinforce(dataclasses.replace(train, propensities=np.full(len(train), np.nan)), agent, seed=seed)
            estimate = agent.behaviour_probabilities(test.observations)[np.arange(len(test)), test.actions]
            error = np.abs(np.log(estimate) - np.log(test.propensities)).mean()
            assert error < ratio * baseline, (seed, encoder, error, baseline)
            assert np.corrcoef(np.log(estimate), np.log(test.propensities))[0, 1] > correlation


def test_off_policy_correction_beats_the_skewed_logger_and_the_naive_gradient_over_seeds():
    """Logged by a policy that prefers unclickable items, the naive gradient learns π ∝ β·r and stays close
    to the logger; the corrected one learns what users click (expected click rate per step, fresh users)."""
    env = ECommerceEnv()
    for seed in range(5):
        log = log_transitions(env, AntiUtilityBehaviour(env), 5000, seed=seed)
        rates = {}
        for name, cfg in (("naive", OffPolicyReinforceConfig(correction="none", cap=None, epochs=5)),
                          ("corrected", OffPolicyReinforceConfig(epochs=5))):
            agent = OffPolicyReinforceAgent(env.observation_space, env.action_space, cfg, seed=seed)
            train_offpolicy_reinforce(log, agent, seed=seed)
            rates[name] = expected_click_rate(agent, env.config, 100, 1000 + seed)
        behaviour = log.true_click_probability.mean()
        assert rates["corrected"] > rates["naive"] + 0.03 and rates["naive"] > behaviour + 0.03, (seed, rates, behaviour)


def test_variance_reduction_options_and_a_custom_encoder_train(small_log):
    env, log = small_log
    from recrl_lite.models.encoders import MLPEncoder

    cfg = OffPolicyReinforceConfig(K=2, normalize_weights=True, kl_coef=0.1, entropy_coef=0.01, epochs=1,
                                   behaviour_encoder="separate", behaviour_warmup_epochs=1)
    agent = OffPolicyReinforceAgent(env.observation_space, env.action_space, cfg, seed=0,
                                    encoder=MLPEncoder(env.observation_space, (16,)))
    assert agent.net.behaviour_encoder is not None and agent.net.policy_head.in_features == 16
    history = train_offpolicy_reinforce(log, agent, seed=0)
    assert np.isfinite(history[["policy_loss", "kl", "entropy", "behaviour_nll"]].iloc[1:]).all().all()
    with pytest.raises(ValueError, match="output_dim"):
        OffPolicyReinforceAgent(env.observation_space, env.action_space, encoder=torch.nn.Linear(3, 3))
