"""Exact tabular MDPs of chapters 2-4 (recrl_lite.envs.toy)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recrl_lite.envs.toy import (
    TabularMDP,
    bellman_optimality_operator,
    clickbait_mdp,
    evaluate_policy_exact,
    evaluate_policy_iterative,
    policy_iteration,
    policy_matrix,
    q_from_v,
    sample_returns,
    value_iteration,
)
from recrl_lite.evaluation import mean_ci


def random_mdp(seed, n_states=6, n_actions=3, gamma=0.9, n_terminal=1, concentration=1.0):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(n_states, concentration), size=(n_states, n_actions))
    R = rng.uniform(0.0, 1.0, (n_states, n_actions))
    terminal = np.zeros(n_states, dtype=bool)
    terminal[n_states - n_terminal:] = True
    R[terminal] = 0.0
    return TabularMDP(P=P, R=R, terminal=terminal, gamma=gamma)


# ------------------------------------------------------------------------------- clickbait MDP
def test_clickbait_values_are_exact():
    mdp = clickbait_mdp()
    engaged, clickbait, quality = mdp.state("engaged"), mdp.action("clickbait"), mdp.action("quality")
    v_bait = evaluate_policy_exact(mdp, np.array([clickbait, clickbait]))
    v_quality = evaluate_policy_exact(mdp, np.array([quality, quality]))
    assert v_bait[engaged] == pytest.approx(1 / (1 - 0.45), abs=1e-12)
    assert v_bait[engaged] == pytest.approx(1.8181818181818181)
    assert v_quality[engaged] == pytest.approx(6.0, abs=1e-12)
    assert v_bait[mdp.state("churned")] == v_quality[mdp.state("churned")] == 0.0
    # q(engaged, .) under v*: clickbait 1 + 0.9 * 0.5 * 6 = 3.7, quality 0.6 + 0.9 * 6 = 6
    np.testing.assert_allclose(q_from_v(mdp, v_quality)[engaged], [3.7, 6.0])


def test_value_iteration_picks_quality_although_clickbait_pays_more_now():
    mdp = clickbait_mdp()
    result = value_iteration(mdp, tol=1e-12)
    engaged = mdp.state("engaged")
    assert result.v[engaged] == pytest.approx(6.0, abs=1e-10)
    assert mdp.action_names[result.policy[engaged]] == "quality"
    assert mdp.R[engaged].argmax() == mdp.action("clickbait")  # the myopic choice


def test_clickbait_becomes_optimal_when_churn_is_rare():
    # v(bait) = 1 / (1 - 0.9 (1 - p)) exceeds v(quality) = 6 iff p < 2/27 = 0.074
    for p, best in ((0.05, "clickbait"), (0.1, "quality")):
        mdp = clickbait_mdp(churn_probability=p)
        result = value_iteration(mdp)
        assert mdp.action_names[result.policy[0]] == best
        assert result.v[0] == pytest.approx(max(6.0, 1 / (1 - 0.9 * (1 - p))), abs=1e-8)


def test_monte_carlo_agrees_with_the_exact_value():
    mdp = clickbait_mdp()
    for pi in (np.array([0, 0]), np.array([1, 1]), np.full((2, 2), 0.5)):
        returns = sample_returns(mdp, pi, start=0, n_episodes=20_000, horizon=400, seed=0)
        mean, half = mean_ci(returns)
        exact = evaluate_policy_exact(mdp, pi)[0]
        assert abs(mean - exact) < 1.5 * half + 1e-6, (pi, mean, half, exact)


# ------------------------------------------------------------------------------- general MDPs
@pytest.mark.parametrize("seed", range(5))
def test_linear_solve_equals_iterative_evaluation_and_bellman_equation(seed):
    mdp = random_mdp(seed)
    pi = np.random.default_rng(seed + 100).dirichlet(np.ones(mdp.n_actions), size=mdp.n_states)
    v = evaluate_policy_exact(mdp, pi)
    np.testing.assert_allclose(v, evaluate_policy_iterative(mdp, pi), atol=1e-9)
    # Bellman expectation equation v = sum_a pi(a|s) q(s, a)
    np.testing.assert_allclose(v, (pi * q_from_v(mdp, v)).sum(axis=1), atol=1e-12)
    assert v[mdp.terminal].tolist() == [0.0]


@pytest.mark.parametrize("seed", range(5))
def test_value_iteration_is_a_gamma_contraction(seed):
    mdp = random_mdp(seed, gamma=0.8)
    result = value_iteration(mdp, tol=1e-12)
    res = np.array(result.residuals)
    assert np.all(res[1:] <= mdp.gamma * res[:-1] + 1e-15)
    rng = np.random.default_rng(seed)
    for _ in range(50):
        v, w = rng.normal(0, 5, (2, mdp.n_states))
        tv, tw = bellman_optimality_operator(mdp, v), bellman_optimality_operator(mdp, w)
        assert np.max(np.abs(tv - tw)) <= mdp.gamma * np.max(np.abs(v - w)) + 1e-12
    # v* is the value of its greedy policy, and no deterministic policy does better
    np.testing.assert_allclose(evaluate_policy_exact(mdp, result.policy), result.v, atol=1e-9)
    for _ in range(20):
        other = rng.integers(0, mdp.n_actions, mdp.n_states)
        assert np.all(evaluate_policy_exact(mdp, other) <= result.v + 1e-9)


# ------------------------------------------------------------------------------- policy iteration
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_states=st.integers(1, 8),
    n_actions=st.integers(1, 4),
    n_terminal=st.integers(0, 2),
    gamma=st.floats(0.0, 0.98),
    concentration=st.sampled_from([0.1, 1.0, 10.0]),
)
def test_policy_iteration_agrees_with_value_iteration(seed, n_states, n_actions, n_terminal, gamma, concentration):
    n_terminal = min(n_terminal, n_states - 1)
    mdp = random_mdp(seed, n_states, n_actions, gamma, n_terminal, concentration)
    pi = policy_iteration(mdp)
    vi = value_iteration(mdp, tol=1e-12)
    live = ~mdp.terminal
    # the same optimal value (VI stops within tol * gamma / (1 - gamma) of v*)
    np.testing.assert_allclose(pi.v, vi.v, atol=1e-9)
    np.testing.assert_allclose(pi.v, evaluate_policy_exact(mdp, pi.policy), atol=1e-12)
    assert pi.v[mdp.terminal].tolist() == [0.0] * int(mdp.terminal.sum())
    # the same greedy policy wherever the best action is not (nearly) tied
    q = q_from_v(mdp, pi.v)
    top2 = np.sort(q, axis=1)[:, -2:] if n_actions > 1 else np.zeros((n_states, 2))
    clear = live & (top2[:, 1] - top2[:, 0] > 1e-6) if n_actions > 1 else live
    assert np.array_equal(pi.policy[clear], vi.policy[clear])
    # stable: the policy is greedy with respect to its own value, i.e. v satisfies T v = v
    np.testing.assert_allclose(bellman_optimality_operator(mdp, pi.v), pi.v, atol=1e-9)
    # each improvement step improves (weakly) in every state, and changes the policy
    for before, after in zip(pi.values, pi.values[1:]):
        assert np.all(after >= before - 1e-10)
    for before, after in zip(pi.policies, pi.policies[1:]):
        assert not np.array_equal(before, after)
    assert pi.n_iterations == len(pi.values) - 1 <= n_actions ** int(live.sum())
    assert np.array_equal(pi.policies[-1], pi.policy)


@pytest.mark.parametrize("seed", range(4))
def test_policy_iteration_beats_every_deterministic_policy(seed):
    mdp = random_mdp(seed, n_states=5, n_actions=3, gamma=0.95)
    result = policy_iteration(mdp)
    for actions in itertools.product(range(3), repeat=mdp.n_states):
        assert np.all(evaluate_policy_exact(mdp, np.array(actions)) <= result.v + 1e-9)


def test_policy_iteration_on_the_clickbait_mdp():
    mdp = clickbait_mdp()
    result = policy_iteration(mdp)  # starts from the myopic policy: clickbait
    assert mdp.action_names[result.policies[0][0]] == "clickbait"
    assert mdp.action_names[result.policy[0]] == "quality"
    assert result.n_iterations == 1
    assert result.v[0] == pytest.approx(6.0, abs=1e-12)
    assert result.values[0][0] == pytest.approx(1 / (1 - 0.45), abs=1e-12)
    # from the optimal policy, nothing changes: one evaluation, no improvement
    again = policy_iteration(mdp, initial_policy=result.policy)
    assert again.n_iterations == 0 and np.array_equal(again.policy, result.policy)


def test_policy_iteration_needs_several_steps_on_a_chain():
    # a corridor: "right" pays nothing until the far end, "stop" pays a little now. Each improvement
    # step can only see one more state ahead of the good region, so PI needs several iterations.
    n = 6
    P = np.zeros((n + 1, 2, n + 1))  # noqa: N806
    R = np.zeros((n + 1, 2))  # noqa: N806
    for s in range(n):
        P[s, 0, s + 1] = 1.0          # right
        P[s, 1, n] = 1.0              # stop: end the episode
        R[s, 1] = 0.1
    R[n - 1, 0] = 1.0                 # right from the last cell pays 1 and ends
    P[n - 1, 0] = np.eye(n + 1)[n]
    P[n, :, n] = 1.0
    mdp = TabularMDP(P=P, R=R, terminal=[False] * n + [True], gamma=0.9)
    result = policy_iteration(mdp)
    assert result.policy[:n].tolist() == [0] * n        # go right everywhere: 0.9^5 = 0.59 > 0.1
    assert result.n_iterations >= 3
    np.testing.assert_allclose(result.v[:n], 0.9 ** np.arange(n - 1, -1, -1), atol=1e-12)
    with pytest.raises(RuntimeError, match="still changed"):
        policy_iteration(mdp, max_iters=result.n_iterations - 1)


def test_policy_iteration_bad_input():
    mdp = clickbait_mdp()
    with pytest.raises(ValueError, match="integer action indices"):
        policy_iteration(mdp, initial_policy=np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(2,\) array"):
        policy_iteration(mdp, initial_policy=np.array([0, 1, 0]))
    with pytest.raises(ValueError, match=r"invalid initial_policy ndarray\(\[0, 2\], dtype=int64\): expected action indices in \[0, 1\]"):
        policy_iteration(mdp, initial_policy=np.array([0, 2]))
    with pytest.raises(ValueError, match="max_iters"):
        policy_iteration(mdp, max_iters=0)
    with pytest.raises(ValueError, match="tol"):
        policy_iteration(mdp, tol=-1.0)
    # gamma = 1: the improved policy (quality forever) never terminates, so its value is undefined
    with pytest.raises(ValueError, match="singular"):
        policy_iteration(clickbait_mdp(gamma=1.0))


# ------------------------------------------------------------------------------- bad input
def test_bad_models_raise():
    good = clickbait_mdp()
    P, R, term = good.P.copy(), good.R.copy(), good.terminal  # noqa: N806
    bad_P = P.copy()  # noqa: N806
    bad_P[0, 0] = [0.6, 0.6]
    with pytest.raises(ValueError, match=r"invalid P\[0, 0, :\] ndarray\(\[0.6, 0.6\].*: expected probabilities that sum to 1 \(it sums to 1.2"):
        TabularMDP(P=bad_P, R=R, terminal=term, gamma=0.9)
    neg_P = P.copy()  # noqa: N806
    neg_P[0, 1] = [1.5, -0.5]
    with pytest.raises(ValueError, match=r"invalid P\[0, 1, :\] ndarray\(\[1.5, -0.5\].*: expected non-negative"):
        TabularMDP(P=neg_P, R=R, terminal=term, gamma=0.9)
    with pytest.raises(ValueError, match=r"invalid P ndarray\(\[\[\[0.5\], \[1.0\]\].*: expected shape \(S, A, S\)"):
        TabularMDP(P=P[:, :, :1], R=R, terminal=term, gamma=0.9)
    with pytest.raises(ValueError, match=r"invalid R ndarray\(\[\[1.0\], \[0.0\]\].*: expected shape \(S, A\) = \(2, 2\)"):
        TabularMDP(P=P, R=R[:, :1], terminal=term, gamma=0.9)
    with pytest.raises(ValueError, match=r"invalid terminal ndarray\(\[False\].*: expected shape \(2,\)"):
        TabularMDP(P=P, R=R, terminal=[False], gamma=0.9)
    with pytest.raises(ValueError, match=r"invalid gamma 1.5: expected a number in \[0, 1\]"):
        TabularMDP(P=P, R=R, terminal=term, gamma=1.5)
    bad_R = R.copy()  # noqa: N806
    bad_R[1, 0] = 1.0
    with pytest.raises(ValueError, match=r"invalid R\[terminal\] ndarray\(\[\[1.0, 0.0\]\].*: expected zero rewards"):
        TabularMDP(P=P, R=bad_R, terminal=term, gamma=0.9)
    with pytest.raises(ValueError, match=r"invalid state_names \('only one',\): expected 2 names"):
        TabularMDP(P=P, R=R, terminal=term, gamma=0.9, state_names=("only one",))


def test_bad_policies_raise():
    mdp = clickbait_mdp()
    with pytest.raises(ValueError, match=r"invalid pi ndarray\(\[0, 2\], dtype=int64\): expected action indices in \[0, 1\]"):
        policy_matrix(mdp, np.array([0, 2]))
    with pytest.raises(ValueError, match="sum to 1"):
        policy_matrix(mdp, np.array([[0.5, 0.6], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"invalid pi ndarray\(\[0, 0, 0\].*: expected \(2,\) action indices or an \(S, A\)"):
        evaluate_policy_exact(mdp, np.array([0, 0, 0]))
    with pytest.raises(KeyError, match="unknown action"):
        mdp.action("spam")


def test_undiscounted_policy_that_never_ends_is_singular():
    mdp = clickbait_mdp(gamma=1.0)
    with pytest.raises(ValueError, match="singular"):
        evaluate_policy_exact(mdp, np.array([1, 1]))  # quality forever: infinite return
    assert evaluate_policy_exact(mdp, np.array([0, 0]))[0] == pytest.approx(2.0)  # 1 / 0.5


def test_the_model_is_read_only():
    mdp = clickbait_mdp()
    with pytest.raises(ValueError):
        mdp.P[0, 0, 0] = 0.0


def test_tabular_mdp_env_samples_the_model():
    from recrl_lite.envs.toy import TabularMDPEnv

    mdp = clickbait_mdp()
    env = TabularMDPEnv(mdp)
    churned = 0
    for seed in range(2000):
        s, _ = env.reset(seed=seed)
        assert s == 0
        s2, r, terminated, truncated, _ = env.step(0)
        assert r == 1.0 and not truncated and terminated == (s2 == 1)
        churned += terminated
    assert abs(churned / 2000 - 0.5) < 0.05
    env.reset(seed=0)
    while not env.step(0)[2]:  # clickbait until the user churns
        pass
    with pytest.raises(RuntimeError, match="reset"):
        env.step(1)
    with pytest.raises(ValueError, match="invalid action"):
        env.reset(seed=0)
        env.step(5)
    with pytest.raises(ValueError, match=r"invalid start 1: expected a live \(non-terminal\) state in \[0, 1\] or None"):
        TabularMDPEnv(mdp, start=1)
