r"""Off-policy evaluation (OPE): a target policy's value from a behaviour policy's logs (chapter 5).

Chapter 5 introduces these estimators. The book checks each one against the simulator's true value.
The logs come from a behaviour (logging) policy :math:`\beta`. Each step records the context
:math:`x_i`, the action :math:`a_i \sim \beta(\cdot|x_i)`, the reward :math:`r_i`, and the
propensity :math:`\beta_i = \beta(a_i|x_i)`. From these we estimate the value of a target policy
:math:`\pi`:

.. math:: V(\pi) = \mathbb{E}_{x}\, \mathbb{E}_{a \sim \pi(\cdot|x)}\, r(x, a).

Per-step (contextual-bandit) estimators. All of them use the importance weight
:math:`w_i = \pi(a_i|x_i) / \beta_i`.

* :func:`ips`: inverse propensity scoring. Unbiased when the propensities are right and
  :math:`\beta` covers :math:`\pi` (support).
* :func:`clipped_ips`: IPS with the weights capped. It has lower variance, and its bias is known
  (see the function).
* :func:`snips`: self-normalised IPS. It is biased by :math:`O(1/n)`, consistent, and stays in the
  range of the rewards.
* :func:`direct_method`: the average of a reward model under :math:`\pi`. It is biased whenever the
  model is wrong.
* :func:`doubly_robust`: DM plus an IPS correction of the model's residuals. It is unbiased if the
  propensities are right, even when the model is wrong.

Trajectory (session-level) estimators of the expected session return. They are unbiased where the
per-step ones are not, because :math:`\pi` also changes which states occur later in a session.

* :func:`trajectory_ips`: the session return times the product of all the session's weights.
* :func:`per_decision_ips`: each reward times the product of the weights up to its step.
* :func:`weighted_per_decision_ips`: the self-normalised form of the per-decision estimator.

Every estimator returns an :class:`OPEEstimate`. It holds the value, a standard error and a 95%
normal-approximation interval, computed from the per-sample (or per-session) terms. It also holds
two weight diagnostics: Kish's effective sample size :math:`(\sum w)^2 / \sum w^2` (Kish 1965,
*Survey Sampling*) and the largest weight. A small ESS or a huge maximum weight
says that the interval is not to be trusted, whatever its width.

**Support, and deterministic targets.** For a deterministic target
(:func:`deterministic_target`), :math:`\pi(a|x) = 1[a = \pi(x)]`. The weight is then
:math:`1[a_i = \pi(x_i)] / \beta_i`, so IPS uses only the logged steps where the behaviour happened
to pick the target's action; every other row contributes zero. IPS is unbiased only if
:math:`\beta(\pi(x)|x) > 0` for every context (the support, or positivity, condition). Where the
behaviour never takes the target's action, the logs say nothing about it. IPS then silently
estimates :math:`\mathbb{E}_x[r(x,\pi(x))\,1\{\beta(\pi(x)|x) > 0\}]`, and no amount of data
reveals the gap. The variance also grows like :math:`1/\beta(\pi(x)|x)`, so a behaviour policy
that explores little makes these estimates noisy even where the support holds. The logs alone
cannot detect missing support. It has to come from knowing :math:`\beta` (for example an
ε-greedy floor, :class:`~recrl_lite.agents.SoftmaxBehaviourPolicy`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from recrl_lite.errors import invalid

Z_975 = 1.959963984540054
"""Two-sided 95% standard-normal quantile used for every interval here."""

_ROW_SUM_ATOL = 1e-6
"""How far a row of action probabilities may sum from 1 (float round-off from a softmax)."""


@dataclass(frozen=True)
class OPEEstimate:
    """One off-policy estimate with its uncertainty and weight diagnostics (chapter 5)."""

    estimator: str
    """Which estimator produced it (``"ips"``, ``"snips"``, ``"dr"``, ...)."""
    value: float
    """The estimate of :math:`V(\\pi)` (per step) or of the expected session return."""
    se: float
    """Standard error from the per-sample (per-session) terms; NaN when there is only one."""
    ci_low: float
    """Lower end of the 95% normal-approximation interval, ``value - 1.96 se``."""
    ci_high: float
    """Upper end of the 95% normal-approximation interval, ``value + 1.96 se``."""
    n: int
    """Number of independent units averaged: logged steps (per-step) or sessions (trajectory)."""
    ess: float
    """Kish effective sample size of the weights, :math:`(\\sum w)^2/\\sum w^2` (``n`` for DM)."""
    max_weight: float
    """Largest importance weight used (NaN for the direct method, which uses none)."""

    def as_dict(self) -> dict[str, float | int | str]:
        """The fields as a plain dict (one row of :func:`estimate_all`)."""
        return asdict(self)


# ============================================================================ per-step estimators
def ips(rewards: ArrayLike, target_probs_of_logged: ArrayLike, propensities: ArrayLike) -> OPEEstimate:
    r"""Inverse propensity scoring (the Horvitz–Thompson estimator), chapter 5.

    .. math:: \hat V_{\mathrm{IPS}} = \frac1n \sum_{i=1}^n \frac{\pi(a_i|x_i)}{\beta(a_i|x_i)}\, r_i

    Horvitz & Thompson (1952), *JASA* 47(260), the estimator of a population total (divided by n).
    The off-policy form is :math:`\hat V_{\mathrm{IPS}}` of Dudík, Langford & Li (2011),
    "Doubly Robust Policy Evaluation and Learning", ICML, Sec. 2. It is unbiased when the
    propensities are the true :math:`\beta(a_i|x_i)` and :math:`\beta` covers :math:`\pi`
    (module docstring, *Support*). The SE is the sample standard deviation of the terms
    :math:`w_i r_i` over :math:`\sqrt n`.

    ``rewards``, ``target_probs_of_logged`` (:math:`\pi(a_i|x_i)`, see :func:`probs_of_logged`)
    and ``propensities`` (:math:`\beta_i`) are 1-D arrays of equal length.
    """
    r, pi, beta = _per_step_inputs(rewards, target_probs_of_logged, propensities)
    w = pi / beta
    return _summarise("ips", w * r, w)


def clipped_ips(
    rewards: ArrayLike, target_probs_of_logged: ArrayLike, propensities: ArrayLike, max_weight: float
) -> OPEEstimate:
    r"""IPS with each weight capped at ``max_weight`` :math:`M` (weight clipping), chapter 5.

    .. math:: \hat V_{\mathrm{clip}} = \frac1n \sum_i \min\!\Big(\frac{\pi(a_i|x_i)}{\beta_i}, M\Big)\, r_i

    This is the truncated IPS of Ionides (2008), "Truncated importance sampling", *JCGS* 17.
    Bottou et al. (2013), "Counterfactual Reasoning and Learning Systems", *JMLR* 14, apply it to
    counterfactual evaluation. Capping
    bounds the variance by :math:`M^2\max r^2`. The price is a bias, which follows from
    :math:`\beta\min(\pi/\beta, M) = \min(\pi, M\beta)`:

    .. math:: \mathbb{E}[\hat V_{\mathrm{clip}}] - V(\pi)
              = -\,\mathbb{E}_x \sum_a \big(\pi(a|x) - M\beta(a|x)\big)_+\, \bar r(x, a).

    The bias is zero when no weight exceeds :math:`M`. With rewards :math:`\ge 0` it is :math:`\le 0`
    (downward). The SE, ESS and max weight describe the clipped weights actually used. The SE
    measures only the noise, not the bias.
    """
    if not (_is_real(max_weight) and math.isfinite(max_weight) and max_weight > 0):
        raise invalid("max_weight", max_weight, "a finite number in (0, inf)")
    r, pi, beta = _per_step_inputs(rewards, target_probs_of_logged, propensities)
    w = np.minimum(pi / beta, float(max_weight))
    return _summarise("clipped_ips", w * r, w)


def snips(rewards: ArrayLike, target_probs_of_logged: ArrayLike, propensities: ArrayLike) -> OPEEstimate:
    r"""Self-normalised IPS, chapter 5.

    .. math:: \hat V_{\mathrm{SN}} = \frac{\sum_i w_i r_i}{\sum_i w_i}, \qquad w_i = \frac{\pi(a_i|x_i)}{\beta_i}

    Swaminathan & Joachims (2015), "The Self-Normalized Estimator for Counterfactual Learning",
    NeurIPS (their estimator :math:`\hat R^{\mathrm{SN}}`). It is a ratio estimator, so it is biased
    by :math:`O(1/n)` and consistent. It always lies inside the range of the logged rewards, and it
    is invariant to adding a constant to the rewards, which IPS is not.

    The SE comes from the delta method (linearising the ratio about :math:`\bar w`). That is the
    standard deviation over :math:`\sqrt n` of the influence terms
    :math:`\psi_i = w_i (r_i - \hat V_{\mathrm{SN}}) / \bar w`. Equivalently,
    :math:`\widehat{\mathrm{Var}} = \sum_i w_i^2 (r_i - \hat V)^2 / (\sum_i w_i)^2` up to the
    :math:`n/(n-1)` factor (the delta-method variance of a ratio estimator, which
    Swaminathan & Joachims also derive for Norm-POEM). It raises if every weight is zero, because
    the target then has no support in the logs.
    """
    r, pi, beta = _per_step_inputs(rewards, target_probs_of_logged, propensities)
    w = pi / beta
    total = float(w.sum())
    if total <= 0.0:
        raise invalid("target_probs_of_logged", pi, "a positive probability for at least one logged action",
                      why="every importance weight is 0, so the self-normalised estimate is 0/0; "
                          "the logs have no support for this target policy")
    value = float((w * r).sum()) / total
    influence = w * (r - value) / w.mean()
    return _summarise("snips", value + influence, w, value=value)


def direct_method(predicted_rewards_all: ArrayLike, target_probs_all: ArrayLike) -> OPEEstimate:
    r"""The direct method: average a reward model over the target policy's actions, chapter 5.

    .. math:: \hat V_{\mathrm{DM}} = \frac1n \sum_i \sum_a \pi(a|x_i)\, \hat r(x_i, a)

    Dudík, Langford & Li (2011), ICML, Sec. 2 (:math:`\hat V_{\mathrm{DM}}`). The estimate uses
    no propensities. Its error is the model's error averaged under :math:`\pi`,
    :math:`\mathbb{E}_x\sum_a\pi(a|x)(\hat r - \bar r)(x,a)`, so a wrong model gives a biased
    estimate that more data does not fix. The SE is taken over the per-context terms. It reflects
    only the spread of contexts, never the model's bias.

    ``predicted_rewards_all`` and ``target_probs_all`` are (n, n_actions), one row per logged context.
    ``ess`` is reported as ``n`` and ``max_weight`` as NaN, because no weights are used.
    """
    q, pi_all = _model_inputs(predicted_rewards_all, target_probs_all)
    terms = (pi_all * q).sum(axis=1)
    n = terms.shape[0]
    est = _summarise("dm", terms, np.ones(n))
    return OPEEstimate("dm", est.value, est.se, est.ci_low, est.ci_high, n, float(n), math.nan)


def doubly_robust(
    rewards: ArrayLike,
    actions: ArrayLike,
    propensities: ArrayLike,
    predicted_rewards_all: ArrayLike,
    target_probs_all: ArrayLike,
) -> OPEEstimate:
    r"""The doubly robust estimator, chapter 5.

    .. math:: \hat V_{\mathrm{DR}} = \frac1n \sum_i \Big[\sum_a \pi(a|x_i)\,\hat r(x_i,a)
              + \frac{\pi(a_i|x_i)}{\beta_i}\big(r_i - \hat r(x_i, a_i)\big)\Big]

    Dudík, Langford & Li (2011), "Doubly Robust Policy Evaluation and Learning", ICML, Sec. 2
    (:math:`\hat V_{\mathrm{DR}}`), written for stochastic :math:`\pi` as in Dudík, Erhan,
    Langford & Li (2014), *Statistical Science* 29(4). It is the direct method plus an IPS
    estimate of the model's residual. With the true propensities the correction has mean
    :math:`V(\pi) - \hat V_{\mathrm{DM}}`, so DR is unbiased *whatever* the reward model. With the
    true model the correction has mean 0, so DR is unbiased whatever the propensities. Its variance
    is small when :math:`\hat r` is close to the rewards. The SE comes from the per-sample terms
    in brackets.

    ``actions`` are the logged action indices in ``[0, n_actions)``. ``predicted_rewards_all``
    (:math:`\hat r`) and ``target_probs_all`` (:math:`\pi`) are (n, n_actions).
    """
    q, pi_all = _model_inputs(predicted_rewards_all, target_probs_all)
    r = _rewards_1d(rewards)
    beta = _propensities_1d(propensities)
    a = _actions_1d(actions, q.shape[1])
    _same_length(rewards=r, actions=a, propensities=beta, predicted_rewards_all=q, target_probs_all=pi_all)
    rows = np.arange(r.shape[0])
    w = pi_all[rows, a] / beta
    terms = (pi_all * q).sum(axis=1) + w * (r - q[rows, a])
    return _summarise("dr", terms, w)


def estimate_all(
    rewards: ArrayLike,
    actions: ArrayLike,
    propensities: ArrayLike,
    target_probs_all: ArrayLike,
    predicted_rewards_all: ArrayLike | None = None,
    max_weight: float | None = None,
) -> pd.DataFrame:
    """The per-step estimators side by side, one row each (chapter 5's comparison table).

    The rows are ``ips`` and ``snips``. ``clipped_ips`` is added when ``max_weight`` is given, and
    ``dm`` and ``dr`` when ``predicted_rewards_all`` is given (they need a reward model). The
    index is named ``estimator``. The columns are ``value, se, ci_low, ci_high, ess, max_weight, n``.
    """
    pi_all = _prob_matrix(target_probs_all, "target_probs_all")
    a = _actions_1d(actions, pi_all.shape[1])
    _same_length(actions=a, target_probs_all=pi_all)
    pi_logged = pi_all[np.arange(a.shape[0]), a]
    results = [ips(rewards, pi_logged, propensities)]
    if max_weight is not None:
        results.append(clipped_ips(rewards, pi_logged, propensities, max_weight))
    results.append(snips(rewards, pi_logged, propensities))
    if predicted_rewards_all is not None:
        results.append(direct_method(predicted_rewards_all, pi_all))
        results.append(doubly_robust(rewards, a, propensities, predicted_rewards_all, pi_all))
    table = pd.DataFrame([e.as_dict() for e in results]).set_index("estimator")
    return table[["value", "se", "ci_low", "ci_high", "ess", "max_weight", "n"]]


def deterministic_target(actions_chosen: ArrayLike, n_actions: int) -> np.ndarray:
    """One-hot action probabilities (n, n_actions) of a deterministic target policy (chapter 5).

    Row ``i`` puts probability 1 on ``actions_chosen[i]``, the action the target policy would
    take in logged context ``i`` (e.g. a greedy agent's argmax). With such a target, IPS keeps only
    the rows where the behaviour logged that same action, weighted by ``1/propensity``. It needs
    the behaviour to give every target action a positive probability (module docstring, *Support*).
    """
    if not isinstance(n_actions, (int, np.integer)) or isinstance(n_actions, bool) or n_actions < 1:
        raise invalid("n_actions", n_actions, "an int in [1, inf)")
    a = _actions_1d(actions_chosen, int(n_actions), name="actions_chosen")
    probs = np.zeros((a.shape[0], int(n_actions)))
    probs[np.arange(a.shape[0]), a] = 1.0
    return probs


def probs_of_logged(target_probs_all: ArrayLike, actions: ArrayLike) -> np.ndarray:
    """:math:`\\pi(a_i|x_i)`: the target's probability of each logged action, from (n, n_actions) rows."""
    pi_all = _prob_matrix(target_probs_all, "target_probs_all")
    a = _actions_1d(actions, pi_all.shape[1])
    _same_length(actions=a, target_probs_all=pi_all)
    return pi_all[np.arange(a.shape[0]), a]


# ============================================================================ trajectory estimators
def trajectory_ips(
    sessions: ArrayLike,
    rewards: ArrayLike,
    target_probs_of_logged: ArrayLike,
    propensities: ArrayLike,
    steps: ArrayLike | None = None,
    discount: float = 1.0,
) -> OPEEstimate:
    r"""Trajectory-wise importance sampling of the expected session return, chapter 5.

    .. math:: \hat G_{\mathrm{IS}} = \frac1m \sum_{j=1}^m \Big(\prod_{t=0}^{T_j-1} w_{j,t}\Big)
              \sum_{t=0}^{T_j-1} \gamma^t r_{j,t}, \qquad w_{j,t} = \frac{\pi(a_{j,t}|s_{j,t})}{\beta_{j,t}}

    Precup, Sutton & Singh (2000), "Eligibility Traces for Off-Policy Policy Evaluation", ICML,
    the ordinary (whole-trajectory) importance-sampling estimator. The estimator is unbiased for the session
    return under :math:`\pi` when the propensities are right. The whole session's probability
    ratio multiplies its return, so the variance grows roughly exponentially with the horizon.
    :func:`per_decision_ips` removes part of it.

    Inputs are one row per logged step, **ordered by session and then by time within the session**
    (as :func:`recrl_lite.data.log_transitions` writes them). ``sessions`` holds the session ids.
    Each session must be one contiguous block, and this is checked. ``steps`` (optional) holds the
    time index within the session. If given, it must increase strictly inside each session, which
    is also checked. ``discount`` :math:`\gamma \in (0, 1]` discounts by position in the session.
    The SE, CI, ESS and max weight are over the :math:`m` sessions, using the session weights
    :math:`\prod_t w_{j,t}`.
    """
    lay = _trajectory_inputs(sessions, rewards, target_probs_of_logged, propensities, steps, discount)
    rho_final = lay.rho[:, -1]  # padding steps have weight 1, so the last column is the full product
    terms = rho_final * lay.discounted.sum(axis=1)
    return _summarise("trajectory_ips", terms, rho_final)


def per_decision_ips(
    sessions: ArrayLike,
    rewards: ArrayLike,
    target_probs_of_logged: ArrayLike,
    propensities: ArrayLike,
    steps: ArrayLike | None = None,
    discount: float = 1.0,
) -> OPEEstimate:
    r"""Per-decision importance sampling of the expected session return, chapter 5.

    .. math:: \hat G_{\mathrm{PD}} = \frac1m \sum_{j=1}^m \sum_{t=0}^{T_j-1} \gamma^t
              \Big(\prod_{k=0}^{t} w_{j,k}\Big) r_{j,t}

    Precup, Sutton & Singh (2000), ICML, the per-decision importance-sampling estimator.
    The reward at step :math:`t` cannot depend on later actions, so it needs only the weights up to
    :math:`t`. The estimator stays unbiased, and its variance is lower than
    :func:`trajectory_ips`'s whenever the later weights only add noise. Inputs and ordering are as in
    :func:`trajectory_ips`. ``ess`` is the smallest Kish ESS over steps :math:`t` of the
    cumulative weights :math:`\prod_{k\le t} w_{j,k}` across sessions. A session that ended keeps
    its final weight (it sits in an absorbing state, where both policies have probability 1).
    ``max_weight`` is the largest cumulative weight.
    """
    lay = _trajectory_inputs(sessions, rewards, target_probs_of_logged, propensities, steps, discount)
    terms = (lay.rho * lay.discounted).sum(axis=1)
    return _summarise("per_decision_ips", terms, lay.rho[:, -1], ess=_min_step_ess(lay.rho),
                      max_weight=float(lay.rho.max()))


def weighted_per_decision_ips(
    sessions: ArrayLike,
    rewards: ArrayLike,
    target_probs_of_logged: ArrayLike,
    propensities: ArrayLike,
    steps: ArrayLike | None = None,
    discount: float = 1.0,
) -> OPEEstimate:
    r"""Weighted (self-normalised) per-decision importance sampling, chapter 5.

    .. math:: \hat G_{\mathrm{WPD}} = \sum_t \gamma^t
              \frac{\sum_j \rho_{j,t}\, r_{j,t}}{\sum_j \rho_{j,t}}, \qquad \rho_{j,t} = \prod_{k\le t} w_{j,k}

    Precup, Sutton & Singh (2000), ICML, the weighted per-decision importance-sampling estimator.
    Sessions that ended before :math:`t` keep their final :math:`\rho` in the denominator with
    reward 0, as in the absorbing-state convention of Thomas & Brunskill (2016, ICML). Like
    :func:`snips` it is biased, consistent and of lower variance. The SE comes from the delta
    method over sessions, with influence
    :math:`\psi_j = \sum_t \gamma^t \rho_{j,t}(r_{j,t} - \hat V_t)/\bar\rho_t`. A step at which
    every :math:`\rho_{j,t}` is 0 contributes 0; ``ess`` is then 0, which flags it. The function
    raises if that already happens at the first step. Inputs are as in :func:`trajectory_ips`.
    """
    lay = _trajectory_inputs(sessions, rewards, target_probs_of_logged, propensities, steps, discount)
    mean_rho = lay.rho.mean(axis=0)
    if mean_rho[0] <= 0.0:
        raise invalid("target_probs_of_logged", np.asarray(target_probs_of_logged),
                      "a positive first-step weight in at least one session",
                      why="every session's first-step weight is 0, so the self-normalised estimate is 0/0; "
                          "the logs have no support for this target policy")
    safe = np.where(mean_rho > 0.0, mean_rho, 1.0)
    step_values = np.where(mean_rho > 0.0, (lay.rho * lay.discounted).mean(axis=0) / safe, 0.0)
    value = float(step_values.sum())
    influence = ((lay.rho * (lay.discounted - step_values)) / safe).sum(axis=1)
    return _summarise("weighted_per_decision_ips", value + influence, lay.rho[:, -1], value=value,
                      ess=_min_step_ess(lay.rho), max_weight=float(lay.rho.max()))


# ============================================================================ shared helpers
def _summarise(
    name: str,
    terms: np.ndarray,
    weights: np.ndarray,
    value: float | None = None,
    ess: float | None = None,
    max_weight: float | None = None,
) -> OPEEstimate:
    """Mean, SE and normal 95% CI of the per-unit ``terms``, plus Kish ESS and max of ``weights``."""
    n = int(terms.shape[0])
    v = float(terms.mean()) if value is None else value
    se = float(terms.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    return OPEEstimate(
        estimator=name,
        value=v,
        se=se,
        ci_low=v - Z_975 * se,
        ci_high=v + Z_975 * se,
        n=n,
        ess=_kish_ess(weights) if ess is None else ess,
        max_weight=float(weights.max()) if max_weight is None else max_weight,
    )


def _is_real(x: object) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _kish_ess(w: np.ndarray) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2; 0 when every weight is 0."""
    sq = float((w * w).sum())
    return float(w.sum()) ** 2 / sq if sq > 0.0 else 0.0


def _min_step_ess(rho: np.ndarray) -> float:
    """Smallest Kish ESS over the columns (steps) of the cumulative weights."""
    sq = (rho * rho).sum(axis=0)
    ess = np.where(sq > 0.0, rho.sum(axis=0) ** 2 / np.where(sq > 0.0, sq, 1.0), 0.0)
    return float(ess.min())


def _rows(bad: np.ndarray) -> str:
    """Where a 1-D mask is True, for an error's ``why``: ``2 of 30 rows, at [1, 4]``."""
    rows = np.flatnonzero(bad)
    more = ", ..." if rows.size > 5 else ""
    return f"{rows.size} of {bad.size} rows, at [{', '.join(str(i) for i in rows[:5])}{more}]"


def _as_1d(x: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise invalid(name, arr, "a 1-D array (one entry per logged step)")
    if arr.shape[0] == 0:
        raise invalid(name, arr, "a non-empty array", why="off-policy evaluation needs at least one logged step")
    return arr


def _float_1d(x: ArrayLike, name: str) -> np.ndarray:
    arr = _as_1d(x, name)
    if arr.dtype.kind not in "biuf":
        raise invalid(name, arr, "a numeric array")
    return arr.astype(np.float64)


def _rewards_1d(x: ArrayLike, name: str = "rewards") -> np.ndarray:
    r = _float_1d(x, name)
    bad = ~np.isfinite(r)
    if bad.any():
        raise invalid(name, r[bad][:5].tolist(), "finite values", why=f"not finite in {_rows(bad)}")
    return r


def _propensities_1d(x: ArrayLike, name: str = "propensities") -> np.ndarray:
    beta = _float_1d(x, name)
    missing = np.isnan(beta)
    if missing.any():
        raise invalid(
            name, beta[missing][:5].tolist(), "the behaviour policy's propensity of every logged action",
            why=f"missing, NaN in {_rows(missing)}. Log them at serving time (e.g. SoftmaxBehaviourPolicy "
                "records last_propensity), or estimate beta(a|x) with a model of the logged actions given the "
                "context and pass its probabilities",
        )
    bad = ~((beta > 0.0) & (beta <= 1.0))
    if bad.any():
        raise invalid(
            name, beta[bad][:5].tolist(), "probabilities in (0, 1] (the behaviour's probability of the logged action)",
            why=f"outside in {_rows(bad)}; a logged action cannot have probability 0 under the policy that chose it",
        )
    return beta


def _probs_1d(x: ArrayLike, name: str = "target_probs_of_logged") -> np.ndarray:
    p = _float_1d(x, name)
    bad = ~((p >= 0.0) & (p <= 1.0))  # also catches NaN
    if bad.any():
        raise invalid(name, p[bad][:5].tolist(), "probabilities in [0, 1]", why=f"outside in {_rows(bad)}")
    return p


def _prob_matrix(x: ArrayLike, name: str) -> np.ndarray:
    p = np.asarray(x)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise invalid(name, p, "a non-empty 2-D array (n, n_actions)")
    if p.dtype.kind not in "biuf":
        raise invalid(name, p, "a numeric array")
    p = p.astype(np.float64)
    bad = ~((p >= 0.0) & (p <= 1.0))
    if bad.any():
        where = [[int(i), int(j)] for i, j in np.argwhere(bad)[:5]]
        raise invalid(name, p[bad][:5].tolist(), "probabilities in [0, 1]",
                      why=f"{int(bad.sum())} entries are not, at [row, action] {where}")
    sums = p.sum(axis=1)
    off = np.abs(sums - 1.0) > _ROW_SUM_ATOL
    if off.any():
        raise invalid(name, p[off][:3].tolist(), "rows that sum to 1 (a distribution over actions)",
                      why=f"{_rows(off)}, sum to {sums[off][:5].tolist()}")
    return p


def _actions_1d(x: ArrayLike, n_actions: int, name: str = "actions") -> np.ndarray:
    a = _as_1d(x, name)
    if a.dtype.kind == "f":
        fractional = ~(np.isfinite(a) & (a == np.round(a)))
        if fractional.any():
            raise invalid(name, a[fractional][:5].tolist(), "integer action indices", why=f"in {_rows(fractional)}")
    elif a.dtype.kind not in "iu":
        raise invalid(name, a, "integer action indices")
    a = a.astype(np.int64)
    bad = (a < 0) | (a >= n_actions)
    if bad.any():
        raise invalid(name, a[bad][:5].tolist(), f"action indices in [0, {n_actions})", why=f"outside in {_rows(bad)}")
    return a


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: int(arr.shape[0]) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise invalid("lengths of " + ", ".join(lengths), list(lengths.values()),
                      "equal lengths (one row per logged step)")


def _per_step_inputs(
    rewards: ArrayLike, target_probs_of_logged: ArrayLike, propensities: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = _rewards_1d(rewards)
    pi = _probs_1d(target_probs_of_logged)
    beta = _propensities_1d(propensities)
    _same_length(rewards=r, target_probs_of_logged=pi, propensities=beta)
    return r, pi, beta


def _model_inputs(predicted_rewards_all: ArrayLike, target_probs_all: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    pi_all = _prob_matrix(target_probs_all, "target_probs_all")
    q = np.asarray(predicted_rewards_all)
    if q.shape != pi_all.shape:
        raise invalid("predicted_rewards_all", q, f"the shape {pi_all.shape} of target_probs_all (n, n_actions)")
    if q.dtype.kind not in "biuf" or not np.isfinite(q).all():
        raise invalid("predicted_rewards_all", q, "finite numbers (a reward prediction for every action)")
    return q.astype(np.float64), pi_all


@dataclass(frozen=True)
class _Sessions:
    """Logged steps laid out as (n_sessions, longest) matrices, padded after each session's end."""

    rho: np.ndarray
    """Cumulative weights prod_{k<=t} w_k; padding steps have w = 1, so rho stays at its final value."""
    discounted: np.ndarray
    """gamma^t r_t, 0 on padding."""


def _trajectory_inputs(
    sessions: ArrayLike,
    rewards: ArrayLike,
    target_probs_of_logged: ArrayLike,
    propensities: ArrayLike,
    steps: ArrayLike | None,
    discount: float,
) -> _Sessions:
    if not (_is_real(discount) and 0.0 < discount <= 1.0):
        raise invalid("discount", discount, "a number in (0, 1]")
    ids = _as_1d(sessions, "sessions")
    r, pi, beta = _per_step_inputs(rewards, target_probs_of_logged, propensities)
    _same_length(sessions=ids, rewards=r)
    n = ids.shape[0]
    new = np.r_[True, ids[1:] != ids[:-1]]
    starts = np.flatnonzero(new)
    run_ids, runs = np.unique(ids[starts], return_counts=True)
    if (runs > 1).any():
        bad = run_ids[runs > 1][:1].tolist()[0]
        raise invalid(
            "sessions", ids, "rows ordered by session and then time, each session one contiguous block",
            why=f"session {bad!r} appears in {int(runs[runs > 1][0])} separate blocks; sort the log first, "
                "e.g. order = np.lexsort((steps, sessions))",
        )
    seg = np.cumsum(new) - 1
    pos = np.arange(n) - starts[seg]
    if steps is not None:
        t = _float_1d(steps, "steps")
        _same_length(sessions=ids, steps=t)
        back = np.flatnonzero(~new[1:] & (np.diff(t) <= 0))
        if back.size:
            i = int(back[0]) + 1
            raise invalid(
                "steps", t[i - 1 : i + 1].tolist(),
                "steps that increase strictly within each session (rows ordered by time)",
                why=f"row {i} of session {ids[i : i + 1].tolist()[0]!r} has step {t[i]:g} after {t[i - 1]:g}; "
                    "sort the log by (session, step) first",
            )
    m, longest = starts.shape[0], int(pos.max()) + 1
    w = np.ones((m, longest))
    w[seg, pos] = pi / beta
    disc = np.zeros((m, longest))
    disc[seg, pos] = float(discount) ** pos * r
    return _Sessions(rho=np.cumprod(w, axis=1), discounted=disc)
