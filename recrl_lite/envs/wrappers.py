"""Wrappers around the simulator. Chapter 3 uses :class:`DiscretiseObservation` for tabular agents."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from recrl_lite.errors import invalid


class DiscretiseObservation(gym.ObservationWrapper[int, Any, np.ndarray]):
    """Map the flat observation to a small ``Discrete`` state for tabular Q-learning and SARSA.

    The state is (category of the last recommendation or "none", whether it was clicked, number of
    ignored recommendations so far capped at ``skip_buckets - 1``). The skip count is the visible
    proxy for the hidden patience, which is why it is in the state. ``user_parts`` adds who the
    user is: any of ``"gender"`` (2 values), ``"location"`` (5) and ``"age"`` (``age_buckets``
    equal-width bands of 18-70), which multiplies the number of states (chapter 3 measures whether
    the richer state helps at a given budget).

    Observation Space: ``Discrete((n_categories + 1) * 2 * skip_buckets * user_states)``.
    """

    USER_PARTS = ("gender", "location", "age")

    def __init__(self, env: gym.Env[np.ndarray, Any], skip_buckets: int = 4,
                 user_parts: tuple[str, ...] = (), age_buckets: int = 3):
        super().__init__(env)
        if not isinstance(skip_buckets, int) or skip_buckets < 1:
            raise invalid("skip_buckets", skip_buckets, "an int >= 1")
        if not isinstance(age_buckets, int) or age_buckets < 1:
            raise invalid("age_buckets", age_buckets, "an int >= 1")
        unknown = [p for p in user_parts if p not in self.USER_PARTS]
        if unknown or len(set(user_parts)) != len(user_parts):
            raise invalid("user_parts", user_parts, f"distinct names among {self.USER_PARTS}")
        base = env.unwrapped
        self.skip_buckets = skip_buckets
        self._layout = base.layout  # type: ignore[attr-defined]
        self._category = base.catalogue.category  # type: ignore[attr-defined]
        self._horizon = base.config.horizon  # type: ignore[attr-defined]
        self.n_categories = base.config.n_categories  # type: ignore[attr-defined]
        self.user_parts, self.age_buckets = tuple(user_parts), age_buckets
        sizes = {"gender": self._layout.gender.stop - self._layout.gender.start,
                 "location": self._layout.location.stop - self._layout.location.start, "age": age_buckets}
        self._user_sizes = [sizes[p] for p in self.user_parts]
        self.n_user_states = int(np.prod(self._user_sizes, dtype=np.int64))
        self.n_session_states = (self.n_categories + 1) * 2 * skip_buckets
        self.observation_space = spaces.Discrete(self.n_session_states * self.n_user_states)  # type: ignore[assignment]

    def _user_state(self, observation: np.ndarray) -> int:
        lay, state = self._layout, 0
        for part, size in zip(self.user_parts, self._user_sizes):
            if part == "age":  # the observation holds (age - 18) / 52 in [0, 1]
                value = min(int(float(observation[lay.age.start]) * self.age_buckets), self.age_buckets - 1)
            else:
                value = int(np.argmax(observation[getattr(lay, part)]))
            state = state * size + value
        return state

    def observation(self, observation: np.ndarray) -> int:
        lay = self._layout
        last_item = int(observation[lay.recent_items.stop - 1])
        last_category = int(self._category[last_item]) + 1 if last_item >= 0 else 0
        last_click = int(observation[lay.recent_clicks.stop - 1] > 0.5)
        skips = min(int(round(float(observation[lay.skips]) * self._horizon)), self.skip_buckets - 1)
        session = (last_category * 2 + last_click) * self.skip_buckets + skips
        return self._user_state(observation) * self.n_session_states + session if self.user_parts else session


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
            raise invalid("hide", hide, f"one or more names of parts of the observation, among {fields}")
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
