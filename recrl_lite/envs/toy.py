r"""Small tabular MDPs that can be solved exactly, introduced in chapter 2 and used in chapters 3 and 4.

A :class:`TabularMDP` holds the full model: transition probabilities ``P[s, a, s']``, expected
rewards ``R[s, a]``, a mask of terminal states and the discount :math:`\gamma`. With the model in
hand, the value of any policy is a linear solve (Sutton & Barto, 2018, eqs. 3.14 and 4.4),

.. math:: v_\pi = r_\pi + \gamma P_\pi v_\pi \quad\Longrightarrow\quad v_\pi = (I - \gamma P_\pi)^{-1} r_\pi,

and the optimal value is the fixed point of the Bellman optimality operator, found by value
iteration (S&B §4.4) or by policy iteration (S&B §4.3; Howard, 1960). Terminal states have value 0
by definition; their rows of ``P`` are ignored.

:func:`clickbait_mdp` is the book's smallest example of why a myopic recommender is not optimal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from recrl_lite.errors import check_finite, invalid

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = [
    "TabularMDP",
    "PolicyIterationResult",
    "TabularMDPEnv",
    "ValueIterationResult",
    "bellman_optimality_operator",
    "clickbait_mdp",
    "evaluate_policy_exact",
    "evaluate_policy_iterative",
    "greedy_policy",
    "policy_iteration",
    "policy_matrix",
    "q_from_v",
    "sample_returns",
    "value_iteration",
]


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP given by its model. Arrays are validated (and copied to float) on creation.

    - ``P``: (S, A, S) transition probabilities; every row ``P[s, a, :]`` sums to 1.
    - ``R``: (S, A) expected immediate reward :math:`r(s, a) = E[R_{t+1} | S_t=s, A_t=a]`.
    - ``terminal``: (S,) bool; a terminal state has value 0 and must have zero reward.
    - ``gamma``: discount in [0, 1].
    """

    P: FloatArray
    R: FloatArray
    terminal: npt.NDArray[np.bool_]
    gamma: float
    state_names: tuple[str, ...] = field(default=())
    action_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        P = np.array(self.P, dtype=float)  # noqa: N806
        R = np.array(self.R, dtype=float)  # noqa: N806
        terminal = np.array(self.terminal, dtype=bool)
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise invalid("P", P, "shape (S, A, S)")
        S, A = P.shape[0], P.shape[1]  # noqa: N806
        if S < 1 or A < 1:
            raise invalid("P", P, "shape (S, A, S) with at least one state and one action")
        if R.shape != (S, A):
            raise invalid("R", R, f"shape (S, A) = ({S}, {A})")
        if terminal.shape != (S,):
            raise invalid("terminal", terminal, f"shape ({S},)")
        check_finite("P", P)
        check_finite("R", R)
        if (P < 0).any():
            s, a, _ = np.argwhere(P < 0)[0]
            raise invalid(f"P[{s}, {a}, :]", P[s, a], "non-negative probabilities",
                          why=f"{int((P < 0).sum())} negative entries in P")
        sums = P.sum(axis=2)
        bad = np.argwhere(~np.isclose(sums, 1.0, atol=1e-8))
        if bad.size:
            s, a = bad[0]
            raise invalid(f"P[{s}, {a}, :]", P[s, a], "probabilities that sum to 1",
                          why=f"it sums to {sums[s, a]:.6g}; {len(bad)} bad rows")
        if (R[terminal] != 0).any():
            raise invalid("R[terminal]", R[terminal], "zero rewards", why="a terminal state's value is 0 by definition")
        if not 0.0 <= float(self.gamma) <= 1.0:
            raise invalid("gamma", self.gamma, "a number in [0, 1]")
        if self.state_names and len(self.state_names) != S:
            raise invalid("state_names", self.state_names, f"{S} names, one per state")
        if self.action_names and len(self.action_names) != A:
            raise invalid("action_names", self.action_names, f"{A} names, one per action")
        for name, value in (("P", P), ("R", R), ("terminal", terminal)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "gamma", float(self.gamma))
        object.__setattr__(self, "state_names", tuple(self.state_names) or tuple(f"s{i}" for i in range(S)))
        object.__setattr__(self, "action_names", tuple(self.action_names) or tuple(f"a{i}" for i in range(A)))

    @property
    def n_states(self) -> int:
        return int(self.P.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.P.shape[1])

    def state(self, name: str) -> int:
        """Index of the state called ``name``."""
        if name not in self.state_names:
            raise KeyError(f"unknown state {name!r}; states are {list(self.state_names)}")
        return self.state_names.index(name)

    def action(self, name: str) -> int:
        """Index of the action called ``name``."""
        if name not in self.action_names:
            raise KeyError(f"unknown action {name!r}; actions are {list(self.action_names)}")
        return self.action_names.index(name)


def policy_matrix(mdp: TabularMDP, pi: npt.ArrayLike) -> FloatArray:
    """A policy as an (S, A) matrix of probabilities :math:`\\pi(a|s)`.

    ``pi`` is either that matrix (rows summing to 1) or an (S,) array of deterministic action indices.
    """
    arr = np.asarray(pi)
    S, A = mdp.n_states, mdp.n_actions  # noqa: N806
    if arr.shape == (S,) and np.issubdtype(arr.dtype, np.integer):
        if (arr < 0).any() or (arr >= A).any():
            raise invalid("pi", arr, f"action indices in [0, {A - 1}]", why="a deterministic policy")
        out = np.zeros((S, A))
        out[np.arange(S), arr] = 1.0
        return out
    if arr.shape != (S, A):
        raise invalid("pi", arr, f"({S},) action indices or an (S, A) = ({S}, {A}) matrix of probabilities")
    out = arr.astype(float)
    if (out < 0).any() or not np.allclose(out.sum(axis=1), 1.0, atol=1e-8):
        raise invalid("pi", arr, "non-negative rows that sum to 1", why="a stochastic policy")
    return out


def _policy_model(mdp: TabularMDP, pi: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """P_π (S, S) and r_π (S,), with terminal rows zeroed so that v(terminal) = 0."""
    probs = policy_matrix(mdp, pi)
    p_pi = np.einsum("sa,sat->st", probs, mdp.P)
    r_pi = (probs * mdp.R).sum(axis=1)
    p_pi[mdp.terminal] = 0.0
    r_pi[mdp.terminal] = 0.0
    return p_pi, r_pi


def evaluate_policy_exact(mdp: TabularMDP, pi: npt.ArrayLike) -> FloatArray:
    r"""Exact :math:`v_\pi = (I - \gamma P_\pi)^{-1} r_\pi` (S&B eq. 3.14 in matrix form; §4.1).

    Raises ``ValueError`` when the system is singular (γ = 1 and a policy that never terminates).
    Introduced in chapter 2.
    """
    p_pi, r_pi = _policy_model(mdp, pi)
    a = np.eye(mdp.n_states) - mdp.gamma * p_pi
    try:
        return cast(FloatArray, np.linalg.solve(a, r_pi))
    except np.linalg.LinAlgError as err:
        raise invalid("pi", pi, "a policy that reaches a terminal state",
                      why="I - γP_π is singular: with γ = 1 the policy must reach a terminal state") from err


def evaluate_policy_iterative(mdp: TabularMDP, pi: npt.ArrayLike, tol: float = 1e-12, max_iters: int = 100_000) -> FloatArray:
    r"""Iterative policy evaluation (S&B §4.1): repeat :math:`v \leftarrow r_\pi + \gamma P_\pi v` until the change is below ``tol``."""
    p_pi, r_pi = _policy_model(mdp, pi)
    v = np.zeros(mdp.n_states)
    for _ in range(max_iters):
        new = r_pi + mdp.gamma * p_pi @ v
        if np.max(np.abs(new - v)) < tol:
            return new
        v = new
    raise RuntimeError(f"policy evaluation did not converge to {tol} in {max_iters} iterations")


def q_from_v(mdp: TabularMDP, v: npt.ArrayLike) -> FloatArray:
    r""":math:`q(s, a) = r(s, a) + \gamma \sum_{s'} P(s'|s,a)\, v(s')`; 0 in terminal states. Introduced in chapter 2."""
    v = np.asarray(v, dtype=float)
    if v.shape != (mdp.n_states,):
        raise invalid("v", v, f"shape ({mdp.n_states},), one value per state")
    v = np.where(mdp.terminal, 0.0, v)
    q = mdp.R + mdp.gamma * mdp.P @ v
    q[mdp.terminal] = 0.0
    return q


def bellman_optimality_operator(mdp: TabularMDP, v: npt.ArrayLike) -> FloatArray:
    r""":math:`(Tv)(s) = \max_a [r(s,a) + \gamma \sum_{s'} P(s'|s,a) v(s')]`, a γ-contraction in the sup-norm."""
    return q_from_v(mdp, v).max(axis=1)


def greedy_policy(mdp: TabularMDP, v: npt.ArrayLike) -> IntArray:
    """The deterministic policy greedy with respect to ``v`` (ties: lowest action index)."""
    return np.argmax(q_from_v(mdp, v), axis=1).astype(np.int64)


@dataclass(frozen=True)
class ValueIterationResult:
    """``v`` (≈ v*), the greedy ``policy`` and the sup-norm change of every sweep (``residuals``)."""

    v: FloatArray
    policy: IntArray
    residuals: list[float]


def value_iteration(mdp: TabularMDP, tol: float = 1e-10, max_iters: int = 100_000) -> ValueIterationResult:
    r"""Value iteration (S&B §4.4): :math:`v_{k+1} = T v_k` from :math:`v_0 = 0` until :math:`\lVert v_{k+1} - v_k\rVert_\infty < \text{tol}`.

    Because :math:`T` is a γ-contraction, each residual is at most γ times the previous one.
    Introduced in chapter 2.
    """
    if tol <= 0:
        raise invalid("tol", tol, "a number > 0")
    v = np.zeros(mdp.n_states)
    residuals: list[float] = []
    for _ in range(max_iters):
        new = bellman_optimality_operator(mdp, v)
        residuals.append(float(np.max(np.abs(new - v))))
        v = new
        if residuals[-1] < tol:
            return ValueIterationResult(v=v, policy=greedy_policy(mdp, v), residuals=residuals)
    raise RuntimeError(f"value iteration did not converge to {tol} in {max_iters} sweeps")


@dataclass(frozen=True)
class PolicyIterationResult:
    r"""The outcome of :func:`policy_iteration`.

    - ``policy``: the final, stable deterministic policy (optimal), shape (S,);
    - ``v``: its exact value :math:`v_{\pi}` (= :math:`v_*`), shape (S,);
    - ``policies``: :math:`\pi_0, \pi_1, \ldots, \pi_K`, every policy that was evaluated (the
      last one is ``policy``: improving it changed nothing);
    - ``values``: :math:`v_{\pi_0}, \ldots, v_{\pi_K}`, non-decreasing in every state.
    """

    policy: IntArray
    v: FloatArray
    policies: list[IntArray]
    values: list[FloatArray]

    @property
    def n_iterations(self) -> int:
        """K, the number of improvement steps that changed the policy (K + 1 evaluations)."""
        return len(self.policies) - 1


def policy_iteration(
    mdp: TabularMDP,
    initial_policy: npt.ArrayLike | None = None,
    max_iters: int = 1_000,
    tol: float = 1e-9,
) -> PolicyIterationResult:
    r"""Policy iteration (Sutton & Barto, 2018, §4.3; Howard, 1960): evaluate exactly, improve greedily, repeat.

    1. *Evaluation*: :math:`v_{\pi_k} = (I - \gamma P_{\pi_k})^{-1} r_{\pi_k}`, one linear solve
       (:func:`evaluate_policy_exact`), instead of S&B's iterative sweeps.
    2. *Improvement*: :math:`\pi_{k+1}(s) \in \arg\max_a q_{\pi_k}(s, a)` with
       :math:`q_{\pi_k} = r + \gamma P v_{\pi_k}` (:func:`q_from_v`). An action is only replaced by
       one that is better by more than ``tol``, so float ties cannot make two equally good policies
       alternate forever (S&B Exercise 4.4).
    3. Stop when the improvement changes no action: the policy is then greedy with respect to its
       own value, so :math:`v_{\pi}` satisfies the Bellman optimality equation and :math:`\pi` is
       optimal (the policy improvement theorem, S&B §4.2).

    Each improvement step gives :math:`v_{\pi_{k+1}} \ge v_{\pi_k}` in every state, and there are
    finitely many deterministic policies, so the loop ends after at most :math:`|\mathcal A|^{|\mathcal S|}`
    improvements; in practice after a handful. ``initial_policy`` is an (S,) array of action
    indices; the default is the policy greedy with respect to :math:`v = 0`, that is the myopic
    :math:`\arg\max_a r(s, a)`. Terminal states keep their initial action (it has no effect).

    Raises ``ValueError`` for a bad ``initial_policy``, ``max_iters < 1`` or ``tol < 0``, and when
    a policy's value is undefined (γ = 1 and a policy that never terminates; see
    :func:`evaluate_policy_exact`); ``RuntimeError`` if the policy is still changing after
    ``max_iters`` improvements. Introduced in chapter 4.
    """
    if isinstance(max_iters, bool) or not isinstance(max_iters, (int, np.integer)) or max_iters < 1:
        raise invalid("max_iters", max_iters, "a positive int")
    if not (np.isfinite(tol) and tol >= 0):
        raise invalid("tol", tol, "a finite number >= 0")
    S, A = mdp.n_states, mdp.n_actions  # noqa: N806
    if initial_policy is None:
        policy = greedy_policy(mdp, np.zeros(S))
    else:
        arr = np.asarray(initial_policy)
        if arr.shape != (S,) or not np.issubdtype(arr.dtype, np.integer):
            raise invalid("initial_policy", arr, f"an ({S},) array of integer action indices")
        if (arr < 0).any() or (arr >= A).any():
            raise invalid("initial_policy", arr, f"action indices in [0, {A - 1}]")
        policy = arr.astype(np.int64)
    live = ~mdp.terminal
    policies: list[IntArray] = []
    values: list[FloatArray] = []
    for _ in range(max_iters + 1):
        v = evaluate_policy_exact(mdp, policy)
        policies.append(policy.copy())
        values.append(v)
        q = q_from_v(mdp, v)
        current = q[np.arange(S), policy]
        better = live & (q.max(axis=1) > current + tol)
        if not better.any():
            policy.setflags(write=False)
            return PolicyIterationResult(policy=policy, v=v, policies=policies, values=values)
        policy = np.where(better, np.argmax(q, axis=1), policy).astype(np.int64)
    raise RuntimeError(f"policy iteration still changed the policy after {max_iters} improvements")


def sample_returns(
    mdp: TabularMDP,
    pi: npt.ArrayLike,
    start: int,
    n_episodes: int,
    horizon: int = 1_000,
    seed: int | None = None,
) -> FloatArray:
    r"""Monte Carlo discounted returns :math:`G_0 = \sum_t \gamma^t r(S_t, A_t)` of ``n_episodes`` runs from ``start``.

    Episodes stop at a terminal state or after ``horizon`` steps (choose it so that :math:`\gamma^H`
    is negligible). The reward is the expected reward ``R[s, a]``, so the only randomness is in
    actions and transitions. Used to check the exact values against simulation (chapter 4).
    """
    if not 0 <= start < mdp.n_states:
        raise invalid("start", start, f"a state index in [0, {mdp.n_states - 1}]")
    if n_episodes < 1:
        raise invalid("n_episodes", n_episodes, "an int >= 1")
    if horizon < 1:
        raise invalid("horizon", horizon, "an int >= 1")
    probs = policy_matrix(mdp, pi)
    rng = np.random.default_rng(seed)
    cum_pi = np.cumsum(probs, axis=1)
    cum_p = np.cumsum(mdp.P, axis=2)
    state = np.full(n_episodes, start)
    alive = ~mdp.terminal[state]
    returns = np.zeros(n_episodes)
    discount = 1.0
    for _ in range(horizon):
        if not alive.any():
            break
        idx = np.flatnonzero(alive)
        s = state[idx]
        a = np.minimum((rng.random(idx.size)[:, None] > cum_pi[s]).sum(axis=1), mdp.n_actions - 1)
        returns[idx] += discount * mdp.R[s, a]
        nxt = np.minimum((rng.random(idx.size)[:, None] > cum_p[s, a]).sum(axis=1), mdp.n_states - 1)
        state[idx] = nxt
        alive[idx] = ~mdp.terminal[nxt]
        discount *= mdp.gamma
    return returns


def clickbait_mdp(
    clickbait_reward: float = 1.0,
    quality_reward: float = 0.6,
    churn_probability: float = 0.5,
    gamma: float = 0.9,
) -> TabularMDP:
    r"""The clickbait MDP: the smallest case where the myopic choice is not the optimal one.

    One live state, ``engaged``, and a terminal state, ``churned``. In ``engaged`` the recommender
    shows either ``clickbait`` (expected reward 1, but the user churns with probability 0.5) or a
    ``quality`` item (expected reward 0.6, and the user stays). With γ = 0.9,

    .. math:: v_{\text{clickbait}} = \frac{1}{1 - 0.9 \cdot 0.5} = 1.818\ldots, \qquad
              v_{\text{quality}} = \frac{0.6}{1 - 0.9} = 6,

    so the myopic policy (higher immediate reward) is far from optimal. Introduced in chapter 2.
    """
    if not 0.0 <= churn_probability <= 1.0:
        raise invalid("churn_probability", churn_probability, "a number in [0, 1]")
    P = np.zeros((2, 2, 2))  # noqa: N806
    P[0, 0] = [1.0 - churn_probability, churn_probability]  # clickbait
    P[0, 1] = [1.0, 0.0]  # quality
    P[1, :, 1] = 1.0  # churned is absorbing
    R = np.array([[clickbait_reward, quality_reward], [0.0, 0.0]])  # noqa: N806
    return TabularMDP(
        P=P,
        R=R,
        terminal=np.array([False, True]),
        gamma=gamma,
        state_names=("engaged", "churned"),
        action_names=("clickbait", "quality"),
    )


class TabularMDPEnv(gym.Env[int, int]):
    """A :class:`TabularMDP` as a gymnasium env, for the learning agents of chapters 3 and 4.

    Rewards are the expected rewards ``R[s, a]``; transitions are sampled from ``P[s, a]``.

    Observation Space: ``Discrete(n_states)``. Action Space: ``Discrete(n_actions)``.
    Episode End: ``terminated`` on entering a terminal state; never truncated (wrap it in
    ``gymnasium.wrappers.TimeLimit``, or pass ``max_episode_steps`` to ``train_tabular``).
    ``start=None`` starts each episode in a uniformly random live state (exploring starts,
    Sutton & Barto 2018, §5.3), so that every state keeps being visited.
    """

    def __init__(self, mdp: TabularMDP, start: int | None = 0):
        if start is not None and not (0 <= start < mdp.n_states and not mdp.terminal[start]):
            raise invalid("start", start, f"a live (non-terminal) state in [0, {mdp.n_states - 1}] or None")
        self.mdp, self.start = mdp, start
        self.observation_space = spaces.Discrete(mdp.n_states)  # type: ignore[assignment]
        self.action_space = spaces.Discrete(mdp.n_actions)  # type: ignore[assignment]
        self._cumulative = np.cumsum(mdp.P, axis=2)
        self._live = np.flatnonzero(~mdp.terminal)
        self.state = -1

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.state = int(self.np_random.choice(self._live)) if self.start is None else self.start
        return self.state, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise invalid("action", action, f"an integer in [0, {self.mdp.n_actions - 1}]")
        if self.state < 0 or self.mdp.terminal[self.state]:
            raise RuntimeError("call reset() before step(), and again after the episode ends")
        reward = float(self.mdp.R[self.state, action])
        u = self.np_random.random()
        nxt = int(np.searchsorted(self._cumulative[self.state, action], u, side="right"))
        self.state = min(nxt, self.mdp.n_states - 1)  # guards against rounding in the cumulative sum
        return self.state, reward, bool(self.mdp.terminal[self.state]), False, {}
