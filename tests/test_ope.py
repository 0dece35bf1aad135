"""Off-policy evaluation (chapter 5): every estimator checked against a truth computed independently.

The truths come from enumeration over small known problems: a contextual bandit with 3 contexts and
4 actions, and a 3-step MDP with termination. We check exact expectations (each estimator's
single-sample term, weighted by the probability of each possible outcome) and Monte Carlo behaviour
over a few hundred simulated logs, with tolerances derived from the standard error.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recrl_lite.evaluation.ope import (
    OPEEstimate,
    clipped_ips,
    deterministic_target,
    direct_method,
    doubly_robust,
    estimate_all,
    ips,
    per_decision_ips,
    probs_of_logged,
    snips,
    trajectory_ips,
    weighted_per_decision_ips,
)

# ============================================================================ contextual bandit
P_X = np.array([0.5, 0.3, 0.2])
"""Context distribution."""
MU = np.array([[0.1, 0.5, 0.3, 0.8], [0.6, 0.2, 0.4, 0.1], [0.3, 0.9, 0.2, 0.5]])
"""True Bernoulli reward means mu(x, a)."""
BETA = np.array([[0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4]])
"""Behaviour policy (full support)."""
PI = np.array([[0.1, 0.2, 0.1, 0.6], [0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.1, 0.2]])
"""Target policy; largest weight 0.6 / 0.1 = 6."""
WRONG_MU = MU[:, ::-1].copy()
"""A badly wrong reward model (actions reversed)."""
CLIP = 2.0
"""A weight cap that binds (weights reach 6)."""
N_DATASETS, N_LOGS = 400, 500


def enumerated_value(policy: np.ndarray, table: np.ndarray) -> float:
    """sum_x P(x) sum_a policy(a|x) table(x, a), by explicit loops."""
    return sum(P_X[x] * policy[x, a] * table[x, a] for x in range(3) for a in range(4))


V_TRUE = enumerated_value(PI, MU)


def bandit_outcomes():
    """Every single-log outcome (x, a, r) with its probability under the behaviour policy."""
    for x, a, r in itertools.product(range(3), range(4), (0.0, 1.0)):
        yield x, a, r, P_X[x] * BETA[x, a] * (MU[x, a] if r else 1.0 - MU[x, a])


def exact_expectation(single_log_estimate) -> float:
    """E_beta of an estimator on one log: the sum over all outcomes of probability times its term."""
    return sum(p * single_log_estimate(x, a, r) for x, a, r, p in bandit_outcomes())


def simulate_bandit(seed: int, n_datasets: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contexts, actions and rewards, (n_datasets, n) each, logged by BETA."""
    rng = np.random.default_rng(seed)
    x = rng.choice(3, p=P_X, size=(n_datasets, n))
    a = np.minimum((rng.random((n_datasets, n, 1)) > np.cumsum(BETA, axis=1)[x]).sum(-1), 3)
    r = (rng.random((n_datasets, n)) < MU[x, a]).astype(float)
    return x, a, r


@pytest.fixture(scope="module")
def bandit_runs() -> dict[str, pd.DataFrame]:
    """Each estimator on N_DATASETS independent logs: one row per log (value, se, covered)."""
    x, a, r = simulate_bandit(2024, N_DATASETS, N_LOGS)
    rows: dict[str, list[OPEEstimate]] = {k: [] for k in ("ips", "clip", "snips", "dm_wrong", "dr_wrong", "dr_true")}
    for i in range(N_DATASETS):
        xi, ai, ri = x[i], a[i], r[i]
        pi_logged, beta = PI[xi, ai], BETA[xi, ai]
        rows["ips"].append(ips(ri, pi_logged, beta))
        rows["clip"].append(clipped_ips(ri, pi_logged, beta, CLIP))
        rows["snips"].append(snips(ri, pi_logged, beta))
        rows["dm_wrong"].append(direct_method(WRONG_MU[xi], PI[xi]))
        rows["dr_wrong"].append(doubly_robust(ri, ai, beta, WRONG_MU[xi], PI[xi]))
        rows["dr_true"].append(doubly_robust(ri, ai, beta, MU[xi], PI[xi]))
    out = {}
    for name, ests in rows.items():
        df = pd.DataFrame([e.as_dict() for e in ests])
        df["covered"] = (df.ci_low <= V_TRUE) & (V_TRUE <= df.ci_high)
        out[name] = df
    return out


def mean_and_se(values: pd.Series) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1)) / math.sqrt(len(values))


def test_truth_by_enumeration_is_what_we_think():
    assert V_TRUE == pytest.approx(0.595, abs=1e-12)
    assert np.allclose(BETA.sum(1), 1) and np.allclose(PI.sum(1), 1)


def test_exact_expectations_ips_dr_unbiased_dm_and_clipping_biased():
    """Exact E_beta of each estimator's one-log term, by enumerating the 24 possible logs."""
    e_ips = exact_expectation(lambda x, a, r: ips([r], [PI[x, a]], [BETA[x, a]]).value)
    e_dr_wrong = exact_expectation(lambda x, a, r: doubly_robust([r], [a], [BETA[x, a]], WRONG_MU[[x]], PI[[x]]).value)
    e_dr_true = exact_expectation(lambda x, a, r: doubly_robust([r], [a], [BETA[x, a]], MU[[x]], PI[[x]]).value)
    e_dm_wrong = sum(P_X[x] * direct_method(WRONG_MU[[x]], PI[[x]]).value for x in range(3))
    e_clip = exact_expectation(lambda x, a, r: clipped_ips([r], [PI[x, a]], [BETA[x, a]], CLIP).value)
    assert e_ips == pytest.approx(V_TRUE, abs=1e-12)
    assert e_dr_wrong == pytest.approx(V_TRUE, abs=1e-12)
    assert e_dr_true == pytest.approx(V_TRUE, abs=1e-12)
    assert e_dm_wrong == pytest.approx(enumerated_value(PI, WRONG_MU), abs=1e-12)
    assert abs(e_dm_wrong - V_TRUE) > 0.3
    # the documented clipping bias: -E_x sum_a (pi - M beta)_+ mu
    bias = -sum(P_X[x] * max(PI[x, a] - CLIP * BETA[x, a], 0.0) * MU[x, a] for x in range(3) for a in range(4))
    assert bias < -0.1
    assert e_clip - V_TRUE == pytest.approx(bias, abs=1e-12)


def test_ips_and_dr_are_unbiased_over_simulated_logs(bandit_runs):
    for name in ("ips", "dr_wrong", "dr_true"):
        mean, se = mean_and_se(bandit_runs[name].value)
        assert abs(mean - V_TRUE) < 4 * se, (name, mean, se)


def test_snips_is_asymptotically_unbiased(bandit_runs):
    mean, se = mean_and_se(bandit_runs["snips"].value)
    assert abs(mean - V_TRUE) < 4 * se, (mean, se)


def test_dm_with_a_wrong_model_is_biased_and_the_bias_is_detected(bandit_runs):
    mean, se = mean_and_se(bandit_runs["dm_wrong"].value)
    assert abs(mean - V_TRUE) > 10 * se
    assert abs(mean - enumerated_value(PI, WRONG_MU)) < 4 * se
    # DR with the same wrong model is still right (previous test), only noisier than with the true one
    assert bandit_runs["dr_wrong"].value.std() > bandit_runs["dr_true"].value.std()


def test_clipped_ips_is_biased_downward_when_the_cap_binds(bandit_runs):
    mean, se = mean_and_se(bandit_runs["clip"].value)
    expected = sum(P_X[x] * min(PI[x, a], CLIP * BETA[x, a]) * MU[x, a] for x in range(3) for a in range(4))
    assert V_TRUE - mean > 10 * se
    assert abs(mean - expected) < 4 * se
    assert (bandit_runs["clip"].max_weight <= CLIP).all()
    assert bandit_runs["clip"].value.std() < bandit_runs["ips"].value.std()


def test_dr_with_the_true_model_has_lower_variance_than_ips(bandit_runs):
    assert bandit_runs["dr_true"].value.std() < 0.7 * bandit_runs["ips"].value.std()


@pytest.mark.parametrize("name", ["ips", "snips", "dr_wrong", "dr_true"])
def test_95_percent_intervals_cover_the_truth(bandit_runs, name):
    # binomial sd of the coverage over 400 logs is 0.011, so [0.9, 0.99] is > 4 sd from 0.95 below
    assert 0.9 <= bandit_runs[name].covered.mean() <= 0.99


@pytest.mark.parametrize("name", ["ips", "snips", "dr_wrong", "dr_true"])
def test_reported_se_matches_the_spread_across_logs(bandit_runs, name):
    """The per-sample SE (the delta method for SNIPS) agrees with the sd of the estimates across logs."""
    df = bandit_runs[name]
    # the sd of a sample sd over 400 draws is ~3.5%, hence 15%
    assert df.se.mean() / df.value.std(ddof=1) == pytest.approx(1.0, abs=0.15)


def test_hand_computed_example_with_a_deterministic_target():
    """Logged actions [0, 2, 2], target picks [0, 1, 2]: only rows 0 and 2 count."""
    rewards, actions, beta = np.array([1.0, 0.0, 1.0]), np.array([0, 2, 2]), np.array([0.5, 0.25, 0.2])
    target = deterministic_target([0, 1, 2], n_actions=3)
    assert np.array_equal(target, np.eye(3))
    pi_logged = probs_of_logged(target, actions)
    assert np.array_equal(pi_logged, [1.0, 0.0, 1.0])
    e = ips(rewards, pi_logged, beta)  # weights 2, 0, 5
    assert e.value == pytest.approx(7 / 3) and e.max_weight == 5.0 and e.ess == pytest.approx(49 / 29)
    assert e.n == 3 and e.ci_low < e.value < e.ci_high
    assert snips(rewards, pi_logged, beta).value == pytest.approx(1.0)
    assert clipped_ips(rewards, pi_logged, beta, 3.0).value == pytest.approx(5 / 3)
    q = np.full((3, 3), 0.5)
    assert direct_method(q, target).value == pytest.approx(0.5)
    # DR: 0.5 + mean(w (r - 0.5)) = 0.5 + (2 * 0.5 + 0 + 5 * 0.5) / 3
    assert doubly_robust(rewards, actions, beta, q, target).value == pytest.approx(0.5 + 3.5 / 3)


def test_ips_on_a_deterministic_target_misses_what_the_behaviour_never_does():
    """Without support, IPS estimates E_x[r(x, pi(x)) 1{beta(pi(x)|x) > 0}], not V(pi) (exact)."""
    beta = BETA.copy()
    beta[1] = [0.0, 1 / 3, 1 / 3, 1 / 3]  # context 1 never logs action 0
    chosen = np.array([3, 0, 1])
    target = deterministic_target(chosen, 4)
    truth = enumerated_value(target, MU)
    e = 0.0
    for x, a, r in itertools.product(range(3), range(4), (0.0, 1.0)):
        p = P_X[x] * beta[x, a] * (MU[x, a] if r else 1.0 - MU[x, a])
        if p > 0:
            e += p * ips([r], [target[x, a]], [beta[x, a]]).value
    assert e == pytest.approx(truth - P_X[1] * MU[1, 0], abs=1e-12)
    assert truth - e > 0.15


def test_estimate_all_table(bandit_runs):
    x, a, r = simulate_bandit(7, 1, 300)
    x, a, r = x[0], a[0], r[0]
    table = estimate_all(r, a, BETA[x, a], PI[x], predicted_rewards_all=MU[x], max_weight=CLIP)
    assert list(table.index) == ["ips", "clipped_ips", "snips", "dm", "dr"]
    assert table.index.name == "estimator"
    assert list(table.columns) == ["value", "se", "ci_low", "ci_high", "ess", "max_weight", "n"]
    assert table.loc["ips", "value"] == ips(r, PI[x, a], BETA[x, a]).value
    assert table.loc["dr", "se"] == doubly_robust(r, a, BETA[x, a], MU[x], PI[x]).se
    assert math.isnan(table.loc["dm", "max_weight"]) and table.loc["dm", "ess"] == 300
    assert list(estimate_all(r, a, BETA[x, a], PI[x]).index) == ["ips", "snips"]


# ============================================================================ episodic MDP
S0 = np.array([0.8, 0.2])
"""Initial state distribution over states {0, 1}."""
TO_STATE_1 = np.array([0.2, 0.8])
"""P(next state = 1 | action), whatever the state."""
R_MEAN = np.array([[0.2, 0.1], [0.6, 0.9]])
"""Bernoulli reward means R(s, a): state 1 pays, and action 1 leads there."""
P_END = np.array([[0.1, 0.2], [0.1, 0.3]])
"""Probability that the session terminates after action a in state s."""
HORIZON = 3
B_MDP = np.array([[0.7, 0.3], [0.6, 0.4]])
"""Behaviour policy beta(a|s)."""
PI_MDP = np.array([[0.2, 0.8], [0.3, 0.7]])
"""Target policy: takes action 1 more, so it spends more time in state 1 than beta does."""


def mdp_paths(policy: np.ndarray):
    """Every complete session (probability, rewards, states, actions) under ``policy``, by enumeration."""

    def extend(prob, s, rewards, states, actions):
        t = len(rewards)
        for a, r in itertools.product(range(2), (0.0, 1.0)):
            p = prob * policy[s, a] * (R_MEAN[s, a] if r else 1.0 - R_MEAN[s, a])
            path = (rewards + [r], states + [s], actions + [a])
            if t + 1 == HORIZON:
                yield (p, *path)
                continue
            yield (p * P_END[s, a], *path)
            for s2 in range(2):
                p2 = p * (1 - P_END[s, a]) * (TO_STATE_1[a] if s2 else 1.0 - TO_STATE_1[a])
                yield from extend(p2, s2, *path)

    for s in range(2):
        yield from extend(S0[s], s, [], [], [])


def enumerated_return(policy: np.ndarray, discount: float = 1.0) -> float:
    return sum(p * sum(discount**t * r for t, r in enumerate(rs)) for p, rs, _, _ in mdp_paths(policy))


G_TRUE = enumerated_return(PI_MDP)


def _one_session(estimator, rewards, states, actions, **kw) -> float:
    s, a = np.array(states), np.array(actions)
    return estimator(np.zeros(len(rewards)), rewards, PI_MDP[s, a], B_MDP[s, a], **kw).value


def _per_step_ips_session_sum(rewards, states, actions) -> float:
    """Bandit IPS applied step by step, summed over the session: sum_t w_t r_t (ignores earlier weights)."""
    s, a = np.array(states), np.array(actions)
    return len(rewards) * ips(rewards, PI_MDP[s, a], B_MDP[s, a]).value


def test_mdp_paths_are_a_distribution():
    assert sum(p for p, *_ in mdp_paths(B_MDP)) == pytest.approx(1.0, abs=1e-12)
    assert sum(p for p, *_ in mdp_paths(PI_MDP)) == pytest.approx(1.0, abs=1e-12)
    assert G_TRUE > enumerated_return(B_MDP) + 0.1  # the target is worth evaluating


def test_exact_expectations_of_the_trajectory_estimators():
    """E_beta over every possible session, each session's term weighted by its probability."""
    paths = list(mdp_paths(B_MDP))
    moments = {}
    for name, f in [("traj", lambda *p: _one_session(trajectory_ips, *p)),
                    ("pd", lambda *p: _one_session(per_decision_ips, *p)),
                    ("pd_discounted", lambda *p: _one_session(per_decision_ips, *p, discount=0.9)),
                    ("traj_discounted", lambda *p: _one_session(trajectory_ips, *p, discount=0.9)),
                    ("per_step", _per_step_ips_session_sum)]:
        terms = np.array([f(rs, ss, acts) for _, rs, ss, acts in paths])
        probs = np.array([p for p, *_ in paths])
        mean = float(probs @ terms)
        moments[name] = (mean, float(probs @ (terms - mean) ** 2))
    assert moments["traj"][0] == pytest.approx(G_TRUE, abs=1e-12)
    assert moments["pd"][0] == pytest.approx(G_TRUE, abs=1e-12)
    assert moments["pd_discounted"][0] == pytest.approx(enumerated_return(PI_MDP, 0.9), abs=1e-12)
    assert moments["traj_discounted"][0] == pytest.approx(enumerated_return(PI_MDP, 0.9), abs=1e-12)
    # per-step weights correct the action but not the state distribution beta led to
    assert G_TRUE - moments["per_step"][0] > 0.15
    assert moments["pd"][1] < 0.75 * moments["traj"][1]


@pytest.fixture(scope="module")
def mdp_runs() -> tuple[pd.DataFrame, dict[str, float]]:
    """Every trajectory estimator on 300 logs of 300 sessions each, simulated under B_MDP."""
    n_logs, m = 300, 300
    rng = np.random.default_rng(11)
    total = n_logs * m
    s = (rng.random(total) < S0[1]).astype(int)
    alive = np.ones(total, dtype=bool)
    shape = (total, HORIZON)
    logged, rew, pi, beta = np.zeros(shape, bool), np.zeros(shape), np.ones(shape), np.ones(shape)
    for t in range(HORIZON):
        logged[:, t] = alive
        a = (rng.random(total) < B_MDP[s, 1]).astype(int)
        rew[:, t] = rng.random(total) < R_MEAN[s, a]
        pi[:, t], beta[:, t] = PI_MDP[s, a], B_MDP[s, a]
        alive &= rng.random(total) >= P_END[s, a]
        s = (rng.random(total) < TO_STATE_1[a]).astype(int)
    session = np.repeat(np.arange(total), HORIZON).reshape(shape)
    step = np.tile(np.arange(HORIZON), (total, 1))
    rows = []
    for i in range(n_logs):
        keep = np.zeros(shape, bool)
        keep[i * m:(i + 1) * m] = logged[i * m:(i + 1) * m]  # row-major: by session, then time
        args = (session[keep], rew[keep], pi[keep], beta[keep])
        for f in (trajectory_ips, per_decision_ips, weighted_per_decision_ips):
            rows.append(f(*args, steps=step[keep]).as_dict())
        e = ips(*args[1:])
        rows.append({"estimator": "per_step_ips", "value": e.value * keep.sum() / m})
    runs = pd.DataFrame(rows)
    runs["covered"] = (runs.ci_low <= G_TRUE) & (G_TRUE <= runs.ci_high)
    return runs, {"m": m}


def test_trajectory_and_per_decision_ips_are_unbiased(mdp_runs):
    runs, _ = mdp_runs
    for name in ("trajectory_ips", "per_decision_ips", "weighted_per_decision_ips"):
        mean, se = mean_and_se(runs.value[runs.estimator == name])
        assert abs(mean - G_TRUE) < 4 * se, (name, mean, se)


def test_per_decision_has_lower_variance_than_trajectory_ips(mdp_runs):
    runs, _ = mdp_runs
    var = runs.groupby("estimator").value.var()
    # exact ratio is about 0.6 (previous test); the sample ratio over 300 logs is within ~0.1 of it
    assert var["per_decision_ips"] < 0.8 * var["trajectory_ips"]
    assert var["weighted_per_decision_ips"] < var["per_decision_ips"]


def test_per_step_bandit_ips_is_biased_for_the_session_value(mdp_runs):
    runs, _ = mdp_runs
    mean, se = mean_and_se(runs.value[runs.estimator == "per_step_ips"])
    assert G_TRUE - mean > 10 * se


def test_trajectory_intervals_cover_and_their_se_is_right(mdp_runs):
    runs, _ = mdp_runs
    for name in ("trajectory_ips", "per_decision_ips", "weighted_per_decision_ips"):
        df = runs[runs.estimator == name]
        assert 0.9 <= df.covered.mean() <= 0.99, name
        assert df.se.mean() / df.value.std(ddof=1) == pytest.approx(1.0, abs=0.15), name
        assert (df.n == 300).all()


def test_trajectory_weights_by_hand():
    """Two sessions: [w=2, w=0.5] and [w=4]; rewards [1, 1] and [1]."""
    sessions, rewards = np.array([7, 7, 3]), np.array([1.0, 1.0, 1.0])
    pi, beta = np.array([1.0, 0.25, 0.8]), np.array([0.5, 0.5, 0.2])
    traj = trajectory_ips(sessions, rewards, pi, beta)
    assert traj.value == pytest.approx((1.0 * 2 + 4 * 1) / 2) and traj.max_weight == 4.0
    assert traj.ess == pytest.approx(25 / 17)  # session weights 1 and 4
    pd_ = per_decision_ips(sessions, rewards, pi, beta)
    assert pd_.value == pytest.approx(((2 + 1) + 4) / 2) and pd_.max_weight == 4.0
    # cumulative weights at step 0 are (2, 4), ESS 36/20; at step 1 (1, 4 frozen), ESS 25/17: the min
    assert pd_.ess == pytest.approx(25 / 17)
    wpd = weighted_per_decision_ips(sessions, rewards, pi, beta)
    assert wpd.value == pytest.approx((2 + 4) / (2 + 4) + (1 + 0) / (1 + 4))
    disc = per_decision_ips(sessions, rewards, pi, beta, discount=0.5)
    assert disc.value == pytest.approx(((2 + 0.5 * 1) + 4) / 2)


# ============================================================================ properties
_probs = st.floats(min_value=1e-3, max_value=1.0, allow_nan=False)
_rewards = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)


@st.composite
def logs(draw, min_size: int = 1):
    n = draw(st.integers(min_value=min_size, max_value=40))
    rewards = np.array(draw(st.lists(_rewards, min_size=n, max_size=n)))
    beta = np.array(draw(st.lists(_probs, min_size=n, max_size=n)))
    return rewards, beta


@settings(max_examples=60, deadline=None)
@given(logs())
def test_ips_with_target_equal_to_behaviour_is_the_mean_reward(log):
    rewards, beta = log
    e = ips(rewards, beta, beta)
    assert e.value == np.mean(rewards)
    assert e.max_weight == 1.0 and e.ess == pytest.approx(len(rewards))


@settings(max_examples=60, deadline=None)
@given(logs(), st.floats(min_value=0.01, max_value=1.0))
def test_snips_with_equal_weights_is_the_mean_reward(log, c):
    rewards, beta = log
    e = snips(rewards, c * beta, beta)  # every weight is c (up to rounding)
    assert e.value == pytest.approx(np.mean(rewards), rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(logs(min_size=2), st.floats(min_value=0.0, max_value=1.0))
def test_ess_is_between_one_and_n_and_dr_with_zero_model_is_ips(log, scale):
    rewards, beta = log
    n = len(rewards)
    pi_logged = np.clip(scale * np.linspace(0.1, 1.0, n), 0.0, 1.0)
    e = ips(rewards, pi_logged, beta)
    assert e.ess == 0.0 or 1.0 - 1e-9 <= e.ess <= n + 1e-9
    # a two-action target that puts pi_logged on the logged action 0
    target = np.column_stack([pi_logged, 1.0 - pi_logged])
    dr = doubly_robust(rewards, np.zeros(n, int), beta, np.zeros((n, 2)), target)
    assert dr.value == pytest.approx(e.value, rel=1e-12, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(logs(min_size=2), st.floats(min_value=0.05, max_value=1.0))
def test_single_step_sessions_reduce_to_the_bandit_estimators(log, scale):
    rewards, beta = log
    pi_logged = scale * np.linspace(1.0, 0.2, len(rewards))
    sessions = np.arange(len(rewards))
    expected = ips(rewards, pi_logged, beta)
    for f in (trajectory_ips, per_decision_ips):
        got = f(sessions, rewards, pi_logged, beta)
        assert got.value == pytest.approx(expected.value, rel=1e-12, abs=1e-12)
        assert got.se == pytest.approx(expected.se, rel=1e-9, abs=1e-12)
    w = weighted_per_decision_ips(sessions, rewards, pi_logged, beta)
    s = snips(rewards, pi_logged, beta)
    assert w.value == pytest.approx(s.value, rel=1e-9, abs=1e-9)
    assert w.se == pytest.approx(s.se, rel=1e-9, abs=1e-12)


# ============================================================================ bad input
R3, P3, B3 = np.array([1.0, 0.0, 1.0]), np.array([0.5, 0.5, 0.5]), np.array([0.5, 0.5, 0.5])


@pytest.mark.parametrize("args, match", [
    ((R3, P3[:2], B3), r"invalid lengths of rewards, target_probs_of_logged, propensities \[3, 2, 3\]: expected equal"),
    ((R3[None, :], P3, B3), "1-D"),
    (([], [], []), "empty"),
    ((R3, P3, [0.5, 0.0, 0.5]), r"\(0, 1\]"),
    ((R3, P3, [0.5, 1.2, 0.5]), r"\(0, 1\]"),
    ((R3, P3, [0.5, -0.1, 0.5]), r"\(0, 1\]"),
    ((R3, P3, [0.5, np.nan, 0.5]), "missing.*estimate"),
    ((R3, [0.5, 1.5, 0.5], B3), r"target_probs_of_logged.*\[0, 1\]"),
    ((R3, [0.5, -0.5, 0.5], B3), r"target_probs_of_logged.*\[0, 1\]"),
    ((R3, [0.5, np.nan, 0.5], B3), r"target_probs_of_logged.*\[0, 1\]"),
    (([1.0, np.nan, 0.0], P3, B3), r"invalid rewards \[nan\]: expected finite values \(not finite in 1 of 3 rows, at \[1\]\)"),
    ((["a", "b", "c"], P3, B3), "numeric"),
])
@pytest.mark.parametrize("estimator", [ips, snips, lambda *a: clipped_ips(*a, max_weight=3.0)])
def test_per_step_bad_input(estimator, args, match):
    with pytest.raises(ValueError, match=match):
        estimator(*args)


def test_model_based_bad_input():
    q, pi = np.zeros((3, 2)), np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="sum to 1"):
        direct_method(q, np.full((3, 2), 0.4))
    with pytest.raises(ValueError, match=r"target_probs_all.*\[0, 1\]"):
        direct_method(q, np.array([[1.5, -0.5]] * 3))
    with pytest.raises(ValueError, match="shape"):
        direct_method(np.zeros((3, 3)), pi)
    with pytest.raises(ValueError, match="2-D"):
        direct_method(q[0], pi[0])
    with pytest.raises(ValueError, match="finite"):
        direct_method(np.full((3, 2), np.nan), pi)
    with pytest.raises(ValueError, match=r"invalid actions \[2\]: expected action indices in \[0, 2\) \(outside in 1 of 3 rows, at \[1\]"):
        doubly_robust(R3, [0, 2, 1], B3, q, pi)
    with pytest.raises(ValueError, match="integer"):
        doubly_robust(R3, [0, 0.5, 1], B3, q, pi)
    with pytest.raises(ValueError, match=r"invalid lengths of rewards, actions, propensities, .* \[3, 2, 3, 3, 3\]"):
        doubly_robust(R3, [0, 1], B3, q, pi)
    with pytest.raises(ValueError, match="missing"):
        doubly_robust(R3, [0, 1, 1], [np.nan] * 3, q, pi)
    with pytest.raises(ValueError, match="sum to 1"):
        estimate_all(R3, [0, 1, 1], B3, np.full((3, 2), 0.6))


def test_other_bad_input():
    with pytest.raises(ValueError, match="max_weight"):
        clipped_ips(R3, P3, B3, 0.0)
    with pytest.raises(ValueError, match="support"):
        snips(R3, np.zeros(3), B3)
    with pytest.raises(ValueError, match="n_actions"):
        deterministic_target([0, 1], 0)
    with pytest.raises(ValueError, match=r"invalid actions_chosen \[2\]: expected action indices in \[0, 2\)"):
        deterministic_target([0, 2], 2)


def test_trajectory_bad_input():
    r, p, b = np.ones(4), np.full(4, 0.5), np.full(4, 0.5)
    with pytest.raises(ValueError, match="ordered by session"):
        per_decision_ips([0, 1, 0, 1], r, p, b)
    with pytest.raises(ValueError, match="increase strictly"):
        trajectory_ips([0, 0, 1, 1], r, p, b, steps=[1, 0, 0, 1])
    with pytest.raises(ValueError, match=r"invalid lengths of sessions, rewards \[3, 4\]: expected equal lengths"):
        trajectory_ips([0, 0, 1], r, p, b)
    with pytest.raises(ValueError, match="discount"):
        per_decision_ips([0, 0, 1, 1], r, p, b, discount=0.0)
    with pytest.raises(ValueError, match="missing"):
        weighted_per_decision_ips([0, 0, 1, 1], r, p, [0.5, np.nan, 0.5, 0.5])
    with pytest.raises(ValueError, match="support"):
        weighted_per_decision_ips([0, 0, 1, 1], r, np.zeros(4), b)
    with pytest.raises(ValueError, match="empty"):
        trajectory_ips([], [], [], [])
