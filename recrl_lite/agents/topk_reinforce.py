r"""REINFORCE from logged data with the (top-K) off-policy correction (chapter 5).

Chen, Beutel, Covington, Jain, Belletti & Chi, "Top-K Off-Policy Correction for a REINFORCE
Recommender System", WSDM 2019 (arXiv:1812.02353). Equation numbers below are those of the WSDM
version; the arXiv v1 numbering differs by one or two.

**Off-policy correction (§4, eq. 4).** The logs were collected by a behaviour policy
:math:`\beta`, not by the policy :math:`\pi_\theta` being trained. Importance weighting each step
by :math:`\pi/\beta`, and keeping only the current step's ratio (the first-order approximation
that drops the product of the earlier steps' ratios, i.e. the difference in state visitation),
gives the estimator

.. math:: \textstyle\sum_{\tau\sim\beta}\sum_t \frac{\pi_\theta(a_t|s_t)}{\beta(a_t|s_t)}\,
          R_t\,\nabla_\theta \log \pi_\theta(a_t|s_t),
          \qquad R_t = \sum_{t'\ge t} \gamma^{t'-t} r_{t'} .

Without the ratio ("naive", ``correction="none"``) the expected update is
:math:`\nabla \sum_a \beta(a) r(a) \log\pi(a)`, maximised by :math:`\pi \propto \beta\, r`: the
policy imitates the logger (§6.1.1). With it, :math:`\mathbb E_\beta[(\pi/\beta) R \nabla\log\pi]
= \nabla \mathbb E_\pi[R]`, the on-policy gradient.

**Top-K correction (§4.3, eqs. 7-8).** A page of items is built by drawing :math:`K` items from
:math:`\pi` and removing duplicates, so item :math:`a` appears with probability
:math:`\alpha(a|s) = 1-(1-\pi(a|s))^K`. Replacing :math:`\pi` by :math:`\alpha` gives
:math:`\frac{\alpha}{\beta} R \nabla \log\alpha = \lambda_K(s,a)\,\frac{\pi}{\beta} R \nabla\log\pi`
with :math:`\lambda_K = \partial\alpha/\partial\pi = K(1-\pi)^{K-1}`: the expected update is the
gradient of :math:`\sum_a \alpha(a|s) R(s,a)`, the reward of the page, so once an item is surely on
the page its gradient vanishes and the next items keep mass. :math:`K=1` is the standard
correction.

**Variance reduction (§4.4).** Weight capping :math:`\min(\pi/\beta, c)` (eq. 9; the paper's
production value is :math:`c=e^3`), normalised importance sampling (weights divided by their
batch mean) and a TRPO-like KL penalty towards :math:`\beta`.

**Behaviour policy (§4.2).** When the logs carry no propensities, :math:`\beta` is estimated by a
second softmax head :math:`\beta_{\theta'}` on the same state encoder, trained by maximum likelihood
on all logged actions, with its gradient blocked from the encoder so that it does not disturb the
main policy's state representation.

Contents: :func:`topk_multiplier`, :func:`importance_weights`, :func:`off_policy_loss` (the
surrogate whose autograd gradient is the estimator); the §6 simulations, exact
(:func:`section6_simulation`, expected gradients, no sampling noise), sampled
(:func:`section6_sampled_simulation`) and their limits in closed form
(:func:`section6_fixed_point`); and :class:`OffPolicyReinforceAgent`, trained from a
:class:`recrl_lite.data.Transitions` log by :func:`train_offpolicy_reinforce`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from recrl_lite.agents.base import TorchPolicy
from recrl_lite.agents.reinforce import discounted_returns
from recrl_lite.errors import check_choice, check_finite, invalid, invalid_fields
from recrl_lite.models.encoders import MLPEncoder, encoder_width

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)
Correction = Literal["none", "standard", "topk"]


# ----------------------------------------------------------------------------- the estimator
def _check_K(K: Any, name: str = "K") -> int:
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 1:
        raise invalid(name, K, "an int in [1, inf)", why="the number of items drawn per page")
    return int(K)


def _check_cap(cap: Any, name: str = "cap") -> float | None:
    if cap is None:
        return None
    if isinstance(cap, bool) or not isinstance(cap, (int, float, np.floating, np.integer)) or not cap > 0:
        raise invalid(name, cap, "a number > 0 or None", why="the weight cap c of eq. 9")
    return float(cap)


def _values(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def _check_probabilities(name: str, x: np.ndarray | torch.Tensor, allow_zero: bool,
                         meaning: str = "probabilities") -> None:
    v = _values(x)
    bad = ~np.isfinite(v) | (v > 1.0) | ((v < 0.0) if allow_zero else (v <= 0.0))
    if bad.any():
        where = np.flatnonzero(bad.ravel())[:5].tolist()
        allowed = "[0, 1]" if allow_zero else "(0, 1]"
        raise invalid(name, x, f"{meaning} in {allowed}", why=f"{int(bad.sum())} entries are not: first flat "
                      f"indices {where}, values {v.ravel()[where].tolist()}")


def topk_multiplier(pi: ArrayT, K: int) -> ArrayT:
    r""":math:`\lambda_K = \partial\alpha/\partial\pi = K(1-\pi)^{K-1}` (Chen et al. 2019, eq. 8).

    It tends to :math:`K` as :math:`\pi\to 0` (a rare good item is pushed up K times harder than by
    the standard correction) and to 0 as :math:`\pi\to 1` (an item sure to be on the page is no
    longer pushed). ``K=1`` gives 1 everywhere (the standard correction). Works on numpy arrays and
    torch tensors alike.
    """
    K = _check_K(K)
    _check_probabilities("pi", pi, allow_zero=True)
    return K * (1.0 - pi) ** (K - 1)


def importance_weights(pi: ArrayT, beta: ArrayT, cap: float | None = None) -> ArrayT:
    r"""The per-step importance weight :math:`\omega = \pi(a|s)/\beta(a|s)`, capped at ``cap``.

    Chen et al. 2019, eq. 4 (first-order approximation) and eq. 9 (capping, :math:`\min(\omega, c)`).
    ``beta`` must be in (0, 1]: a zero propensity means the logger could not have chosen the action,
    and the weight is undefined. numpy arrays or torch tensors.
    """
    cap = _check_cap(cap)
    _check_probabilities("pi", pi, allow_zero=True)
    _check_probabilities("beta", beta, allow_zero=False, meaning="behaviour propensities")
    if tuple(pi.shape) != tuple(beta.shape):
        raise invalid("beta shape", tuple(beta.shape), f"the shape of pi, {tuple(pi.shape)}")
    w = pi / beta
    if cap is None:
        return w
    if isinstance(w, torch.Tensor):
        return cast(ArrayT, torch.clamp(w, max=cap))
    return cast(ArrayT, np.minimum(w, cap))


def off_policy_loss(
    log_pi_logged: torch.Tensor,
    pi_logged_detached: torch.Tensor | None,
    beta: torch.Tensor,
    returns: torch.Tensor,
    K: int = 1,
    cap: float | None = None,
    correction: Literal["off_policy", "none"] = "off_policy",
    normalize: bool = False,
) -> torch.Tensor:
    r"""The surrogate loss whose gradient is minus the paper's estimator, averaged over the batch.

    .. math:: L(\theta) = -\frac1n \sum_i \operatorname{sg}\big[\lambda_K(\pi_i)\,
              \min(\pi_i/\beta_i,\,c)\big]\; R_i \,\log\pi_\theta(a_i|s_i),

    so :math:`-\nabla L = \frac1n\sum_i \lambda_K \min(\pi/\beta, c) R_i \nabla\log\pi(a_i|s_i)`:
    eq. 4 for ``K=1`` (the standard correction), eq. 7 for ``K>1`` (top-K), eq. 9 for ``cap``.
    ``sg`` is stop-gradient: the weight multiplies the score function but is not differentiated
    (differentiating :math:`\pi/\beta` as well would double the update). ``cap`` applies to
    :math:`\pi/\beta`; :math:`\lambda_K \le K` needs none.

    Args:
        log_pi_logged: :math:`\log\pi_\theta(a_i|s_i)` of the logged actions, with gradient, shape (n,).
        pi_logged_detached: :math:`\pi_\theta(a_i|s_i)`; detached here in any case. ``None``:
            computed as ``exp(log_pi_logged)``.
        beta: the behaviour propensities :math:`\beta(a_i|s_i)` in (0, 1] (logged or estimated).
        returns: the discounted returns :math:`R_i` of the logged steps.
        K: pages are built from K draws of :math:`\pi`; 1 is the standard correction.
        cap: weight cap :math:`c` > 0, or None.
        correction: ``"off_policy"`` (the estimator above) or ``"none"``, the naive on-log policy
            gradient :math:`-\frac1n\sum_i R_i \log\pi(a_i|s_i)` (``K`` and ``cap`` must be left at
            their defaults then, since they would have no effect).
        normalize: normalised importance sampling (§4.4.2): divide the weights by their batch mean,
            i.e. :math:`\sum_i (\omega_i/\sum_j\omega_j)\,\ldots`.
    """
    K = _check_K(K)
    cap = _check_cap(cap)
    correction = check_choice("correction", correction, ("off_policy", "none"))
    n = log_pi_logged.shape[0]
    for name, t in (("log_pi_logged", log_pi_logged), ("beta", beta), ("returns", returns)):
        if t.dim() != 1 or t.shape[0] != n:
            raise invalid(f"{name} shape", tuple(t.shape), f"({n},)", why="a 1-D tensor, one entry per logged step")
    if not torch.isfinite(returns).all():
        raise invalid("returns", returns, "finite values")
    if correction == "none":
        if K != 1 or cap is not None or normalize:
            raise invalid("(K, cap, normalize)", (K, cap, normalize), "(1, None, False)",
                          why="correction='none' ignores them")
        return -(returns * log_pi_logged).mean()
    pi = (log_pi_logged.exp() if pi_logged_detached is None else pi_logged_detached).detach()
    if pi.shape != log_pi_logged.shape:
        raise invalid("pi_logged_detached shape", tuple(pi.shape), f"{tuple(log_pi_logged.shape)}, as log_pi_logged")
    with torch.no_grad():
        weight = importance_weights(pi, beta.detach().to(pi.dtype), cap) * topk_multiplier(pi, K)
        if normalize:
            weight = weight / weight.mean().clamp_min(1e-12)
    return -(weight * returns * log_pi_logged).mean()


# ----------------------------------------------------------------------------- §6 simulations
def section6_setting(setting: Literal["fig2", "fig3"] = "fig2") -> tuple[np.ndarray, np.ndarray]:
    r"""Rewards and behaviour policy of the paper's stateless simulations (§6.1), items 1..10 at 0..9.

    - ``"fig2"`` (§6.1.1, off-policy correction): :math:`r(a_i) = i` and a behaviour policy
      "skewed to favor items with least reward". The paper does not print its :math:`\beta`; here
      :math:`\beta(a_i) \propto 11 - i` (a stated choice, not the paper's numbers).
    - ``"fig3"`` (§6.1.2, top-K correction, K=2): :math:`r = (10, 9, 1, \ldots, 1)`, :math:`\beta`
      uniform (both as in the paper).
    """
    if setting == "fig2":
        rewards = np.arange(1.0, 11.0)
        beta = (11.0 - rewards) / (11.0 - rewards).sum()
    elif setting == "fig3":
        rewards = np.array([10.0, 9.0] + [1.0] * 8)
        beta = np.full(10, 0.1)
    else:
        raise invalid("setting", setting, "'fig2' or 'fig3'")
    return rewards, beta


def _softmax(theta: np.ndarray) -> np.ndarray:
    z = np.exp(theta - theta.max())
    return z / z.sum()


def _section6_inputs(
    correction: Any, K: int | None, rewards: np.ndarray | None, beta: np.ndarray | None,
    setting: Literal["fig2", "fig3"], cap: float | None,
) -> tuple[int, np.ndarray, np.ndarray, float | None]:
    check_choice("correction", correction, ("none", "standard", "topk"))
    if K is None:
        K = 2 if correction == "topk" else 1
    K = _check_K(K)
    if correction != "topk" and K != 1:
        raise invalid("K", K, "1 unless correction='topk'", why=f"K only has an effect with correction='topk', "
                      f"got correction={correction!r}")
    cap = _check_cap(cap)
    if correction == "none" and cap is not None:
        raise invalid("cap", cap, "None with correction='none'", why="a cap only acts on the off-policy corrections")
    default_r, default_b = section6_setting(setting)
    r = default_r if rewards is None else np.asarray(rewards, dtype=float)
    b = default_b if beta is None else np.asarray(beta, dtype=float)
    if r.ndim != 1 or r.shape[0] < 2 or not np.isfinite(r).all():
        raise invalid("rewards", r, "a finite 1-D array of at least 2 items")
    if b.shape != r.shape:
        raise invalid("beta shape", b.shape, f"the shape of rewards, {r.shape}")
    _check_probabilities("beta", b, allow_zero=False, meaning="behaviour probabilities")
    if abs(b.sum() - 1.0) > 1e-9:
        raise invalid("beta", b, "probabilities that sum to 1", why=f"they sum to {float(b.sum())!r}")
    return K, r, b, cap


def _weights(pi: np.ndarray, beta: np.ndarray, correction: str, K: int, cap: float | None) -> np.ndarray:
    """w(a) of each item: 1 (naive), min(π/β, c) (standard), λ_K·min(π/β, c) (top-K); inputs checked."""
    if correction == "none":
        return np.ones_like(pi)
    w = pi / beta if cap is None else np.minimum(pi / beta, cap)
    return w * (K * (1.0 - pi) ** (K - 1)) if correction == "topk" else w


def _expected_gradient(theta: np.ndarray, r: np.ndarray, b: np.ndarray, correction: str, K: int,
                       cap: float | None) -> np.ndarray:
    pi = _softmax(theta)
    c = b * _weights(pi, b, correction, K, cap) * r
    return c - pi * c.sum()


def section6_expected_gradient(
    theta: np.ndarray,
    correction: Correction,
    K: int | None = None,
    rewards: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    setting: Literal["fig2", "fig3"] = "fig2",
    cap: float | None = None,
) -> np.ndarray:
    r"""The exact expected update :math:`\mathbb E_{a\sim\beta}[w(a)\, r(a)\, \nabla_\theta\log\pi_\theta(a)]`
    of a stateless softmax :math:`\pi_\theta = \mathrm{softmax}(\theta)`, summed over the items.

    With :math:`\partial\log\pi(a)/\partial\theta_j = \mathbb 1[a=j]-\pi(j)` and
    :math:`c_a = \beta(a) w(a) r(a)` it is :math:`c_j - \pi_j\sum_a c_a`. Uncapped, it equals
    :math:`\nabla\sum_a\beta r\log\pi` (naive), :math:`\nabla\sum_a \pi r` (standard) and
    :math:`\nabla\sum_a r\,(1-(1-\pi)^K)` (top-K).
    """
    K, r, b, cap = _section6_inputs(correction, K, rewards, beta, setting, cap)
    theta = np.asarray(theta, dtype=float)
    if theta.shape != r.shape:
        raise invalid("theta shape", theta.shape, f"the shape of rewards, {r.shape}")
    return _expected_gradient(theta, r, b, correction, K, cap)


@dataclass
class Section6Result:
    """The outcome of a §6 simulation: the learned policy and its path."""

    probabilities: np.ndarray
    """π_θ after the last step, one entry per item."""
    trajectory: np.ndarray
    """π_θ before the first step and after every ``record_every`` steps, shape (n_records, n_items)."""
    theta: np.ndarray
    """The final logits."""
    rewards: np.ndarray
    """r(a) of each item."""
    beta: np.ndarray
    """The behaviour policy."""
    correction: str
    """'none', 'standard' or 'topk'."""
    K: int
    """Draws per page (1 unless 'topk')."""
    cap: float | None
    """The weight cap, if any."""


def _check_schedule(n_steps: int, lr: float, record_every: int) -> None:
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise invalid("n_steps", n_steps, "an int in [1, inf)")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise invalid("lr", lr, "a finite number in (0, inf)")
    if isinstance(record_every, bool) or not isinstance(record_every, (int, np.integer)) or record_every < 1:
        raise invalid("record_every", record_every, "an int in [1, inf)")


def section6_simulation(
    correction: Correction,
    K: int | None = None,
    rewards: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    setting: Literal["fig2", "fig3"] = "fig2",
    cap: float | None = None,
    n_steps: int = 5000,
    lr: float = 0.1,
    record_every: int = 10,
) -> Section6Result:
    r"""Gradient ascent on a stateless softmax with the *exact* expected update (§6.1, Figures 2-3).

    Each step is :math:`\theta \leftarrow \theta + \eta\,` :func:`section6_expected_gradient`: the
    expectation over :math:`a\sim\beta` is summed analytically, so there is no sampling noise and the
    run follows the Euler discretisation of the gradient flow whose limits
    :func:`section6_fixed_point` gives in closed form. :math:`\theta_0 = 0` (uniform :math:`\pi`).
    ``K`` defaults to 2 for ``"topk"`` (the paper's Figure 3) and must be 1 otherwise.
    """
    K_, r, b, cap_ = _section6_inputs(correction, K, rewards, beta, setting, cap)
    _check_schedule(n_steps, lr, record_every)
    theta = np.zeros_like(r)
    records = [_softmax(theta)]
    for step in range(1, n_steps + 1):
        theta = theta + lr * _expected_gradient(theta, r, b, correction, K_, cap_)
        if step % record_every == 0 or step == n_steps:
            records.append(_softmax(theta))
    return Section6Result(_softmax(theta), np.array(records), theta, r, b, correction, K_, cap_)


def section6_sampled_simulation(
    correction: Correction,
    K: int | None = None,
    rewards: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    setting: Literal["fig2", "fig3"] = "fig2",
    cap: float | None = None,
    n_steps: int = 5000,
    lr: float = 0.02,
    batch_size: int = 64,
    seed: int = 0,
    record_every: int = 10,
) -> Section6Result:
    r"""The same simulation with SGD on logged samples, as the paper runs it.

    Each step draws ``batch_size`` items :math:`a_i\sim\beta` (rewards are deterministic,
    :math:`r(a_i)`) and applies :math:`\theta_j \mathrel{+}= \frac{\eta}{B}\sum_i w(a_i)\, r(a_i)\,
    (\mathbb 1[j=a_i]-\pi_\theta(a_j))`, the paper's SGD updates of §6.1.2. Its mean is
    :func:`section6_expected_gradient`; ``seed`` fixes the draws. The step size is smaller than the
    exact run's: with weights up to :math:`1/\beta` and rewards of 10 a step of 0.1 moves the logits
    by several units, and the standard correction can then lock onto a wrong item (in Figure 3's
    setting with ``lr=0.1, batch_size=32`` some seeds end with :math:`\pi(a_2) > 0.95`): softmax policy
    gradient commits to whichever vertex noise reaches first, since its pull back vanishes there.
    """
    K_, r, b, cap_ = _section6_inputs(correction, K, rewards, beta, setting, cap)
    _check_schedule(n_steps, lr, record_every)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise invalid("batch_size", batch_size, "an int in [1, inf)")
    rng = np.random.default_rng(seed)
    n = r.shape[0]
    theta = np.zeros_like(r)
    records = [_softmax(theta)]
    for step in range(1, n_steps + 1):
        pi = _softmax(theta)
        actions = rng.choice(n, size=batch_size, p=b)
        coef = (_weights(pi, b, correction, K_, cap_) * r)[actions]
        # Σ_i coef_i (e_{a_i} - π) / B, vectorised with bincount
        grad = (np.bincount(actions, weights=coef, minlength=n) - pi * coef.sum()) / batch_size
        theta = theta + lr * grad
        if step % record_every == 0 or step == n_steps:
            records.append(_softmax(theta))
    return Section6Result(_softmax(theta), np.array(records), theta, r, b, correction, K_, cap_)


def section6_fixed_point(
    correction: Correction,
    K: int | None = None,
    rewards: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    setting: Literal["fig2", "fig3"] = "fig2",
    cap: float | None = None,
) -> np.ndarray:
    r"""The limit of :func:`section6_simulation` as the number of steps grows, in closed form.

    - ``"none"``: the expected update is :math:`\nabla\sum_a \beta(a)r(a)\log\pi(a)`, zero at
      :math:`\pi(a) = \beta(a)r(a)/\sum_b\beta(b)r(b)` (the paper's §6.1.1; needs rewards > 0).
    - ``"standard"``: the expected update is the on-policy gradient :math:`\nabla\sum_a\pi(a)r(a)`,
      whatever :math:`\beta`; the flow goes to the single best item (needs a unique best), although
      only at the sublinear rate :math:`1-\pi(a^*) = O(1/t)` of softmax policy gradient.
    - ``"topk"``: the expected update is :math:`\nabla J_K` with
      :math:`J_K(\pi) = \sum_a r(a)(1-(1-\pi(a))^K)`, the expected reward of a page of K draws
      without duplicates. For :math:`r > 0` and :math:`K\ge2`, :math:`J_K` is strictly concave on
      the simplex, so its maximiser is unique and the flow converges to it; the KKT conditions give
      water-filling: :math:`rK(1-\pi_a)^{K-1} = \mu` on the items kept,
      :math:`\pi_a = 1-(\mu/(K r_a))^{1/(K-1)}`, and :math:`\pi_a = 0` for items with
      :math:`K r_a \le \mu`; :math:`\mu` solves :math:`\sum_a \pi_a = 1` (explicit for K=2:
      :math:`\mu = 2(m-1)/\sum_{a\,\text{kept}} 1/r_a` over the m items kept). In Figure 3's setting
      this is :math:`\pi = (10/19, 9/19, 0, \ldots)`: the second-best item keeps 47% of the mass.
      Items with :math:`r\le 0` get 0; at least one reward must be positive.

    A capped weight makes the limit depend on :math:`\beta` again and piecewise; no closed form is
    given here (``cap`` raises): run :func:`section6_simulation` long enough instead.
    """
    K_, r, b, cap_ = _section6_inputs(correction, K, rewards, beta, setting, cap)
    if cap_ is not None:
        raise invalid("cap", cap_, "None", why="section6_fixed_point has no closed form with a weight cap; run "
                      "section6_simulation with enough steps instead")
    if correction == "none":
        if (r <= 0).any():
            raise invalid("rewards", r, "all rewards > 0 for correction='none'", why="the naive limit pi ∝ beta·r "
                          "needs them: with r(a) < 0 the objective sum_a beta r log pi is unbounded; run "
                          "section6_simulation instead")
        return b * r / (b * r).sum()
    if correction == "standard" or K_ == 1:
        best = np.flatnonzero(r == r.max())
        if best.size > 1:
            raise invalid("rewards", r, "a single item with the best reward", why=f"the standard correction's "
                          f"limit depends on the start when items {best.tolist()} share the best reward; run "
                          "section6_simulation instead")
        return np.eye(r.shape[0])[best[0]]
    if not (r > 0).any():
        raise invalid("rewards", r, "at least one positive reward", why="the top-K limit needs one")
    pos = r > 0

    def mass(mu: float) -> float:
        keep = pos & (K_ * r > mu)
        return float(np.sum(1.0 - (mu / (K_ * r[keep])) ** (1.0 / (K_ - 1))))

    if pos.sum() == 1 or mass(0.0) <= 1.0:  # fewer than two positive items: all mass on the best one
        return np.eye(r.shape[0])[int(np.argmax(r))]
    lo, hi = 0.0, float(K_ * r.max())  # mass(lo) > 1 >= mass(hi) = 0, mass decreasing in mu
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mass(mid) > 1.0 else (lo, mid)
    mu = 0.5 * (lo + hi)
    pi = np.where(pos & (K_ * r > mu), 1.0 - (mu / (K_ * np.where(pos, r, 1.0))) ** (1.0 / (K_ - 1)), 0.0)
    return pi / pi.sum()  # removes the bisection's last ~1e-15


# ----------------------------------------------------------------------------- the agent
@dataclass
class OffPolicyReinforceConfig:
    """Hyperparameters of :func:`train_offpolicy_reinforce` (Chen et al. 2019)."""

    K: int = 1
    """Items drawn from π per page (eq. 7). 1 = the standard off-policy correction (eq. 4); the
    paper's production model used 16."""
    cap: float | None = math.e ** 3
    """Weight cap c on π/β (eq. 9; the paper's production value e^3 ≈ 20). None: no cap."""
    correction: Literal["off_policy", "none"] = "off_policy"
    """'off_policy' (importance-weighted) or 'none' (the naive policy gradient on the logs)."""
    normalize_weights: bool = False
    """Normalised importance sampling (§4.4.2): divide the weights by their batch mean."""
    kl_coef: float = 0.0
    """TRPO-like penalty (§4.4.3): weight of KL(β̂(·|s) ‖ π(·|s)), with β̂ the behaviour head."""
    gamma: float = 0.9
    """Discount of the returns R_t within a logged session."""
    learning_rate: float = 1e-3
    """Adam step size (both heads and the encoder)."""
    epochs: int = 10
    """Passes over the logged steps."""
    batch_size: int = 512
    """Logged steps per gradient step (steps are shuffled across sessions)."""
    hidden: tuple[int, ...] = (128, 128)
    """Widths of the default MLP encoder (ignored when an encoder is passed)."""
    estimate_behaviour: bool = False
    """Weight by the behaviour head's β̂(a|s) even when propensities were logged. Logs without
    propensities (NaN) always use β̂."""
    behaviour_encoder: Literal["shared", "separate"] = "shared"
    """'shared': β̂ is a head on the policy's encoder with the gradient blocked (§4.2, Figure 1);
    'separate': its own copy of the encoder, trained by the β̂ likelihood alone."""
    behaviour_warmup_epochs: int = 0
    """Epochs that train only β̂ before the policy starts (so early weights do not use a blank β̂)."""
    entropy_coef: float = 0.0
    """Entropy bonus on π (not in the paper; 0 disables)."""
    max_grad_norm: float = 1.0
    """Gradient clipping threshold."""

    def __post_init__(self) -> None:
        _check_K(self.K, "OffPolicyReinforceConfig.K")
        _check_cap(self.cap, "OffPolicyReinforceConfig.cap")
        check_choice("OffPolicyReinforceConfig.correction", self.correction, ("off_policy", "none"))
        if self.correction == "none" and (self.K != 1 or self.cap is not None or self.normalize_weights):
            raise invalid("OffPolicyReinforceConfig (K, cap, normalize_weights)",
                          (self.K, self.cap, self.normalize_weights), "(1, None, False) with correction='none'",
                          why="it uses no weights")
        check_choice("OffPolicyReinforceConfig.behaviour_encoder", self.behaviour_encoder, ("shared", "separate"))
        checks = {  # field: (accepted, what was expected)
            "gamma": (0.0 <= self.gamma <= 1.0, "a number in [0, 1]"),
            "learning_rate": (self.learning_rate > 0, "a number > 0"),
            "epochs": (self.epochs >= 1, "an int >= 1"),
            "batch_size": (self.batch_size >= 1, "an int >= 1"),
            "kl_coef": (self.kl_coef >= 0, "a number >= 0"),
            "behaviour_warmup_epochs": (self.behaviour_warmup_epochs >= 0, "an int >= 0"),
            "entropy_coef": (self.entropy_coef >= 0, "a number >= 0"),
            "max_grad_norm": (self.max_grad_norm > 0, "a number > 0"),
        }
        bad = [f"{k}={getattr(self, k)!r}; expected {expected}" for k, (ok, expected) in checks.items() if not ok]
        if bad:
            raise invalid_fields("OffPolicyReinforceConfig", bad)


class PolicyBehaviourNet(nn.Module):
    """π_θ and β̂_θ' as two softmax heads (Figure 1 of the paper).

    With a shared encoder the behaviour head reads the features detached, so its likelihood trains
    the head only and leaves the policy's state representation alone (§4.2).
    """

    def __init__(self, encoder: nn.Module, n_actions: int, behaviour_encoder: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.behaviour_encoder = behaviour_encoder
        self.policy_head = nn.Linear(encoder_width(encoder), n_actions)
        width = encoder_width(encoder if behaviour_encoder is None else behaviour_encoder)
        self.behaviour_head = nn.Linear(width, n_actions)

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(policy logits, behaviour logits)."""
        features = self.encoder(observation)
        if self.behaviour_encoder is None:
            behaviour_features = features.detach()
        else:
            behaviour_features = self.behaviour_encoder(observation)
        return self.policy_head(features), self.behaviour_head(behaviour_features)


class OffPolicyReinforceAgent(TorchPolicy):
    """A softmax policy over items trained from logs by (top-K) off-policy-corrected REINFORCE."""

    name = "off-policy REINFORCE"

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Discrete,
        config: OffPolicyReinforceConfig | None = None,
        seed: int | None = None,
        device: str | torch.device = "cpu",
        encoder: nn.Module | None = None,
    ):
        super().__init__()
        if not isinstance(action_space, gym.spaces.Discrete):
            raise invalid("action_space", action_space, "a Discrete space", why="the agent picks one item id")
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise invalid("observation_space", observation_space, "a flat (1-D) Box space")
        self.config = config or OffPolicyReinforceConfig()
        self.observation_dim = int(observation_space.shape[0])
        self.n_actions = int(action_space.n)
        self.device = torch.device(device)
        self.seed(seed)
        if seed is not None:
            torch.manual_seed(seed)
        enc = encoder if encoder is not None else MLPEncoder(observation_space, self.config.hidden)
        encoder_width(enc)
        behaviour_enc = copy.deepcopy(enc) if self.config.behaviour_encoder == "separate" else None
        if behaviour_enc is not None:  # its own initialisation, not a copy of the policy's weights
            for module in behaviour_enc.modules():
                reset = getattr(module, "reset_parameters", None)
                if module is not behaviour_enc and callable(reset):
                    reset()
        self.net = PolicyBehaviourNet(enc, self.n_actions, behaviour_enc).to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.config.learning_rate)
        self.deterministic = False
        if self.config.correction == "none":
            self.name = "REINFORCE on logs (uncorrected)"
        elif self.config.K > 1:
            self.name = f"top-{self.config.K} off-policy REINFORCE"

    # ------------------------------------------------------------------ serving
    def _as_batch(self, observations: np.ndarray) -> tuple[torch.Tensor, bool]:
        x = np.asarray(observations, dtype=np.float32)
        single = x.ndim == 1
        if single:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.observation_dim:
            raise invalid("observations shape", np.shape(observations),
                          f"(n, {self.observation_dim}) or ({self.observation_dim},)")
        return torch.as_tensor(x, device=self.device), single

    def _logits(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        x, single = self._as_batch(observations)
        with torch.no_grad():
            policy, behaviour = self.net(x)
        return policy.cpu().numpy().astype(np.float64), behaviour.cpu().numpy().astype(np.float64), single

    @staticmethod
    def _softmax_rows(z: np.ndarray) -> np.ndarray:
        p = np.exp(z - z.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    def policy_probabilities(self, observations: np.ndarray) -> np.ndarray:
        """π_θ(·|s) for each observation, shape (n, n_actions) (or (n_actions,) for one observation)."""
        z, _, single = self._logits(observations)
        p = self._softmax_rows(z)
        return p[0] if single else p

    def behaviour_probabilities(self, observations: np.ndarray) -> np.ndarray:
        """The behaviour head's estimate β̂(·|s), shaped like :meth:`policy_probabilities`."""
        _, z, single = self._logits(observations)
        p = self._softmax_rows(z)
        return p[0] if single else p

    def act_batch(self, observations: np.ndarray, deterministic: bool | None = None) -> np.ndarray:
        """One item per observation: a draw from π (or its argmax when deterministic)."""
        z, _, _ = self._logits(observations)
        if self.deterministic if deterministic is None else deterministic:
            return z.argmax(axis=1)
        # Gumbel-max: one vectorised draw from the softmax with the agent's own generator
        return (z - np.log(-np.log(self.rng.random(z.shape)))).argmax(axis=1)

    def act(self, observation: np.ndarray) -> int:
        return int(self.act_batch(np.asarray(observation)[None])[0])

    def recommend_topk(self, observations: np.ndarray, k: int) -> np.ndarray:
        """The k items of highest π(·|s), best first: shape (n, k), or (k,) for one observation."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self.n_actions:
            raise invalid("k", k, f"an int in [1, n_actions] = [1, {self.n_actions}]")
        z, _, single = self._logits(observations)
        top = np.argsort(-z, axis=1, kind="stable")[:, :k]
        return top[0] if single else top

    # ------------------------------------------------------------------ learning
    def update(  # type: ignore[override]
        self,
        observations: torch.Tensor,
        actions: torch.Tensor,
        returns: torch.Tensor,
        propensities: torch.Tensor | None,
        train_policy: bool = True,
    ) -> dict[str, float]:
        """One Adam step on a batch of logged steps (s_i, a_i, R_i, β_i).

        ``propensities`` None (or ``config.estimate_behaviour``) weights by the behaviour head's
        β̂(a_i|s_i), detached. The behaviour head's likelihood is always part of the loss (it trains
        only that head); ``train_policy=False`` trains it alone.
        """
        cfg = self.config
        policy_logits, behaviour_logits = self.net(observations)
        log_pi = torch.log_softmax(policy_logits, dim=1)
        log_beta_hat = torch.log_softmax(behaviour_logits, dim=1)
        behaviour_nll = -log_beta_hat.gather(1, actions[:, None]).squeeze(1).mean()
        loss = behaviour_nll
        stats = {"behaviour_nll": behaviour_nll.item()}
        if train_policy:
            chosen = log_pi.gather(1, actions[:, None]).squeeze(1)
            if cfg.correction == "none":
                policy_loss = off_policy_loss(chosen, None, torch.ones_like(chosen), returns, correction="none")
            else:
                use_head = propensities is None or cfg.estimate_behaviour
                beta = (log_beta_hat.gather(1, actions[:, None]).squeeze(1).exp().detach().clamp_min(1e-8)  # no 0 from underflow
                        if use_head else propensities)
                assert beta is not None
                policy_loss = off_policy_loss(chosen, chosen.exp().detach(), beta, returns, cfg.K, cfg.cap,
                                              normalize=cfg.normalize_weights)
            loss = loss + policy_loss
            stats["policy_loss"] = policy_loss.item()
            if cfg.kl_coef > 0:
                beta_hat = log_beta_hat.detach()
                kl = (beta_hat.exp() * (beta_hat - log_pi)).sum(1).mean()
                loss = loss + cfg.kl_coef * kl
                stats["kl"] = kl.item()
            if cfg.entropy_coef > 0:
                entropy = -(log_pi.exp() * log_pi).sum(1).mean()
                loss = loss - cfg.entropy_coef * entropy
                stats["entropy"] = entropy.item()
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        return stats


def session_returns(rewards: np.ndarray, session: np.ndarray, gamma: float) -> np.ndarray:
    r""":math:`R_t = \sum_{t'\ge t}\gamma^{t'-t} r_{t'}` within each logged session (rows in time order).

    ``session`` must be non-decreasing (each session's rows consecutive); the return stops at the
    session's last logged row.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    session = np.asarray(session)
    if rewards.shape != session.shape or rewards.ndim != 1:
        raise invalid("(rewards, session) shapes", (rewards.shape, session.shape), "two 1-D arrays of equal length")
    if rewards.size == 0:
        return rewards.copy()
    if (np.diff(session) < 0).any():
        row = int(np.flatnonzero(np.diff(session) < 0)[0])
        raise invalid("session", session, "non-decreasing ids (each session's rows together, in order)",
                      why=f"session {int(session[row])} at row {row} is followed by session {int(session[row + 1])}")
    starts = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    index = np.cumsum(np.r_[True, session[1:] != session[:-1]]) - 1
    position = np.arange(rewards.size) - starts[index]
    padded = np.zeros((starts.size, int(position.max()) + 1))
    padded[index, position] = rewards
    return discounted_returns(padded, gamma)[index, position]


def _check_transitions(transitions: Any, agent: OffPolicyReinforceAgent) -> bool:
    """Validates the log; returns True when it carries propensities (False: all NaN)."""
    fields = ("observations", "actions", "rewards", "propensities", "session", "terminated", "truncated",
              "next_observations")
    missing = [f for f in fields if not hasattr(transitions, f)]
    if missing:
        raise invalid("transitions", transitions, "a recrl_lite.data.Transitions", why=f"it lacks the fields {missing}")
    n = len(np.asarray(transitions.actions))
    if n == 0:
        raise invalid("transitions", transitions, "at least one logged step", why="it is empty")
    for f in fields:
        length = np.asarray(getattr(transitions, f)).shape[0]
        if length != n:
            raise invalid(f"transitions.{f} length", length, f"{n}, the length of transitions.actions")
    obs = np.asarray(transitions.observations)
    if obs.ndim != 2 or obs.shape[1] != agent.observation_dim:
        raise invalid("transitions.observations shape", obs.shape, f"(n, {agent.observation_dim})")
    actions = np.asarray(transitions.actions)
    if not np.issubdtype(actions.dtype, np.integer) or actions.min() < 0 or actions.max() >= agent.n_actions:
        raise invalid("transitions.actions", actions, f"integers in [0, {agent.n_actions - 1}]",
                      why=f"dtype {actions.dtype}, range [{actions.min()}, {actions.max()}]")
    check_finite("transitions.rewards", np.asarray(transitions.rewards, dtype=float))
    session = np.asarray(transitions.session)
    if (np.diff(session) < 0).any():
        row = int(np.flatnonzero(np.diff(session) < 0)[0])
        raise invalid("transitions.session", session, "non-decreasing ids (whole sessions in time order)",
                      why=f"row {row} is in session {int(session[row])}, the next row in session {int(session[row + 1])}")
    done = np.asarray(transitions.terminated, dtype=bool) | np.asarray(transitions.truncated, dtype=bool)
    last = np.r_[session[1:] != session[:-1], True]
    if (done & ~last).any() or (last & ~done).any():
        row = int(np.flatnonzero(done != last)[0])
        raise invalid(f"transitions.terminated/truncated[{row}]", bool(done[row]),
                      "True on each session's last row only", why=f"row {row}, in session {int(session[row])}, "
                      f"{'ends' if done[row] else 'does not end'} an episode but is {'not ' if not last[row] else ''}"
                      "the session's last row: unordered or cut sessions?")
    inner = ~last[:-1]
    if inner.any() and not np.allclose(np.asarray(transitions.next_observations)[:-1][inner], obs[1:][inner]):
        row = int(np.flatnonzero(inner & ~np.isclose(np.asarray(transitions.next_observations)[:-1], obs[1:]).all(1))[0])
        raise invalid(f"transitions.next_observations[{row}]", np.asarray(transitions.next_observations)[row],
                      f"observations[{row + 1}]", why=f"rows are not in time order within session {int(session[row])}")
    prop = np.asarray(transitions.propensities, dtype=float)
    nan = np.isnan(prop)
    if nan.all():
        return False
    if nan.any():
        raise invalid("transitions.propensities", prop, "all logged or all NaN", why=f"NaN in {int(nan.sum())} "
                      f"of {n} rows: log all of them, or none and the behaviour head estimates them")
    bad = (prop <= 0) | (prop > 1) | ~np.isfinite(prop)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise invalid("transitions.propensities", prop, "values in (0, 1]",
                      why=f"{int(bad.sum())} rows are not; row {row}: {float(prop[row])!r}")
    return True


def _weight_stats(agent: OffPolicyReinforceAgent, obs: torch.Tensor, actions: torch.Tensor,
                  propensities: torch.Tensor | None) -> dict[str, float]:
    """Importance-weight diagnostics over the whole log (no gradient)."""
    cfg = agent.config
    with torch.no_grad():
        policy_logits, behaviour_logits = agent.net(obs)
        pi = torch.softmax(policy_logits, 1).gather(1, actions[:, None]).squeeze(1).double()
        beta_hat = torch.softmax(behaviour_logits, 1).gather(1, actions[:, None]).squeeze(1).double().clamp_min(1e-8)
        beta = beta_hat if propensities is None or cfg.estimate_behaviour else propensities.double()
        raw = pi / beta
        w = importance_weights(pi, beta, cfg.cap) * topk_multiplier(pi, cfg.K)
        stats = {
            "mean_weight": w.mean().item(),
            "max_weight": w.max().item(),
            "ess": (w.sum() ** 2 / (w ** 2).sum()).item(),
            "capped_fraction": (raw > cfg.cap).double().mean().item() if cfg.cap is not None else 0.0,
            "mean_lambda": topk_multiplier(pi, cfg.K).mean().item(),
        }
        stats["ess_fraction"] = stats["ess"] / obs.shape[0]
        if propensities is not None:  # how far the behaviour head is from the logged truth
            stats["behaviour_log_error"] = (beta_hat.log() - propensities.double().log()).abs().mean().item()
    return stats


def train_offpolicy_reinforce(
    transitions: Any,
    agent: OffPolicyReinforceAgent,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    r"""Train ``agent`` on a log of whole sessions (a :class:`recrl_lite.data.Transitions`).

    Computes the discounted return :math:`R_t` of every logged step within its session, then runs
    ``config.epochs`` passes of shuffled minibatches of steps through :meth:`OffPolicyReinforceAgent.update`.
    The rows must be whole sessions in time order, each ending with its terminated or truncated row.
    Propensities are the logged ones, or, when they are all NaN (or ``config.estimate_behaviour``),
    the behaviour head's.

    Returns one row per epoch (epoch 0: before training, after any behaviour warm-up): mean losses,
    and weight statistics over the whole log: ``mean_weight``, ``max_weight``, ``ess``
    (:math:`(\sum w)^2/\sum w^2`), ``ess_fraction`` (ESS / steps), ``capped_fraction``,
    ``mean_lambda`` (:math:`\lambda_K`), ``behaviour_log_error`` (mean :math:`|\log\hat\beta-\log\beta|`
    when propensities were logged), and ``seconds`` (CPU time).
    """
    cfg = agent.config
    has_propensities = _check_transitions(transitions, agent)
    dev = agent.device
    returns_np = session_returns(np.asarray(transitions.rewards, dtype=float), np.asarray(transitions.session), cfg.gamma)
    obs = torch.as_tensor(np.asarray(transitions.observations, dtype=np.float32), device=dev)
    actions = torch.as_tensor(np.asarray(transitions.actions, dtype=np.int64), device=dev)
    returns = torch.as_tensor(returns_np, dtype=torch.float32, device=dev)
    props = (torch.as_tensor(np.asarray(transitions.propensities, dtype=np.float32), device=dev)
             if has_propensities else None)
    rng = np.random.default_rng(seed)
    n = obs.shape[0]
    start = time.process_time()
    history: list[dict[str, Any]] = []

    def run_epoch(train_policy: bool) -> dict[str, float]:
        sums: dict[str, float] = {}
        batches = 0
        for idx_np in np.array_split(rng.permutation(n), max(1, math.ceil(n / cfg.batch_size))):
            idx = torch.as_tensor(idx_np, device=dev)
            stats = agent.update(obs[idx], actions[idx], returns[idx], None if props is None else props[idx],
                                 train_policy=train_policy)
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
            batches += 1
        return {k: v / batches for k, v in sums.items()}

    agent.net.train()
    for _ in tqdm(range(cfg.behaviour_warmup_epochs), desc="behaviour head", disable=not progress, mininterval=1.0):
        run_epoch(train_policy=False)
    history.append({"epoch": 0, **_weight_stats(agent, obs, actions, props), "seconds": time.process_time() - start})
    for epoch in tqdm(range(1, cfg.epochs + 1), desc=agent.name, disable=not progress, mininterval=1.0):
        losses = run_epoch(train_policy=True)
        history.append({"epoch": epoch, **losses, **_weight_stats(agent, obs, actions, props),
                        "seconds": time.process_time() - start})
    return pd.DataFrame(history)


__all__ = [
    "OffPolicyReinforceAgent",
    "OffPolicyReinforceConfig",
    "PolicyBehaviourNet",
    "Section6Result",
    "importance_weights",
    "off_policy_loss",
    "section6_expected_gradient",
    "section6_fixed_point",
    "section6_sampled_simulation",
    "section6_setting",
    "section6_simulation",
    "session_returns",
    "topk_multiplier",
    "train_offpolicy_reinforce",
]
