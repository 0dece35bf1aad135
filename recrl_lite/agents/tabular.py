r"""Tabular TD control: Q-learning and SARSA, with ε-greedy exploration (chapter 3; maths in chapter 4).

Introduced in chapter 3 of the book. Both agents keep a table :math:`Q(s, a)` over a ``Discrete``
state space (on the simulator, through :class:`recrl_lite.envs.DiscretiseObservation`) and move it
toward a one-step target by the temporal-difference error :math:`\delta`:

.. math:: Q(S_t, A_t) \leftarrow Q(S_t, A_t) + \alpha_t\, \delta_t, \qquad
          \delta_t = R_{t+1} + \gamma\,(1 - \text{terminated})\, \hat q(S_{t+1}) - Q(S_t, A_t),

where :math:`\hat q(s') = \max_{a'} Q(s', a')` for Q-learning (off-policy: the maximising
:math:`a'` only builds the target, it need not be executed; AUDIT E5) and :math:`\hat q(s') = Q(s',
A_{t+1})` for SARSA (on-policy: :math:`A_{t+1}` is the action actually taken next). These are
value-based TD control methods, not policy-gradient methods (AUDIT E6).

Terminated vs truncated (AUDIT E10): a *terminated* transition reaches an absorbing state whose
value is 0, so the target does not bootstrap. A *truncated* one was cut by a time limit: the next
state still has a future, so the target bootstraps from it exactly as on any other step.

Ties are broken at random with the agent's own seeded generator. ``np.argmax`` always returns the
first maximiser, which with :math:`Q_0 = 0` silently turns "greedy" into "always action 0"
(AUDIT E9).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from tqdm import tqdm

from recrl_lite.agents.base import Policy, checkpoint_array
from recrl_lite.errors import check_int, describe, invalid, invalid_fields


def random_argmax(values: np.ndarray, rng: np.random.Generator) -> int:
    """Index of a maximum of ``values``, chosen uniformly at random among ties (AUDIT E9)."""
    best = np.flatnonzero(values == values.max())
    if best.shape[0] == 0:
        raise invalid("values", values, "numbers with a maximum", why="NaN values have no argmax")
    if best.shape[0] == 1:
        return int(best[0])
    return int(best[rng.integers(best.shape[0])])


@dataclass
class TabularConfig:
    """Hyperparameters of :class:`QLearningAgent` and :class:`SarsaAgent`."""

    alpha: float = 0.1
    """Step size α (the first visit of each (s, a) uses exactly α)."""
    alpha_power: float = 0.0
    """ω: after n visits of (s, a) the step size is α / n^ω. 0 keeps α constant; ω in (0.5, 1]
    satisfies the Robbins–Monro conditions under which Q-learning converges (Watkins & Dayan 1992;
    Even-Dar & Mansour 2003 recommend ω ≈ 0.8)."""
    gamma: float = 0.9
    """Discount factor γ in [0, 1]."""
    epsilon_schedule: Literal["constant", "exponential", "inverse"] = "constant"
    """How ε changes with the number k of finished episodes: ``constant`` ε_k = ε_start;
    ``exponential`` ε_k = max(ε_end, ε_start · decay^k); ``inverse`` ε_k = max(ε_end, ε_start / (k + 1)),
    which with ε_end = 0 vanishes while its sum diverges: the usual recipe for GLIE (greedy in the
    limit with infinite exploration), which also needs every state-action pair to keep being visited
    (Singh et al. 2000 use a per-state ε_t(s) = c / n_t(s) to guarantee it)."""
    epsilon_start: float = 0.1
    """ε in the first episode (probability of a uniformly random action)."""
    epsilon_end: float = 0.01
    """Floor of the decaying schedules (ignored by ``constant``)."""
    epsilon_decay: float = 0.99
    """Per-episode factor of the ``exponential`` schedule, in (0, 1]."""
    initial_q: float = 0.0
    """Q_0, the initial value of every table entry (AUDIT E9: the worked example needs Q_0 = 0)."""

    def __post_init__(self) -> None:
        checks = {  # field: (whether its value is valid, what is expected)
            "alpha": (0.0 < self.alpha <= 1.0, "a number in (0, 1]"),
            "alpha_power": (0.0 <= self.alpha_power <= 1.0, "a number in [0, 1]"),
            "gamma": (0.0 <= self.gamma <= 1.0, "a number in [0, 1]"),
            "epsilon_schedule": (self.epsilon_schedule in ("constant", "exponential", "inverse"),
                                 "one of 'constant', 'exponential', 'inverse'"),
            "epsilon_start": (0.0 <= self.epsilon_start <= 1.0, "a number in [0, 1]"),
            "epsilon_end": (0.0 <= self.epsilon_end <= 1.0, "a number in [0, 1]"),
            "epsilon_decay": (0.0 < self.epsilon_decay <= 1.0, "a number in (0, 1]"),
            "initial_q": (math.isfinite(self.initial_q), "a finite number"),
        }
        problems = [f"{name}={describe(getattr(self, name))}; expected {expected}"
                    for name, (ok, expected) in checks.items() if not ok]
        if problems:
            raise invalid_fields("TabularConfig", problems)

    def epsilon_at(self, episode: int) -> float:
        """ε_k after ``episode`` = k finished episodes."""
        if self.epsilon_schedule == "constant":
            return self.epsilon_start
        if self.epsilon_schedule == "exponential":
            return max(self.epsilon_end, self.epsilon_start * self.epsilon_decay**episode)
        return max(self.epsilon_end, self.epsilon_start / (episode + 1))


class TabularAgent(Policy):
    """Shared machinery of the tabular TD agents: the Q table, ε-greedy acting, checkpointing.

    Subclasses define the bootstrap value :meth:`_next_value` of the target.
    """

    name = "tabular"
    #: SARSA's target needs the next action, so the training loop must choose it before updating
    on_policy: bool = False

    def __init__(
        self,
        n_states: int,
        n_actions: int,
        config: TabularConfig | None = None,
        seed: int | None = None,
        **overrides: Any,
    ):
        super().__init__()
        for label, n in (("n_states", n_states), ("n_actions", n_actions)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise invalid(label, n, "an int in [1, inf)")
        base = config if config is not None else TabularConfig()
        self.config = TabularConfig(**{**asdict(base), **overrides}) if overrides else base
        self.n_states = int(n_states)
        self.n_actions = int(n_actions)
        self.q = np.full((self.n_states, self.n_actions), self.config.initial_q, dtype=float)
        self.visits = np.zeros((self.n_states, self.n_actions), dtype=np.int64)
        self.episode = 0
        #: act ε-greedily when True, greedily when False (set False to evaluate the learned policy)
        self.explore = True
        self.seed(seed)

    @classmethod
    def for_env(cls, env: Any, config: TabularConfig | None = None, seed: int | None = None, **overrides: Any) -> Any:
        """An agent sized by ``env``'s ``Discrete`` observation and action spaces."""
        n_states = _discrete_size(env.observation_space, "observation")
        n_actions = _discrete_size(env.action_space, "action")
        return cls(n_states, n_actions, config, seed, **overrides)

    # ------------------------------------------------------------------ acting
    @property
    def epsilon(self) -> float:
        """The exploration rate of the current episode."""
        return self.config.epsilon_at(self.episode)

    def greedy_action(self, state: int) -> int:
        """argmax_a Q(state, a), ties broken at random."""
        return random_argmax(self.q[self._check_state(state)], self.rng)

    def act(self, observation: Any) -> int:
        """ε-greedy: a uniformly random action with probability ε, else :meth:`greedy_action`."""
        state = self._check_state(observation)
        if self.explore and self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.n_actions))
        return random_argmax(self.q[state], self.rng)

    def end_episode(self) -> None:
        """Advance the ε schedule by one episode."""
        self.episode += 1

    # ------------------------------------------------------------------ learning
    def _next_value(self, next_state: int, next_action: int | None) -> float:
        raise NotImplementedError

    def update(  # type: ignore[override]
        self,
        state: int,
        action: int,
        reward: float,
        next_state: int,
        terminated: bool,
        truncated: bool = False,
        next_action: int | None = None,
    ) -> dict[str, float]:
        """One TD update of Q(state, action); returns the TD error δ, the target and the step size.

        ``terminated`` stops bootstrapping; ``truncated`` does not (AUDIT E10), so a truncated
        transition is updated like any other one.
        """
        s = self._check_state(state)
        a = self._check_action(action)
        r = float(reward)
        if not math.isfinite(r):
            raise invalid("reward", reward, "a finite number")
        if terminated:
            target = r
        else:
            target = r + self.config.gamma * self._next_value(self._check_state(next_state, "next_state"), next_action)
        self.visits[s, a] += 1
        step = self.config.alpha
        if self.config.alpha_power > 0.0:
            step /= float(self.visits[s, a]) ** self.config.alpha_power
        td_error = target - self.q[s, a]
        self.q[s, a] += step * td_error
        return {"td_error": float(td_error), "target": float(target), "alpha": step}

    # ------------------------------------------------------------------ checks and checkpoints
    def _check_state(self, state: Any, name: str = "state") -> int:
        if isinstance(state, (int, np.integer)) and not isinstance(state, (bool, np.bool_)) and 0 <= state < self.n_states:
            return int(state)
        if isinstance(state, np.ndarray) and state.shape == () and np.issubdtype(state.dtype, np.integer):
            return self._check_state(int(state), name)
        raise invalid(name, state, f"an int in [0, {self.n_states - 1}]",
                      why="tabular agents need a Discrete state: wrap the simulator in recrl_lite.envs.DiscretiseObservation")

    def _check_action(self, action: Any, name: str = "action") -> int:
        if isinstance(action, (int, np.integer)) and not isinstance(action, (bool, np.bool_)) and 0 <= action < self.n_actions:
            return int(action)
        raise invalid(name, action, f"an int in [0, {self.n_actions - 1}]")

    def state_dict(self) -> dict[str, Any]:
        return {"q": self.q.copy(), "visits": self.visits.copy(), "episode": self.episode}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        owner, table = type(self).__name__, "the (n_states, n_actions) of this agent"
        q = checkpoint_array(owner, "q", state["q"], self.q.shape, table)
        # counts are integers >= 0: a negative one would make alpha / n^omega negative or complex
        visits = checkpoint_array(owner, "visits", state["visits"], self.visits.shape, table, integer=True, low=0)
        episode = state["episode"]
        if isinstance(episode, np.ndarray) and episode.shape == () and episode.dtype.kind in "iu":
            episode = episode.item()  # saved as a 0-d tensor
        # a negative count would run the epsilon schedule backwards
        episode = check_int(f"{owner} checkpoint entry 'episode'", episode, 0)
        self.q, self.visits, self.episode = q, visits, episode

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_states={self.n_states}, n_actions={self.n_actions}, config={self.config})"


class QLearningAgent(TabularAgent):
    r"""Tabular Q-learning: target :math:`R + \gamma (1 - \text{terminated}) \max_{a'} Q(S', a')`.

    Watkins (1989); Watkins & Dayan (1992); Sutton & Barto (2018), §6.5, eq. 6.8. Off-policy: it
    learns :math:`q_*` while behaving ε-greedily, and converges to :math:`q_*` when every (s, a) is
    visited infinitely often with Robbins–Monro step sizes (``alpha_power`` in (0.5, 1]).
    Introduced in chapter 3 of the book.
    """

    name = "Q-learning"
    on_policy = False

    def _next_value(self, next_state: int, next_action: int | None) -> float:
        return float(self.q[next_state].max())


class SarsaAgent(TabularAgent):
    r"""Tabular SARSA: target :math:`R + \gamma (1 - \text{terminated}) Q(S', A')`, with :math:`A'`
    the action actually taken next.

    Rummery & Niranjan (1994); Sutton & Barto (2018), §6.4, eq. 6.7. On-policy: it evaluates and
    improves the ε-greedy policy it follows, which is why on the cliff it prefers the safe path
    (S&B Example 6.6). Introduced in chapter 3 of the book.
    """

    name = "SARSA"
    on_policy = True

    def _next_value(self, next_state: int, next_action: int | None) -> float:
        if next_action is None:
            raise invalid("next_action", next_action, f"an int in [0, {self.n_actions - 1}]",
                          why="SARSA bootstraps from Q(s', a'): pass next_action unless the transition terminated")
        return float(self.q[next_state, self._check_action(next_action, "next_action")])


def _discrete_size(space: Any, label: str) -> int:
    n = getattr(space, "n", None)
    if n is None or getattr(space, "shape", None) != () or int(getattr(space, "start", 0)) != 0:
        raise invalid(f"env.{label}_space", space, "a Discrete space starting at 0",
                      why="tabular agents keep one table entry per state and action")
    return int(n)


def train_tabular(
    agent: TabularAgent,
    env: Any,
    n_episodes: int,
    seed: int | None = None,
    progress: bool = False,
    max_episode_steps: int | None = 100_000,
) -> pd.DataFrame:
    """Train ``agent`` for ``n_episodes`` on a gymnasium ``env`` with ``Discrete`` spaces.

    One row per episode: ``episode, return, length, terminated, truncated, epsilon``. ``seed``
    (if not None) seeds the agent and the first ``env.reset``. SARSA's next action is chosen *before* its update
    (the target needs it) and is then executed; Q-learning chooses after its update. An episode
    ends on ``terminated`` (no bootstrap) or ``truncated`` (bootstrap); ``max_episode_steps``
    truncates episodes of envs without a time limit, so the loop always stops (AUDIT E10).
    """
    if not isinstance(n_episodes, (int, np.integer)) or n_episodes < 0:
        raise invalid("n_episodes", n_episodes, "an int in [0, inf)")
    if max_episode_steps is not None and max_episode_steps < 1:
        raise invalid("max_episode_steps", max_episode_steps, "an int in [1, inf) or None")
    for label, space, n in (("observation", env.observation_space, agent.n_states), ("action", env.action_space, agent.n_actions)):
        size = _discrete_size(space, label)
        if size != n:
            raise invalid(f"env.{label}_space size", size, f"{n}", why="the size of the agent's Q table")
    if seed is not None:
        agent.seed(seed)
    rows: list[dict[str, Any]] = []
    for episode in tqdm(range(n_episodes), desc=agent.name, disable=not progress, mininterval=1.0):
        state, _ = env.reset(seed=seed if episode == 0 else None)
        epsilon = agent.epsilon
        action = agent.act(state)
        total, length = 0.0, 0
        terminated = truncated = False
        while True:
            next_state, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            length += 1
            if max_episode_steps is not None and length >= max_episode_steps:
                truncated = True
            next_action = None
            if agent.on_policy and not terminated:
                next_action = agent.act(next_state)
            agent.update(state, action, reward, next_state, terminated, truncated, next_action=next_action)
            if terminated or truncated:
                break
            state = next_state
            action = next_action if next_action is not None else agent.act(next_state)
        agent.end_episode()
        rows.append({
            "episode": episode,
            "return": total,
            "length": length,
            "terminated": bool(terminated),
            "truncated": bool(truncated and not terminated),
            "epsilon": epsilon,
        })
    return pd.DataFrame(rows, columns=["episode", "return", "length", "terminated", "truncated", "epsilon"])
