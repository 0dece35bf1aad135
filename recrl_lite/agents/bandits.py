r"""Bandits: ε-greedy, UCB1, Thompson sampling, LinUCB and linear Thompson sampling (chapter 3).

Introduced in chapter 3 of the book; chapter 6 reuses LinUCB. A bandit is the one-step special
case of an MDP: the action does not change the next context, so there is nothing to plan and the
only problem is to explore. Every bandit here is a :class:`~recrl_lite.agents.base.Policy` with

* ``select(context=None) -> arm`` and ``update(arm, reward, context=None)``; the context-free
  bandits ignore the context, so every bandit runs on every problem;
* ``act(observation)`` = ``select`` (the observation *is* the context for contextual bandits; use
  :class:`BanditPolicy` to map simulator observations to contexts and arms to items);
* ``seed``, ``reset`` (forget all statistics), ``state_dict`` / ``save`` / ``load``.

Problems: :class:`BernoulliBandit` (context-free, with regret bookkeeping), the synthetic
:class:`LinearContextualBandit`, and :class:`SimulatorContextualBandit`, which turns the first step
of each simulated session into one contextual-bandit round with known expected rewards.
:func:`run_bandit` and :func:`run_contextual_bandit` return cumulative regret curves;
:func:`train_bandit_on_sessions` lets a :class:`BanditPolicy` learn online at every step of
simulated sessions.

Regret here is *pseudo-regret*, :math:`\sum_t \mu^*(x_t) - \mu_{A_t}(x_t)`, computed from the true
means, which is far less noisy than the realised reward gap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from tqdm import tqdm

from recrl_lite.agents.base import Policy, checkpoint_array, unwrap
from recrl_lite.agents.tabular import random_argmax
from recrl_lite.errors import check_finite, check_number, invalid


# ============================================================================ configs
@dataclass
class EpsilonGreedyConfig:
    """Hyperparameters of :class:`EpsilonGreedyBandit`."""

    epsilon: float = 0.1
    """Probability of pulling a uniformly random arm (constant: regret grows linearly)."""

    def __post_init__(self) -> None:
        check_number("EpsilonGreedyConfig.epsilon", self.epsilon, 0.0, 1.0)


@dataclass
class UCB1Config:
    """Hyperparameters of :class:`UCB1`."""

    c: float = 2.0
    """Exploration constant in mean + sqrt(c ln t / n_a); Auer et al. (2002) use c = 2."""

    def __post_init__(self) -> None:
        check_number("UCB1Config.c", self.c, 0.0)


@dataclass
class ThompsonConfig:
    """Hyperparameters of :class:`BetaBernoulliThompson`."""

    prior_alpha: float = 1.0
    """α of the Beta prior of every arm's mean (1, 1 is uniform)."""
    prior_beta: float = 1.0
    """β of the Beta prior."""

    def __post_init__(self) -> None:
        if not self.prior_alpha > 0.0:
            raise invalid("ThompsonConfig.prior_alpha", self.prior_alpha, "a number > 0", why="the Beta prior's alpha")
        if not self.prior_beta > 0.0:
            raise invalid("ThompsonConfig.prior_beta", self.prior_beta, "a number > 0", why="the Beta prior's beta")


@dataclass
class LinUCBConfig:
    """Hyperparameters of :class:`LinUCB`."""

    alpha: float = 1.0
    """Width of the confidence bonus α√(xᵀA⁻¹x); Li et al. (2010) set α = 1 + √(ln(2/δ)/2)."""
    ridge: float = 1.0
    """λ in A = λI + Σxxᵀ (Algorithm 1 uses the identity, λ = 1)."""

    def __post_init__(self) -> None:
        check_number("LinUCBConfig.alpha", self.alpha, 0.0)
        check_number("LinUCBConfig.ridge", self.ridge, 0.0, low_open=True)


@dataclass
class LinearThompsonConfig:
    """Hyperparameters of :class:`LinearThompson`."""

    v: float = 0.5
    """Posterior scale: θ_a ~ N(θ̂_a, v² A_a⁻¹). The theory of Agrawal & Goyal (2013) takes
    v = R √(24 d ln(1/δ) / ε); much smaller values work better in practice."""
    ridge: float = 1.0
    """λ in A = λI + Σxxᵀ (the prior precision)."""

    def __post_init__(self) -> None:
        check_number("LinearThompsonConfig.v", self.v, 0.0)
        check_number("LinearThompsonConfig.ridge", self.ridge, 0.0, low_open=True)


def _make_config(cls: Any, config: Any, overrides: dict[str, Any]) -> Any:
    base = config if config is not None else cls()
    if not isinstance(base, cls):
        raise invalid("config", base, f"a {cls.__name__}")
    return cls(**{**asdict(base), **overrides}) if overrides else base


# ============================================================================ the interface
class Bandit(Policy):
    """Shared interface: ``select(context=None) -> arm``, ``update(arm, reward, context=None)``."""

    name = "bandit"
    #: whether ``select`` uses the context
    contextual: bool = False

    def __init__(self, n_arms: int, seed: int | None = None):
        super().__init__()
        if not isinstance(n_arms, (int, np.integer)) or isinstance(n_arms, bool) or n_arms < 1:
            raise invalid("n_arms", n_arms, "an int in [1, inf)")
        self.n_arms = int(n_arms)
        self.seed(seed)
        self.reset()

    def reset(self) -> None:
        """Forget everything learned (the generator is left as it is)."""
        raise NotImplementedError

    def select(self, context: np.ndarray | None = None) -> int:
        """The arm to pull (for ``context``, if contextual)."""
        raise NotImplementedError

    def update(self, arm: int, reward: float, context: np.ndarray | None = None) -> dict[str, float]:  # type: ignore[override]
        """Learn from pulling ``arm`` (in ``context``) and receiving ``reward``."""
        raise NotImplementedError

    def act(self, observation: Any) -> int:
        """``select(observation)``: the observation is the context (ignored if context-free)."""
        return self.select(observation if self.contextual else None)

    def _check_arm(self, arm: Any) -> int:
        if isinstance(arm, (int, np.integer)) and not isinstance(arm, (bool, np.bool_)) and 0 <= arm < self.n_arms:
            return int(arm)
        raise invalid("arm", arm, f"an int in [0, {self.n_arms - 1}]")

    @staticmethod
    def _check_reward(reward: Any, unit_interval: bool = False) -> float:
        r = float(reward)
        if not math.isfinite(r) or (unit_interval and not 0.0 <= r <= 1.0):
            expected = "a number in [0, 1]" if unit_interval else "a finite number"
            raise invalid("reward", reward, expected)
        return r

    def _load_arrays(self, state: dict[str, Any], names: Sequence[str],
                     low: dict[str, tuple[float, bool]] | None = None) -> dict[str, np.ndarray]:
        """Convert checkpoint entries to numpy and check each against the current shape and dtype.

        Integer statistics (pull counts) must be integers >= 0; ``low`` maps other entries to their
        (lower bound, whether it is excluded).
        """
        Policy.load_state_dict(self, state)
        current = self.state_dict()
        arrays = {}
        for key in names:
            integer = np.asarray(current[key]).dtype.kind in "iu"
            bound, bound_open = (low or {}).get(key, (0.0 if integer else None, False))
            arrays[key] = checkpoint_array(type(self).__name__, key, state[key], np.shape(current[key]),
                                           "the shape of this bandit's statistics", integer=integer,
                                           low=bound, low_open=bound_open)
        return arrays


# ============================================================================ context-free bandits
class _SampleMeanBandit(Bandit):
    """Keeps pull counts and sample-mean rewards per arm."""

    def reset(self) -> None:
        self.counts = np.zeros(self.n_arms, dtype=np.int64)
        self.values = np.zeros(self.n_arms)

    def update(self, arm: int, reward: float, context: np.ndarray | None = None) -> dict[str, float]:  # type: ignore[override]
        a = self._check_arm(arm)
        r = self._check_reward(reward)
        self.counts[a] += 1
        self.values[a] += (r - self.values[a]) / self.counts[a]
        return {"estimate": float(self.values[a])}

    def state_dict(self) -> dict[str, Any]:
        return {"counts": self.counts.copy(), "values": self.values.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        arrays = self._load_arrays(state, ("counts", "values"))
        self.counts, self.values = arrays["counts"], arrays["values"]


class EpsilonGreedyBandit(_SampleMeanBandit):
    r"""Constant-ε greedy on sample means: a uniform arm with probability ε, else the best mean.

    Sutton & Barto (2018), §2.2–2.4. With constant ε it keeps pulling each suboptimal arm i at rate
    ε/K forever, so its regret grows linearly, at least :math:`(\varepsilon/K)\sum_i \Delta_i` per step.
    Ties are broken at random. Introduced in chapter 3 of the book.
    """

    name = "ε-greedy"

    def __init__(self, n_arms: int, config: EpsilonGreedyConfig | None = None, seed: int | None = None, **overrides: Any):
        self.config = _make_config(EpsilonGreedyConfig, config, overrides)
        super().__init__(n_arms, seed)

    def select(self, context: np.ndarray | None = None) -> int:
        if self.rng.random() < self.config.epsilon:
            return int(self.rng.integers(self.n_arms))
        return random_argmax(self.values, self.rng)


class UCB1(_SampleMeanBandit):
    r"""UCB1: pull :math:`\arg\max_a \bar x_a + \sqrt{c \ln t / n_a}` after pulling each arm once.

    Auer, Cesa-Bianchi & Fischer (2002), Fig. 1 (c = 2), where t is the number of pulls so far.
    Its expected regret is at most :math:`8\sum_i \ln T/\Delta_i + (1 + \pi^2/3)\sum_i \Delta_i`:
    logarithmic in T (Theorem 1). Introduced in chapter 3 of the book.
    """

    name = "UCB1"

    def __init__(self, n_arms: int, config: UCB1Config | None = None, seed: int | None = None, **overrides: Any):
        self.config = _make_config(UCB1Config, config, overrides)
        super().__init__(n_arms, seed)

    def upper_bounds(self) -> np.ndarray:
        """The index of every arm (+inf for arms not pulled yet)."""
        t = max(int(self.counts.sum()), 1)
        bonus = np.sqrt(self.config.c * math.log(t) / np.maximum(self.counts, 1))
        return np.where(self.counts > 0, self.values + bonus, np.inf)

    def select(self, context: np.ndarray | None = None) -> int:
        return random_argmax(self.upper_bounds(), self.rng)


class BetaBernoulliThompson(Bandit):
    r"""Thompson sampling with a Beta(1, 1) prior: draw :math:`\tilde\mu_a \sim \mathrm{Beta}(S_a + 1, F_a + 1)`
    and pull the arm with the largest draw.

    Thompson (1933); Agrawal & Goyal (2012), Algorithm 1, which also proves logarithmic regret. A
    reward r in [0, 1] that is not 0 or 1 counts as a Bernoulli(r) trial (their Algorithm 2).
    Introduced in chapter 3 of the book.
    """

    name = "Thompson (Beta-Bernoulli)"

    def __init__(self, n_arms: int, config: ThompsonConfig | None = None, seed: int | None = None, **overrides: Any):
        self.config = _make_config(ThompsonConfig, config, overrides)
        super().__init__(n_arms, seed)

    def reset(self) -> None:
        self.alpha = np.full(self.n_arms, self.config.prior_alpha)
        self.beta = np.full(self.n_arms, self.config.prior_beta)

    def posterior_means(self) -> np.ndarray:
        return self.alpha / (self.alpha + self.beta)

    def select(self, context: np.ndarray | None = None) -> int:
        return random_argmax(self.rng.beta(self.alpha, self.beta), self.rng)

    def update(self, arm: int, reward: float, context: np.ndarray | None = None) -> dict[str, float]:  # type: ignore[override]
        a = self._check_arm(arm)
        r = self._check_reward(reward, unit_interval=True)
        success = r if r in (0.0, 1.0) else float(self.rng.random() < r)
        self.alpha[a] += success
        self.beta[a] += 1.0 - success
        return {"estimate": float(self.alpha[a] / (self.alpha[a] + self.beta[a]))}

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha.copy(), "beta": self.beta.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Beta(alpha, beta) needs alpha, beta > 0, or select() fails inside numpy
        arrays = self._load_arrays(state, ("alpha", "beta"), low={"alpha": (0.0, True), "beta": (0.0, True)})
        self.alpha, self.beta = arrays["alpha"], arrays["beta"]


# ============================================================================ contextual bandits
class _LinearBandit(Bandit):
    r"""Disjoint per-arm ridge regression: :math:`A_a = \lambda I + \sum x x^\top`, :math:`b_a = \sum r x`,
    :math:`\hat\theta_a = A_a^{-1} b_a`. :math:`A_a^{-1}` is kept up to date by Sherman–Morrison,
    :math:`(A + xx^\top)^{-1} = A^{-1} - A^{-1}xx^\top A^{-1} / (1 + x^\top A^{-1} x)`, so an update
    costs O(d²) instead of a d × d inversion.
    """

    contextual = True
    ridge: float

    def __init__(self, n_arms: int, dim: int, seed: int | None = None):
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 1:
            raise invalid("dim", dim, "an int in [1, inf)")
        self.dim = int(dim)
        super().__init__(n_arms, seed)

    def reset(self) -> None:
        self.A_inv = np.broadcast_to(np.eye(self.dim) / self.ridge, (self.n_arms, self.dim, self.dim)).copy()
        self.b = np.zeros((self.n_arms, self.dim))
        self.counts = np.zeros(self.n_arms, dtype=np.int64)
        self._theta = np.zeros((self.n_arms, self.dim))

    def theta(self) -> np.ndarray:
        r""":math:`\hat\theta_a = A_a^{-1} b_a` for every arm, shape (n_arms, dim)."""
        return np.einsum("kij,kj->ki", self.A_inv, self.b)

    def _check_context(self, context: Any) -> np.ndarray:
        if context is None:
            raise invalid("context", context, f"an array of shape ({self.dim},)",
                          why=f"{type(self).__name__} is contextual: select/update need a context")
        x = np.asarray(context, dtype=float)
        if x.shape != (self.dim,):
            raise invalid("context shape", x.shape, f"({self.dim},)")
        check_finite("context", x)
        return x

    def _mean_and_variance(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """θ̂_aᵀx and xᵀA_a⁻¹x for every arm, shape (n_arms,) each."""
        return self._theta @ x, (self.A_inv @ x) @ x

    def update(self, arm: int, reward: float, context: np.ndarray | None = None) -> dict[str, float]:  # type: ignore[override]
        a = self._check_arm(arm)
        r = self._check_reward(reward)
        x = self._check_context(context)
        error = r - float(self._theta[a] @ x)
        A_inv = self.A_inv[a]
        Ax = A_inv @ x
        A_inv -= np.outer(Ax, Ax) / (1.0 + float(x @ Ax))
        self.b[a] += r * x
        self._theta[a] = A_inv @ self.b[a]
        self.counts[a] += 1
        return {"prediction_error": error}

    def state_dict(self) -> dict[str, Any]:
        return {"A_inv": self.A_inv.copy(), "b": self.b.copy(), "counts": self.counts.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        arrays = self._load_arrays(state, ("A_inv", "b", "counts"))
        # A⁻¹ is positive definite, so its diagonal is > 0; else xᵀA⁻¹x, the variance, can be negative
        diagonal = np.diagonal(arrays["A_inv"], axis1=1, axis2=2)
        if (diagonal <= 0).any():
            raise invalid(f"{type(self).__name__} checkpoint entry 'A_inv'", state["A_inv"],
                          "positive definite matrices, whose diagonals are > 0",
                          why=f"{int((diagonal <= 0).sum())} diagonal entries are <= 0")
        self.A_inv, self.b, self.counts = arrays["A_inv"], arrays["b"], arrays["counts"]
        self._theta = self.theta()


class LinUCB(_LinearBandit):
    r"""Disjoint LinUCB: pull :math:`\arg\max_a \hat\theta_a^\top x + \alpha \sqrt{x^\top A_a^{-1} x}`.

    Li, Chu, Langford & Schapire, "A Contextual-Bandit Approach to Personalized News Article
    Recommendation", WWW 2010, Algorithm 1 (eqs. 4–5), with :math:`A_a = I + \sum x x^\top` and
    :math:`\hat\theta_a = A_a^{-1} b_a` the ridge-regression estimate (see :meth:`theta`).
    Introduced in chapter 3 of the book; chapter 6 evaluates it by replay.
    """

    name = "LinUCB"

    def __init__(self, n_arms: int, dim: int, config: LinUCBConfig | None = None, seed: int | None = None, **overrides: Any):
        self.config = _make_config(LinUCBConfig, config, overrides)
        self.ridge = self.config.ridge
        super().__init__(n_arms, dim, seed)

    def upper_bounds(self, context: np.ndarray) -> np.ndarray:
        """The LinUCB score of every arm for ``context``."""
        mean, var = self._mean_and_variance(self._check_context(context))
        return mean + self.config.alpha * np.sqrt(np.maximum(var, 0.0))

    def select(self, context: np.ndarray | None = None) -> int:
        return random_argmax(self.upper_bounds(context), self.rng)  # type: ignore[arg-type]


class LinearThompson(_LinearBandit):
    r"""Linear Thompson sampling: draw :math:`\tilde\theta_a \sim N(\hat\theta_a, v^2 A_a^{-1})` and pull
    :math:`\arg\max_a \tilde\theta_a^\top x`.

    Agrawal & Goyal, "Thompson Sampling for Contextual Bandits with Linear Payoffs", ICML 2013,
    Algorithm 1, here with one θ per arm (disjoint, as in LinUCB). Since the arms' draws are
    independent and the score is linear, :math:`\tilde\theta_a^\top x \sim N(\hat\theta_a^\top x,
    v^2 x^\top A_a^{-1} x)` exactly, so :meth:`select` draws that scalar per arm (O(K d²)) instead
    of a d-dimensional Gaussian; :meth:`sample_theta` draws the full vectors.
    Introduced in chapter 3 of the book.
    """

    name = "linear Thompson"

    def __init__(
        self, n_arms: int, dim: int, config: LinearThompsonConfig | None = None, seed: int | None = None, **overrides: Any
    ):
        self.config = _make_config(LinearThompsonConfig, config, overrides)
        self.ridge = self.config.ridge
        super().__init__(n_arms, dim, seed)

    def sample_theta(self) -> np.ndarray:
        """One posterior draw θ̃_a ~ N(θ̂_a, v² A_a⁻¹) per arm, shape (n_arms, dim)."""
        chol = np.linalg.cholesky((self.A_inv + self.A_inv.transpose(0, 2, 1)) / 2.0)
        z = self.rng.standard_normal((self.n_arms, self.dim))
        return self._theta + self.config.v * np.einsum("kij,kj->ki", chol, z)

    def select(self, context: np.ndarray | None = None) -> int:
        mean, var = self._mean_and_variance(self._check_context(context))
        draw = mean + self.config.v * np.sqrt(np.maximum(var, 0.0)) * self.rng.standard_normal(self.n_arms)
        return random_argmax(draw, self.rng)


# ============================================================================ problems
class BernoulliBandit:
    """K arms with Bernoulli rewards of known means; keeps pull counts for regret bookkeeping."""

    def __init__(self, means: Sequence[float] | np.ndarray):
        m = np.asarray(means, dtype=float)
        if m.ndim != 1 or m.shape[0] < 1 or not np.all((m >= 0.0) & (m <= 1.0)):
            raise invalid("means", means, "a non-empty 1-D sequence of probabilities in [0, 1]")
        self.means = m
        self.counts = np.zeros(m.shape[0], dtype=np.int64)

    @property
    def n_arms(self) -> int:
        return int(self.means.shape[0])

    @property
    def best_arm(self) -> int:
        return int(np.argmax(self.means))

    @property
    def gaps(self) -> np.ndarray:
        """Δ_a = μ* − μ_a."""
        return self.means.max() - self.means

    def pull(self, arm: int, rng: np.random.Generator) -> float:
        """Sample a reward of ``arm`` and count the pull."""
        if not isinstance(arm, (int, np.integer)) or not 0 <= arm < self.n_arms:
            raise invalid("arm", arm, f"an int in [0, {self.n_arms - 1}]")
        self.counts[arm] += 1
        return float(rng.random() < self.means[arm])

    @property
    def regret(self) -> float:
        """Pseudo-regret of all pulls so far: Σ_a n_a Δ_a."""
        return float(self.counts @ self.gaps)

    def reset(self) -> None:
        """Forget the pull counts."""
        self.counts[:] = 0


def _split_seed(seed: int | None) -> tuple[int, int]:
    a, b = np.random.SeedSequence(seed).generate_state(2)
    return int(a), int(b)


def run_bandit(bandit: Bandit, env: BernoulliBandit, horizon: int, seed: int | None = None) -> np.ndarray:
    """Run ``bandit`` for ``horizon`` pulls on ``env``; returns the cumulative pseudo-regret, shape (horizon,).

    ``seed`` seeds the bandit and the rewards (all drawn up front, one uniform per step). The
    bandit continues from its current statistics: pass a fresh one (or call ``reset``) per run.
    """
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise invalid("horizon", horizon, "an int in [1, inf)")
    if bandit.n_arms != env.n_arms:
        raise invalid("bandit.n_arms", bandit.n_arms, f"env.n_arms = {env.n_arms}",
                      why="the bandit pulls the arms of the problem")
    bandit_seed, reward_seed = _split_seed(seed)
    bandit.seed(bandit_seed)
    uniforms = np.random.default_rng(reward_seed).random(horizon).tolist()
    means = env.means.tolist()
    arms = np.empty(horizon, dtype=np.int64)
    for t in range(horizon):
        arm = bandit.select()
        bandit.update(arm, 1.0 if uniforms[t] < means[arm] else 0.0)
        arms[t] = arm
    env.counts += np.bincount(arms, minlength=env.n_arms)
    return np.cumsum(env.gaps[arms])


class ContextualProblem:
    """Interface of contextual-bandit problems: ``reset(seed)``, then per round ``observe() -> x``,
    ``expected_rewards() -> μ(x, ·)`` and ``pull(arm) -> reward``."""

    n_arms: int
    dim: int

    def reset(self, seed: int | None = None) -> None:
        raise NotImplementedError

    def observe(self) -> np.ndarray:
        raise NotImplementedError

    def expected_rewards(self) -> np.ndarray:
        raise NotImplementedError

    def pull(self, arm: int) -> float:
        raise NotImplementedError


class LinearContextualBandit(ContextualProblem):
    r"""Synthetic linear problem: context :math:`x = (1, z)` with z uniform on the unit sphere of
    :math:`\mathbb R^{d-1}`, Bernoulli rewards with mean :math:`\mu_a(x) = \theta_a^\top x = 0.5 + 0.4\,
    u_a^\top z \in [0.1, 0.9]` for fixed random unit vectors :math:`u_a`. The best arm depends on the
    context, so a context-free bandit has linear regret and LinUCB does not.
    """

    def __init__(self, n_arms: int = 5, dim: int = 5, problem_seed: int = 0):
        if n_arms < 2:
            raise invalid("n_arms", n_arms, "an int in [2, inf)", why="with one arm there is nothing to choose")
        if dim < 2:
            raise invalid("dim", dim, "an int in [2, inf)", why="the context is an intercept and dim - 1 features")
        self.n_arms, self.dim = int(n_arms), int(dim)
        u = np.random.default_rng(problem_seed).standard_normal((n_arms, dim - 1))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        self.theta = np.column_stack([np.full(n_arms, 0.5), 0.4 * u])
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self._x: np.ndarray | None = None

    def observe(self) -> np.ndarray:
        z = self.rng.standard_normal(self.dim - 1)
        self._x = np.concatenate([[1.0], z / np.linalg.norm(z)])
        return self._x.copy()

    def expected_rewards(self) -> np.ndarray:
        if self._x is None:
            raise RuntimeError("call observe() first")
        return self.theta @ self._x

    def pull(self, arm: int) -> float:
        if not isinstance(arm, (int, np.integer)) or not 0 <= arm < self.n_arms:
            raise invalid("arm", arm, f"an int in [0, {self.n_arms - 1}]")
        return float(self.rng.random() < self.expected_rewards()[arm])


class SimulatorContextualBandit(ContextualProblem):
    """The first step of each simulated session as one contextual-bandit round.

    Each round meets a new user (``env.reset``). The context is the user's observable features
    ``obs[layout.user]`` (age, gender one-hot, location one-hot; the gender one-hot already sums
    to 1 and acts as an intercept, ``intercept=True`` adds an explicit 1). Arm k recommends item
    ``items[k]`` (all items by default) and the reward is the env's reward for that first
    recommendation (a click under the default config). :meth:`expected_rewards` reads the true
    ``expected_immediate_reward`` of the candidates, so regret is measured against the best item
    for each user. It ignores everything after the first step: a bandit trained here is myopic.
    """

    def __init__(self, env: Any = None, candidates: Sequence[int] | np.ndarray | None = None, intercept: bool = False):
        from recrl_lite.envs import ENV_ID  # lazy: keeps agents importable without the env registry

        self.env = env if env is not None else gym.make(ENV_ID)
        base = unwrap(self.env)
        if getattr(base.config, "slate_size", 1) != 1:
            raise invalid("env slate_size", base.config.slate_size, "1",
                          why="SimulatorContextualBandit recommends one item per round")
        n_items = base.config.n_items
        items = np.arange(n_items) if candidates is None else np.asarray(candidates)
        if (
            items.ndim != 1 or items.shape[0] < 1 or not np.issubdtype(items.dtype, np.integer)
            or items.min() < 0 or items.max() >= n_items or np.unique(items).shape[0] != items.shape[0]
        ):
            raise invalid("candidates", candidates, f"distinct item indices in [0, {n_items - 1}]")
        self.base = base
        self.items = items.astype(np.int64)
        self.intercept = bool(intercept)
        self._user = base.layout.user
        self.n_arms = int(self.items.shape[0])
        self.dim = (self._user.stop - self._user.start) + int(self.intercept)
        self.reset()

    def context(self, observation: np.ndarray) -> np.ndarray:
        """The context of a simulator observation (usable at any step of a session)."""
        x = np.asarray(observation, dtype=float)[self._user]
        return np.concatenate([[1.0], x]) if self.intercept else x

    def reset(self, seed: int | None = None) -> None:
        self._seed = seed
        self._mu: np.ndarray | None = None

    def observe(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None  # the env's generator carries on from the first seeded reset
        self._mu = self.base.expected_immediate_reward()[self.items]
        return self.context(obs)

    def expected_rewards(self) -> np.ndarray:
        if self._mu is None:
            raise RuntimeError("call observe() first")
        return self._mu.copy()

    def pull(self, arm: int) -> float:
        if self._mu is None:
            raise RuntimeError("each round allows one pull: call observe() first")
        if not isinstance(arm, (int, np.integer)) or not 0 <= arm < self.n_arms:
            raise invalid("arm", arm, f"an int in [0, {self.n_arms - 1}]")
        self._mu = None
        _, reward, _, _, _ = self.env.step(int(self.items[arm]))
        return float(reward)


def run_contextual_bandit(bandit: Bandit, problem: ContextualProblem, horizon: int, seed: int | None = None) -> np.ndarray:
    """Run ``bandit`` for ``horizon`` rounds of ``problem``; returns the cumulative pseudo-regret
    Σ_t max_a μ(x_t, a) − μ(x_t, A_t), shape (horizon,).

    Context-free bandits run too (they ignore the context). ``seed`` seeds the bandit and the
    problem; the bandit continues from its current statistics.
    """
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise invalid("horizon", horizon, "an int in [1, inf)")
    if bandit.n_arms != problem.n_arms:
        raise invalid("bandit.n_arms", bandit.n_arms, f"problem.n_arms = {problem.n_arms}",
                      why="the bandit pulls the arms of the problem")
    bandit_seed, problem_seed = _split_seed(seed)
    bandit.seed(bandit_seed)
    problem.reset(problem_seed)
    regret = np.empty(horizon)
    for t in range(horizon):
        x = problem.observe()
        mu = problem.expected_rewards()
        arm = bandit.select(x)
        bandit.update(arm, problem.pull(arm), x)
        regret[t] = mu.max() - mu[arm]
    return np.cumsum(regret)


# ============================================================================ acting in the simulator
class BanditPolicy(Policy):
    """Adapter: a bandit acting in the simulator, arm k ↦ item ``items[k]``, observation ↦ context.

    ``features`` maps an observation to the bandit's context (ignored by context-free bandits);
    :meth:`from_problem` reuses a :class:`SimulatorContextualBandit`'s map and candidates, so a
    bandit trained there can be evaluated on whole sessions with
    :func:`recrl_lite.evaluation.evaluate_policy`. Checkpoints hold the bandit's state.
    """

    def __init__(
        self,
        bandit: Bandit,
        features: Callable[[np.ndarray], np.ndarray] | None = None,
        items: Sequence[int] | np.ndarray | None = None,
    ):
        super().__init__()
        if bandit.contextual and features is None:
            raise invalid("features", features, "a map from observation to context", why=f"{bandit.name} is contextual")
        self.bandit = bandit
        self.features = features
        self.items = np.arange(bandit.n_arms) if items is None else np.asarray(items, dtype=np.int64)
        if self.items.shape != (bandit.n_arms,):
            raise invalid("items shape", self.items.shape, f"({bandit.n_arms},)", why="one item per arm")
        self._arm_of = {int(item): arm for arm, item in enumerate(self.items.tolist())}
        self.name = f"bandit ({bandit.name})"

    @classmethod
    def from_problem(cls, bandit: Bandit, problem: SimulatorContextualBandit) -> BanditPolicy:
        return cls(bandit, problem.context, problem.items)

    def _context(self, observation: np.ndarray) -> np.ndarray | None:
        return self.features(observation) if self.features is not None else None

    def act(self, observation: np.ndarray) -> int:
        return int(self.items[self.bandit.select(self._context(observation))])

    def update(self, observation: np.ndarray, action: int, reward: float, *args: Any, **kwargs: Any) -> dict[str, float]:  # type: ignore[override]
        """Learn from recommending item ``action`` after ``observation`` (further arguments are ignored)."""
        arm = self._arm_of.get(int(action))
        if arm is None:
            raise invalid("action", action, f"one of this policy's {len(self.items)} candidate items")
        return self.bandit.update(arm, reward, self._context(observation))

    def seed(self, seed: int | None = None) -> None:
        super().seed(seed)
        if hasattr(self, "bandit"):
            self.bandit.seed(seed)

    def state_dict(self) -> dict[str, Any]:
        return self.bandit.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.bandit.load_state_dict(state)


def train_bandit_on_sessions(
    policy: BanditPolicy, env: Any, n_sessions: int, seed: int | None = None, progress: bool = False
) -> pd.DataFrame:
    """Let ``policy`` recommend at every step of ``n_sessions`` simulated sessions, learning online.

    Each recommendation is one bandit round: the context is ``policy.features(observation)`` and
    the reward is the env's reward for the item. This is how bandits are deployed in recommenders,
    and it is why they are myopic: nothing tells the bandit what its choice does to the rest of
    the session. ``seed`` seeds the policy and the first ``env.reset``. Returns one row per session
    (``session, return, length``), a learning curve.
    """
    if not isinstance(n_sessions, (int, np.integer)) or n_sessions < 1:
        raise invalid("n_sessions", n_sessions, "an int in [1, inf)")
    if seed is not None:
        policy.seed(seed)
    rows = []
    for session in tqdm(range(n_sessions), desc=policy.name, disable=not progress, mininterval=1.0):
        obs, _ = env.reset(seed=seed if session == 0 else None)
        total, length, done = 0.0, 0, False
        while not done:
            action = policy.act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            policy.update(obs, action, reward)
            total, length, done = total + float(reward), length + 1, terminated or truncated
            obs = next_obs
        rows.append({"session": session, "return": total, "length": length})
    return pd.DataFrame(rows, columns=["session", "return", "length"])
