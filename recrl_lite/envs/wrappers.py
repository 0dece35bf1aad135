"""Wrappers around the simulator. Chapter 3 uses :class:`DiscretiseObservation` for tabular agents."""

from __future__ import annotations

import dataclasses
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
        self.observation_space = spaces.Discrete((self.n_categories + 1) * 2 * skip_buckets)  # type: ignore[assignment]

    def observation(self, observation: np.ndarray) -> int:
        lay = self._layout
        last_item = int(observation[lay.recent_items.stop - 1])
        last_category = int(self._category[last_item]) + 1 if last_item >= 0 else 0
        last_click = int(observation[lay.recent_clicks.stop - 1] > 0.5)
        skips = min(int(round(float(observation[lay.skips]) * self._horizon)), self.skip_buckets - 1)
        return (last_category * 2 + last_click) * self.skip_buckets + skips


class MaskObservation(gym.ObservationWrapper[np.ndarray, Any, np.ndarray]):
    """Hide named parts of the simulator's observation, for state-design ablations (chapter 3).

    Each part in ``hide`` is a field of :class:`~recrl_lite.envs.ObservationLayout` (``"age"``,
    ``"exposure"``, ``"skips"``, ...) or ``"user"`` (age, gender and location). Its entries are replaced by their lower bound on every step,
    so they carry no information, while the observation keeps its shape and space and an agent
    built for the full observation runs unchanged.
    """

    def __init__(self, env: gym.Env[np.ndarray, Any], hide: tuple[str, ...] | list[str]):
        super().__init__(env)
        layout = env.unwrapped.layout  # type: ignore[attr-defined]
        fields = [f.name for f in dataclasses.fields(layout) if f.name != "size"] + ["user"]
        unknown = [part for part in hide if part not in fields]
        if unknown or not hide:
            raise ValueError(f"hide must name parts of the observation among {fields}, got {list(hide)!r}")
        self.hidden = tuple(hide)
        low = np.asarray(env.observation_space.low, dtype=np.float32)  # type: ignore[attr-defined]
        self._keep = np.ones_like(low)
        self._fill = np.zeros_like(low)
        for part in hide:
            where = getattr(layout, part)
            self._keep[where] = 0.0
            self._fill[where] = low[where]

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation * self._keep + self._fill
