"""Wrappers around the simulator. Chapter 3 uses :class:`DiscretiseObservation` for tabular agents."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class DiscretiseObservation(gym.ObservationWrapper[int, Any, np.ndarray]):
    """Map the flat observation to a small ``Discrete`` state for tabular Q-learning and SARSA.

    The state is (category of the last recommendation or "none", whether it was clicked, number of
    ignored recommendations so far capped at ``skip_buckets - 1``). The skip count is the visible
    proxy for the hidden patience, which is why it is in the state.

    Observation Space: ``Discrete((n_categories + 1) * 2 * skip_buckets)``.
    """

    def __init__(self, env: gym.Env[np.ndarray, Any], skip_buckets: int = 4):
        super().__init__(env)
        if skip_buckets < 1:
            raise ValueError(f"skip_buckets must be >= 1, got {skip_buckets}")
        base = env.unwrapped
        self.skip_buckets = skip_buckets
        self._layout = base.layout  # type: ignore[attr-defined]
        self._category = base.catalogue.category  # type: ignore[attr-defined]
        self._horizon = base.config.horizon  # type: ignore[attr-defined]
        self.n_categories = base.config.n_categories  # type: ignore[attr-defined]
        self.observation_space = spaces.Discrete((self.n_categories + 1) * 2 * skip_buckets)

    def observation(self, observation: np.ndarray) -> int:
        lay = self._layout
        last_item = int(observation[lay.recent_items.stop - 1])
        last_category = int(self._category[last_item]) + 1 if last_item >= 0 else 0
        last_click = int(observation[lay.recent_clicks.stop - 1] > 0.5)
        skips = min(int(round(float(observation[lay.skips]) * self._horizon)), self.skip_buckets - 1)
        return (last_category * 2 + last_click) * self.skip_buckets + skips
