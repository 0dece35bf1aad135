"""Tests that kill mutants which survived the rest of the suite (issue 11, `make mutation`).

Each test checks what the library's own code does, through its public paths, so that a changed
sign, a dropped term or a wrong index makes it fail. The mutants they were written against:

- the sign of REINFORCE's value baseline (``returns + values`` passed);
- the propensity the logging policy records (a constant passed);
- the quality term of the purchase model (dropping it passed);
- the slate choice (which slot's item counts as clicked).
"""

from __future__ import annotations

import os
import pickle
import pickletools

import numpy as np
import pytest
import torch

from recrl_lite.agents.baselines import SoftmaxBehaviourPolicy
from recrl_lite.agents.reinforce import ReinforceAgent, ReinforceConfig
from recrl_lite.data.synthetic import generate_dataset
from recrl_lite.envs import ECommerceConfig, ECommerceEnv

SEEDS = [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------- REINFORCE's baseline

def _reinforce(env: ECommerceEnv, seed: int, **config: object) -> ReinforceAgent:
    cfg = ReinforceConfig(hidden=(16,), normalize_advantages=False, entropy_coef=0.0, **config)  # type: ignore[arg-type]
    return ReinforceAgent(env.observation_space, env.action_space, cfg, seed=seed)


def _batch(env: ECommerceEnv, seed: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    obs = np.stack([env.reset(seed=seed + i)[0] for i in range(n)])
    actions = np.random.default_rng(seed).integers(0, env.action_space.n, n)
    return torch.as_tensor(obs), torch.as_tensor(actions)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_return_equal_to_the_value_baseline_leaves_the_policy_unchanged(seed: int) -> None:
    """Advantage G - V(s) = 0 when the critic predicts G exactly: no policy gradient at all."""
    env = ECommerceEnv()
    agent = _reinforce(env, seed, value_coef=0.0)
    obs, actions = _batch(env, seed)
    with torch.no_grad():
        values = agent.net(obs)[1]
    before = [p.detach().clone() for p in agent.net.policy_head.parameters()]
    agent.update(obs, actions, returns=values.clone())
    after = list(agent.net.policy_head.parameters())
    assert all(torch.equal(b, a) for b, a in zip(before, after))
    # ... while the same returns without a baseline do move the policy
    plain = _reinforce(env, seed, baseline="none", value_coef=0.0)
    plain.net.load_state_dict(agent.net.state_dict())
    plain_before = [p.detach().clone() for p in plain.net.policy_head.parameters()]
    plain.update(obs, actions, returns=values.clone() + 1.0)
    assert not all(torch.equal(b, a) for b, a in zip(plain_before, plain.net.policy_head.parameters()))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("sign", [+1.0, -1.0])
def test_an_action_better_than_the_baseline_becomes_more_likely(seed: int, sign: float) -> None:
    """G > V(s) raises log pi(a|s); G < V(s) lowers it (the sign of the advantage, not of G)."""
    env = ECommerceEnv()
    agent = _reinforce(env, seed, value_coef=0.0, learning_rate=1e-2)
    obs, actions = _batch(env, seed, n=1)
    with torch.no_grad():
        logits, value = agent.net(obs)
    log_p_before = torch.log_softmax(logits, 1)[0, actions[0]].item()
    # a positive return that is still below the baseline must lower the action's probability
    returns = value + sign * 0.5 * value.abs().clamp(min=0.1)
    agent.update(obs, actions, returns=returns)
    with torch.no_grad():
        log_p_after = torch.log_softmax(agent.net(obs)[0], 1)[0, actions[0]].item()
    assert np.sign(log_p_after - log_p_before) == sign


# --------------------------------------------------------------------------- the logging policy

@pytest.mark.parametrize("seed", SEEDS)
def test_the_recorded_propensity_is_the_probability_of_the_chosen_item(seed: int) -> None:
    env = ECommerceEnv()
    behaviour = SoftmaxBehaviourPolicy(env, temperature=0.5, epsilon=0.2, seed=seed)
    obs, _ = env.reset(seed=seed)
    seen = set()
    for _ in range(30):
        p = behaviour.probabilities()
        action = behaviour.act(obs)
        assert behaviour.last_propensity == p[action]
        seen.add(round(behaviour.last_propensity, 12))
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset(seed=seed + 1000)
    assert len(seen) > 5  # propensities vary with the item and the state


def test_the_logging_policy_is_the_documented_mixture() -> None:
    r"""pi_b = (1 - eps) softmax(v / tau) + eps / n: the exploration floor and the softmax ratios."""
    env = ECommerceEnv()
    env.reset(seed=SEEDS[0])
    v = env.click_utilities()
    n = v.size
    for tau, eps in ((1.0, 0.1), (0.25, 0.3), (2.0, 1.0)):
        p = SoftmaxBehaviourPolicy(env, temperature=tau, epsilon=eps).probabilities()
        assert p.sum() == pytest.approx(1.0) and p.min() >= eps / n - 1e-15
        greedy_part = p - eps / n
        if eps < 1.0:
            i, j = int(np.argmax(v)), int(np.argmin(v))
            assert greedy_part[i] / greedy_part[j] == pytest.approx(np.exp((v[i] - v[j]) / tau), rel=1e-9)
        else:
            np.testing.assert_allclose(p, 1.0 / n)


def test_logged_propensities_are_unbiased_importance_weights() -> None:
    """E_b[1 / pi_b(a|s)] = n in every state, so the mean inverse propensity of a log is n (a constant or
    misindexed propensity is not)."""
    means = []
    for seed in SEEDS:
        log = generate_dataset(n_users=150, seed=seed).interactions
        means.append(float((1.0 / log.propensity).mean()))
        assert log.propensity.nunique() > 100
    n_items = ECommerceConfig().n_items
    # the mean of about 7,000 weights bounded by n / eps = 1,200 has a standard error near 4
    assert np.all(np.abs(np.array(means) - n_items) < 20), means


# --------------------------------------------------------------------------- the purchase model

@pytest.mark.parametrize("seed", SEEDS)
def test_purchases_rise_with_quality_by_the_quality_weight(seed: int) -> None:
    """The purchase logit moves by w_q (q - 1): nothing at q = 1, up for better items, down for worse."""
    base = ECommerceEnv(ECommerceConfig(purchase_quality_weight=0.0))
    strong = ECommerceEnv(ECommerceConfig(purchase_quality_weight=3.0))
    base.reset(seed=seed)
    strong.reset(seed=seed)
    q = base.catalogue.quality
    logit = lambda p: np.log(p / (1.0 - p))  # noqa: E731
    shift = logit(strong.purchase_probabilities()) - logit(base.purchase_probabilities())
    np.testing.assert_allclose(shift, 3.0 * (q - 1.0), atol=1e-9)
    assert (shift[q > 1.0] > 0).all() and (shift[q < 1.0] < 0).all()


def test_the_simulated_purchases_follow_the_purchase_probabilities() -> None:
    """Over many clicks, the purchase rate of each item is its purchase_probabilities() entry."""
    env = ECommerceEnv(ECommerceConfig(patience_low=50.0, patience_high=60.0))
    _, info = env.reset(seed=SEEDS[0])
    user = info["user"]
    truth = env.purchase_probabilities()
    items = np.argsort(env.click_probabilities())[-3:]  # the most clicked: many purchases to count
    bought: dict[int, list[int]] = {int(i): [] for i in items}
    for episode in range(1, 201):
        env.reset(seed=SEEDS[0] + episode, options={"user": user})  # the same user, fresh uniforms
        for t in range(env.config.horizon):
            item = int(items[t % 3])
            _, _, terminated, truncated, info = env.step(item)
            if info["click"]:
                bought[item].append(int(info["purchase"]))
            if terminated or truncated:
                break
    for item, outcomes in bought.items():
        n, rate = len(outcomes), float(np.mean(outcomes))
        se = np.sqrt(truth[item] * (1 - truth[item]) / n)
        assert abs(rate - truth[item]) < 4 * se + 1e-9, (item, n, rate, truth[item])


# --------------------------------------------------------------------------- the slate choice

@pytest.mark.parametrize("seed", SEEDS)
def test_the_clicked_slot_follows_the_choice_probabilities(seed: int) -> None:
    """Each slot (and no click) is chosen as often as choice_probabilities says, and the item reported
    as clicked is the one in the chosen slot."""
    cfg = ECommerceConfig(slate_size=4, position_bias=0.8, patience_low=1e6, patience_high=2e6, horizon=2000)
    env = ECommerceEnv(cfg)
    env.reset(seed=seed)
    slate = np.argsort(env.click_utilities())[-4:][::-1].copy()  # four attractive items, best first
    counts = np.zeros(5)
    expected = np.zeros(5)
    for _ in range(cfg.horizon):
        probs = env.choice_probabilities(slate)
        _, _, terminated, truncated, info = env.step(slate)
        clicked = info["clicked_item"]
        counts[list(slate).index(clicked) if clicked >= 0 else 4] += 1
        expected += probs
        if terminated or truncated:
            break
    assert counts.sum() == cfg.horizon
    chi2 = float((((counts - expected) ** 2) / expected).sum())
    assert chi2 < 25.0, (counts, expected)  # chi-square with 4 d.o.f.: P(> 25) < 1e-4
    assert counts[0] > counts[3]  # the position bias favours the top slot


# --------------------------------------------------------------------------- the batched ground truth

def _first_step_outcomes(cfg: ECommerceConfig, item: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, object]:
    """(patience change, reward) of recommending ``item`` first to one user, over ``n`` fresh draws."""
    env = ECommerceEnv(cfg)
    _, info = env.reset(seed=seed)
    user = info["user"]
    d_patience, rewards = np.zeros(n), np.zeros(n)
    for k in range(n):
        env.reset(seed=seed + 1 + k, options={"user": user})
        before = env.patience
        _, reward, _, _, _ = env.step(item)
        d_patience[k], rewards[k] = env.patience - before, reward
    env.reset(seed=seed, options={"user": user})
    return d_patience, rewards, env


@pytest.mark.parametrize("reward", ["click", "revenue"])
def test_the_ground_truth_is_what_the_simulation_does_on_average(reward: str) -> None:
    """expected_patience_change and expected_immediate_reward are the means of the simulated step."""
    cfg = ECommerceConfig(reward=reward)
    for seed in SEEDS[:3]:
        probe = ECommerceEnv(cfg)
        probe.reset(seed=seed)
        for item in (int(np.argmax(probe.click_probabilities())), int(np.argmin(probe.catalogue.quality))):
            d_patience, rewards, env = _first_step_outcomes(cfg, item, 3000, seed)
            for simulated, truth in ((d_patience, env.expected_patience_change()[item]),
                                     (rewards, env.expected_immediate_reward()[item])):
                se = simulated.std() / np.sqrt(simulated.size)
                assert abs(simulated.mean() - truth) < 4.5 * se + 1e-12, (reward, seed, item, simulated.mean(), truth)


def test_a_one_item_slate_is_the_single_recommendation() -> None:
    """The multinomial logit of a one-item slate is the logistic click model of a single recommendation."""
    env = ECommerceEnv()
    env.reset(seed=SEEDS[0])
    p = env.click_probabilities()
    for item in range(0, env.config.n_items, 17):
        probs = env.choice_probabilities([item])
        assert probs[0] == pytest.approx(p[item], rel=1e-12) and probs.sum() == pytest.approx(1.0)


def test_choice_probabilities_do_not_overflow() -> None:
    """Utilities in the hundreds (a strong bias) still give probabilities, not NaN."""
    env = ECommerceEnv(ECommerceConfig(no_click_bias=-800.0, slate_size=3))
    env.reset(seed=SEEDS[0])
    probs = env.choice_probabilities([0, 1, 2])
    assert np.isfinite(probs).all() and probs.sum() == pytest.approx(1.0) and probs[-1] < 1e-100


# ------------------------------------------------------------------ the checkpoint's pickle scanner
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_the_pickle_scanner_names_every_global_in_every_protocol(protocol):
    from recrl_lite.agents.base import _globals_of_pickle

    # protocols 0-3 write GLOBAL opcodes; 4 and 5 write STACK_GLOBAL, whose second module string
    # is fetched from the memo (BINGET)
    assert _globals_of_pickle(pickle.dumps([os.system, os.getcwd], protocol=protocol)) == [
        f"{os.system.__module__}.system", f"{os.getcwd.__module__}.getcwd"]


def test_the_pickle_scanner_follows_the_memo_past_256_entries_and_stops_at_stop():
    from recrl_lite.agents.base import _globals_of_pickle

    many = [f"s{i}" for i in range(300)] + [os.system, os.getcwd]  # the memo index no longer fits a byte
    data = pickle.dumps(many, protocol=4)
    assert "LONG_BINGET" in {op.name for op, _, _ in pickletools.genops(data)}
    assert _globals_of_pickle(data) == [f"{os.system.__module__}.system", f"{os.getcwd.__module__}.getcwd"]
    # only the first pickle is ever unpickled: what follows its STOP is not read
    assert _globals_of_pickle(pickle.dumps(1) + pickle.dumps(os.system)) == []


# ------------------------------------------------------------------ bandits
def test_the_linear_contextual_problem_has_the_documented_means():
    from recrl_lite.agents.bandits import LinearContextualBandit

    problem = LinearContextualBandit(n_arms=4, dim=6, problem_seed=3)
    theta = problem.theta
    assert theta.shape == (4, 6)
    np.testing.assert_array_equal(theta[:, 0], 0.5)  # the intercept
    np.testing.assert_allclose(np.linalg.norm(theta[:, 1:], axis=1), 0.4)  # 0.4 u_a, u_a a unit vector
    problem.reset(11)
    for _ in range(20):  # mu = 0.5 + 0.4 u_a.z with z on the unit sphere: inside [0.1, 0.9]
        x = problem.observe()
        assert x[0] == 1.0 and np.isclose(np.linalg.norm(x[1:]), 1.0)
        mu = problem.expected_rewards()
        np.testing.assert_allclose(mu, theta @ x)
        assert np.all((0.1 - 1e-12 <= mu) & (mu <= 0.9 + 1e-12))


def test_run_contextual_bandit_is_reproducible_from_its_seed_alone():
    from recrl_lite.agents.bandits import LinearContextualBandit, LinearThompson, run_contextual_bandit

    def run(seed):
        return run_contextual_bandit(LinearThompson(4, 6), LinearContextualBandit(4, 6, problem_seed=0), 60, seed=seed)

    first = run(5)
    np.testing.assert_array_equal(first, run(5))
    # the seed reaches the problem's contexts and rewards: another seed gives another regret curve
    assert not np.array_equal(first, run(6))
    # and a problem reset beforehand is re-seeded, not continued
    problem = LinearContextualBandit(4, 6, problem_seed=0)
    problem.reset(123)
    problem.observe()
    np.testing.assert_array_equal(run_contextual_bandit(LinearThompson(4, 6), problem, 60, seed=5), first)


def test_thompson_takes_binary_rewards_as_they_are_and_draws_only_for_fractional_ones():
    from recrl_lite.agents.bandits import BetaBernoulliThompson

    bandit = BetaBernoulliThompson(3, seed=0)
    state = bandit.rng.bit_generator.state
    bandit.update(0, 1.0)
    bandit.update(1, 0.0)
    assert bandit.rng.bit_generator.state == state  # no coin flipped for a 0 or a 1
    bandit.update(2, 0.5)
    assert bandit.rng.bit_generator.state != state  # a Bernoulli(0.5) trial
