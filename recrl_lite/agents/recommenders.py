"""Classic recommenders deployed in the simulator, so that offline metrics meet online truth (chapter 2).

A model of :mod:`recrl_lite.models.classic` is fitted on a logged dataset and knows its users by
their row index in the click matrix. To serve one of them online, the simulator must replay *that*
user: :func:`logged_user_profiles` recovers the hidden profiles behind a dataset made by
:func:`recrl_lite.data.generate_dataset` (which keeps them, the simulator's truth), and :func:`replay_users` runs a policy on those users
through ``env.reset(options={"user": profile})``, telling a :class:`RecommenderPolicy` whose session
it is before the first step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recrl_lite.agents.base import Policy, unwrap
from recrl_lite.envs.ecommerce import ECommerceConfig, UserProfile
from recrl_lite.errors import invalid, invalid_type
from recrl_lite.models.classic import Recommender

if TYPE_CHECKING:  # recrl_lite.data imports recrl_lite.agents, so only for the annotations
    from recrl_lite.data.preprocessing import IdIndex
    from recrl_lite.data.synthetic import Dataset

__all__ = ["RecommenderPolicy", "logged_user_profiles", "replay_users"]


class RecommenderPolicy(Policy):
    """Serve a fitted classic recommender: the top-scoring item not among the recently shown ones.

    ``start_session(user_index)`` scores every item for that user once, from what the model learned
    in training (``model.score``); the session does not change the scores. ``act`` then returns the
    best-ranked item that is not in the observation's ``recent_items``, so the policy cycles through
    the user's top ``history_length + 1`` items instead of repeating one item into fatigue. Items the
    user clicked in training are *not* excluded: online, a repeat click counts.

    The policy reads only the observation and the user's identity, never the simulator's ground
    truth, so it is not bound to one env instance. Introduced in chapter 2.
    """

    def __init__(self, model: Recommender, env: Any, name: str | None = None):
        super().__init__()
        if not isinstance(model, Recommender):
            raise invalid_type("model", model, "a fitted recrl_lite.models Recommender")
        if model.n_users_ is None or model.n_items_ is None:
            raise invalid("model", model, "a fitted Recommender",
                          why=f"this {type(model).__name__} is not fitted; call fit() on the logged click matrix first")
        base = unwrap(env)
        config = getattr(base, "config", None)
        if not isinstance(config, ECommerceConfig):
            raise invalid_type("env", base, "an ECommerceEnv (or a wrapper of one)")
        if config.slate_size != 1:
            raise invalid("env slate_size", config.slate_size, "1", why="RecommenderPolicy recommends one item per step")
        if model.n_items_ != config.n_items:
            raise invalid("model n_items_", model.n_items_, f"{config.n_items}, the env's n_items",
                          why="fit it on a dataset logged from this env's catalogue")
        self.model = model
        self.name = name if name is not None else model.name
        self._recent = base.layout.recent_items
        self._obs_size = base.layout.size
        self.user_index: int | None = None
        self._ranking: list[int] = []

    def start_session(self, user_index: int) -> None:
        """Begin serving the user in row ``user_index`` of the model's click matrix."""
        if isinstance(user_index, (bool, np.bool_)) or not isinstance(user_index, (int, np.integer)):
            raise invalid_type("user_index", user_index, "an int row of the click matrix")
        n_users = self.model.n_users_
        assert n_users is not None  # checked in __init__
        if not 0 <= user_index < n_users:
            raise invalid("user_index", user_index, f"an int in [0, {n_users - 1}]",
                          why=f"the model was fitted on {n_users} users; a cold user has no row to score")
        scores = self.model.score([int(user_index)])[0]
        keep = self._recent.stop - self._recent.start + 1  # enough to skip every recent item
        self._ranking = np.argsort(-scores, kind="stable")[:keep].tolist()
        self.user_index = int(user_index)

    def act(self, observation: np.ndarray) -> int:
        if self.user_index is None:
            raise RuntimeError(f"{self.name}: call start_session(user_index) before act(), so the model knows "
                               "whose session it is (replay_users does this)")
        obs = np.asarray(observation)
        if obs.shape != (self._obs_size,):
            raise invalid("observation shape", obs.shape, f"({self._obs_size},), this env's observation")
        recent = set(obs[self._recent].astype(int).tolist())
        for item in self._ranking:
            if item not in recent:
                return item
        raise AssertionError("unreachable: the ranking holds one more item than the history")


def logged_user_profiles(dataset: Dataset, user_index: IdIndex | None = None) -> list[UserProfile]:
    """The hidden profiles of a dataset's users, so that the simulator can replay them.

    They come from ``dataset.profiles``, which :func:`~recrl_lite.data.generate_dataset` keeps, in
    the order of ``dataset.users`` or, with ``user_index`` (the :class:`~recrl_lite.data.IdIndex`
    of :func:`~recrl_lite.data.prepare`), in index order, so that profile ``k`` belongs to row ``k``
    of the click matrix. Raises ``ValueError`` for a dataset without profiles (read from files, as
    a real log would be), or with profiles that do not match its users table.
    """
    profiles, users = dataset.profiles, dataset.users
    if profiles is None:
        raise invalid("dataset.profiles", profiles, "the hidden profiles of a generated dataset",
                      why="this dataset was read from files, like a real log: only a dataset made by "
                      "generate_dataset can be replayed in the simulator")
    if len(profiles) != len(users) or any(
            (p.age, p.gender, p.location) != (a, g, loc)
            for p, a, g, loc in zip(profiles, users["age"], users["gender"], users["location"])):
        raise invalid("dataset.profiles", profiles, "one profile per row of dataset.users, with its age, gender "
                      "and location", why="they do not match dataset.users: edited tables?")
    if user_index is None:
        return list(profiles)
    if len(user_index) != len(users):
        raise invalid("user_index length", len(user_index), f"{len(users)}, the dataset's number of users")
    ordered: list[UserProfile | None] = [None] * len(users)
    for row, profile in zip(user_index.index_of(users["user_id"]).tolist(), profiles):
        ordered[row] = profile
    return [p for p in ordered if p is not None]


def replay_users(
    policy: Policy,
    env: Any,
    profiles: Sequence[UserProfile],
    user_indices: Sequence[int] | np.ndarray,
    seed: int = 0,
) -> pd.DataFrame:
    """One session for each given user, with ``env.reset(options={"user": profiles[k]})``.

    ``user_indices[k]`` is the click-matrix row of ``profiles[k]``; a :class:`RecommenderPolicy` is
    told it with ``start_session`` before the session's first step, other policies ignore it. ``seed``
    fixes the sessions' randomness (a ``SeedSequence``, one state per session) and the policy's own
    generator, so two policies replayed with the same seed meet the same users and the same
    uniforms. Returns one row per session: ``user_index, return, length, clicks, ctr, clickbait``
    (the share of recommendations that were clickbait) and ``terminated``.
    """
    base = unwrap(env)
    bound = getattr(policy, "env", None)
    if bound is not None and bound is not base:
        raise invalid("policy", policy, "a policy of the replayed env",
                      why="it reads ground truth from another env instance than the one replayed")
    indices = np.asarray(user_indices)
    if indices.ndim != 1 or (indices.size and not np.issubdtype(indices.dtype, np.integer)):
        raise invalid("user_indices", indices, "a 1-D sequence of integers")
    if len(profiles) != indices.size:
        raise invalid("profiles length", len(profiles), f"{indices.size}, one profile per user index")
    if indices.size == 0:
        raise invalid("user_indices", user_indices, "at least one user")
    bad = [row for row, p in enumerate(profiles) if not isinstance(p, UserProfile)]
    if bad:
        raise invalid_type(f"profiles[{bad[0]}]", profiles[bad[0]], "a UserProfile")
    is_clickbait = base.catalogue.is_clickbait
    policy.seed(seed)
    session_seeds = np.random.SeedSequence(seed).generate_state(indices.size)
    rows = []
    for profile, user, session_seed in zip(profiles, indices.tolist(), session_seeds.tolist()):
        obs, _ = env.reset(seed=int(session_seed), options={"user": profile})
        if isinstance(policy, RecommenderPolicy):
            policy.start_session(user)
        total, clicks, bait, length = 0.0, 0, 0, 0
        terminated = truncated = False
        while not (terminated or truncated):
            action = policy.act(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            total += reward
            clicks += int(info["click"])
            bait += int(is_clickbait[info["slate"]].sum())
            length += 1
        rows.append({"user_index": user, "return": total, "length": length, "clicks": clicks,
                     "ctr": clicks / length, "clickbait": bait / (length * base.config.slate_size),
                     "terminated": terminated})
    return pd.DataFrame(rows)
