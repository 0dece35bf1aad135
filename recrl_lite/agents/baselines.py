"""Reference policies of chapters 1 and 2: random, popularity, the myopic oracle, the long-horizon
reference, and the stochastic behaviour policy that logs the dataset.

The two oracles and the behaviour policy are *privileged*: they read the simulator's true click
probabilities through ``env.unwrapped``. No learned agent sees those; the oracles mark what a
perfect click model could do, myopically or with a look-ahead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recrl_lite.agents.base import Policy, unwrap
from recrl_lite.errors import invalid


class RandomPolicy(Policy):
    """Recommend a uniformly random item."""

    name = "random"

    def __init__(self, n_items: int, seed: int | None = None):
        super().__init__()
        self.n_items = n_items
        self.seed(seed)

    def act(self, observation: np.ndarray) -> int:
        return int(self.rng.integers(self.n_items))


class PopularityPolicy(Policy):
    """Recommend the most-clicked item in the logs that the user was not shown recently.

    Skipping the items in the observation's recent history keeps it from repeating one item into
    fatigue; everything it uses is observable.
    """

    name = "popularity"

    def __init__(self, item_scores: np.ndarray, env: Any):
        super().__init__()
        base = unwrap(env)
        scores = np.asarray(item_scores, dtype=float)
        if scores.shape != (base.config.n_items,):
            raise invalid("item_scores shape", scores.shape, f"({base.config.n_items},)",
                          why="one score per item of the env")
        self.item_scores = scores
        self._ranking = np.argsort(-scores, kind="stable")
        self._recent = base.layout.recent_items

    @classmethod
    def from_interactions(cls, interactions: pd.DataFrame, items: pd.DataFrame, env: Any) -> PopularityPolicy:
        """Count clicks per item in logged ``interactions``; ``items`` fixes the item-id order."""
        index = pd.Index(np.sort(items["item_id"].to_numpy()))
        clicked = interactions.loc[interactions["click"].astype(bool), "item_id"]
        counts = clicked.value_counts().reindex(index, fill_value=0).to_numpy()
        return cls(counts, env)

    def act(self, observation: np.ndarray) -> int:
        recent = set(observation[self._recent].astype(int).tolist())
        for item in self._ranking[: len(recent) + 1].tolist():
            if item not in recent:
                return int(item)
        raise AssertionError("unreachable: the ranking has more items than the history")

    def state_dict(self) -> dict[str, Any]:
        return {"item_scores": self.item_scores}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        scores = np.asarray(state["item_scores"], dtype=float)
        if scores.shape != self.item_scores.shape:
            raise invalid(f"{type(self).__name__} checkpoint entry 'item_scores' shape", scores.shape,
                          f"{self.item_scores.shape}", why="one score per item of the env")
        self.item_scores = scores
        self._ranking = np.argsort(-scores, kind="stable")


class MyopicOracle(Policy):
    """Recommend the item with the highest *true* immediate expected reward (click probability).

    The best any bandit, or any perfectly calibrated CTR model, can do one step at a time.
    """

    name = "myopic oracle"

    def __init__(self, env: Any):
        super().__init__()
        self.env = unwrap(env)

    def act(self, observation: np.ndarray) -> int:
        return int(np.argmax(self.env.expected_immediate_reward()))


class LongHorizonReference(Policy):
    r"""Recommend :math:`\arg\max_i \; E[r_i] + \kappa \, E[\Delta\text{patience}_i]`, with the true model.

    A one-step look-ahead that prices a unit of patience at ``kappa`` units of reward: patience is
    what buys future steps. With ``kappa=None`` the price is one average click's worth of reward
    for this user (1 under the click reward). It is a strong reference, not the optimum.
    """

    name = "long-horizon reference"

    def __init__(self, env: Any, kappa: float | None = None):
        super().__init__()
        self.env = unwrap(env)
        self.kappa = kappa

    def act(self, observation: np.ndarray) -> int:
        env = self.env
        reward = env.expected_immediate_reward()
        if self.kappa is not None:
            kappa = self.kappa
        elif env.config.reward == "click":
            kappa = 1.0
        else:
            kappa = float(np.mean(reward / np.maximum(env.click_probabilities(), 1e-12)))
        return int(np.argmax(reward + kappa * env.expected_patience_change()))


class SoftmaxBehaviourPolicy(Policy):
    r"""The logging policy of the dataset: :math:`\pi_b(a|s) = (1-\varepsilon)\,\mathrm{softmax}(v(s)/\tau)_a + \varepsilon/n`.

    It plays a production recommender that knows click utilities :math:`v(s)` imperfectly
    (temperature ``tau``) and explores uniformly with rate ``epsilon``, so every item keeps a
    propensity of at least :math:`\varepsilon / n` (needed by off-policy evaluation).
    """

    name = "behaviour (softmax)"

    def __init__(self, env: Any, temperature: float = 1.0, epsilon: float = 0.1, seed: int | None = None):
        super().__init__()
        if temperature <= 0:
            raise invalid("temperature", temperature, "a number > 0")
        if not 0 < epsilon <= 1:
            raise invalid("epsilon", epsilon, "a number in (0, 1]",
                          why="every item keeps a propensity of at least epsilon / n")
        self.env = unwrap(env)
        self.temperature = temperature
        self.epsilon = epsilon
        self.last_propensity = float("nan")
        self.seed(seed)

    def probabilities(self) -> np.ndarray:
        """π_b(·|s) in the env's current state."""
        z = self.env.click_utilities() / self.temperature
        p = np.exp(z - z.max())
        p *= (1.0 - self.epsilon) / p.sum()
        p += self.epsilon / p.shape[0]
        return p

    def act(self, observation: np.ndarray) -> int:
        p = self.probabilities()
        action = min(int(np.searchsorted(np.cumsum(p), self.rng.random(), side="right")), p.shape[0] - 1)
        self.last_propensity = float(p[action])
        return action
