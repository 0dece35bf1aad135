r"""Serving: turn any scorer into a top-K recommender, with explicit exploration (chapter 5.4).

The article's serving code (AUDIT E16) emits one ε-greedy action per candidate, so it returns
``len(items)`` possibly repeated indices rather than a ranking. A recommender serves a *list*: score
every item for the user's state, drop what the user has already consumed, and return the ``k``
best distinct items. When it explores, it must say with what probability it showed each item, so
that its logs can be evaluated off-policy later (chapter 5.4, :mod:`recrl_lite.evaluation.ope`).

Exploration is sequential sampling without replacement. Slot :math:`j` draws from the items not yet
shown or consumed, :math:`R_j`:

* ``"epsilon"``: the best remaining item with probability :math:`1-\varepsilon`, otherwise one drawn
  uniformly from :math:`R_j`, so :math:`p_j(i) = (1-\varepsilon)\,\mathbb 1[i = \arg\max_{R_j} s]
  + \varepsilon / |R_j|`;
* ``"softmax"``: :math:`p_j(i) = e^{s_i/\tau} / \sum_{i' \in R_j} e^{s_{i'}/\tau}` (a Plackett–Luce
  ranking).

``propensities[:, j]`` is :math:`p_j` of the item in slot :math:`j` given the slots above it; the
probability of the whole list is their product. Slot 0's propensity is what single-item OPE uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from recrl_lite.agents.base import Policy, unwrap
from recrl_lite.errors import check_choice, check_columns, check_finite, invalid

ScoreFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Exploration:
    """How :meth:`Recommender.recommend` explores; ``None`` there means the plain top-k."""

    kind: Literal["epsilon", "softmax"] = "epsilon"
    """``"epsilon"``: each slot is a uniformly random remaining item with probability ``epsilon``;
    ``"softmax"``: each slot is drawn from the softmax of the remaining scores at ``temperature``."""
    epsilon: float = 0.1
    """Exploration probability per slot (``"epsilon"`` only)."""
    temperature: float = 1.0
    """Softmax temperature τ (``"softmax"`` only); scores are divided by it."""

    def __post_init__(self) -> None:
        check_choice("Exploration.kind", self.kind, ("epsilon", "softmax"))
        if not 0.0 <= self.epsilon <= 1.0:
            raise invalid("Exploration.epsilon", self.epsilon, "a number in [0, 1]")
        if not (np.isfinite(self.temperature) and self.temperature > 0.0):
            raise invalid("Exploration.temperature", self.temperature, "a finite number in (0, inf)")


@dataclass(frozen=True)
class Recommendations:
    """The served lists for a batch of users: arrays of shape (n_users, k), rank 0 first."""

    items: np.ndarray
    """Item indices (the env's action ids), distinct within each row."""
    scores: np.ndarray
    """The scorer's score of each served item."""
    propensities: np.ndarray
    """Probability that slot j shows its item, given the slots above it (1 or 0 without exploration)."""
    item_ids: np.ndarray | None = None
    """Public item ids, when the recommender knows the items table."""

    @property
    def list_propensity(self) -> np.ndarray:
        """Probability of each whole ranked list: the product over its slots."""
        return np.prod(self.propensities, axis=1)

    def to_frame(self) -> pd.DataFrame:
        """One row per (user row, rank)."""
        n, k = self.items.shape
        frame = pd.DataFrame({"row": np.repeat(np.arange(n), k), "rank": np.tile(np.arange(k), n),
                              "item": self.items.ravel(), "score": self.scores.ravel(),
                              "propensity": self.propensities.ravel()})
        if self.item_ids is not None:
            frame.insert(3, "item_id", self.item_ids.ravel())
        return frame


def policy_scores(policy: Any) -> ScoreFn:
    """A batch scoring function ``observations (B, d) -> scores (B, n_items)`` for a trained agent.

    Q-values for DQN (``q_values``), log-probabilities for the off-policy REINFORCE agent
    (``policy_probabilities``), policy logits for REINFORCE (``logits`` or ``_logits``), or the
    callable itself.
    """
    if hasattr(policy, "q_values"):
        return _named(lambda obs: np.asarray(policy.q_values(obs), dtype=np.float64), policy)
    if hasattr(policy, "policy_probabilities"):   # off-policy REINFORCE: log π ranks as the logits do
        return _named(lambda obs: np.log(np.maximum(np.asarray(policy.policy_probabilities(obs), dtype=np.float64),
                                                    1e-300)), policy)
    for name in ("logits", "_logits"):
        method = getattr(policy, name, None)
        if callable(method):
            def score(obs: np.ndarray, method: Callable[[np.ndarray], Any] = method) -> np.ndarray:
                out = method(obs)
                if isinstance(out, torch.Tensor):
                    out = out.detach().cpu().numpy()
                return np.asarray(out, dtype=np.float64)
            return _named(score, policy)
    if callable(policy):
        return _named(lambda obs: np.asarray(policy(obs), dtype=np.float64), policy)
    raise invalid("policy", policy, "an agent with a q_values, policy_probabilities or logits method, or a callable",
                  why=f"cannot score items with {type(policy).__name__}")


class Recommender:
    """Serve top-k lists from a scorer, for states or for known users (chapter 5.4).

    ``score_fn`` maps a batch of observations to one score per item. ``layout`` (the env's
    :class:`~recrl_lite.envs.ecommerce.ObservationLayout`) lets it read the recent items out of a
    state and build the first state of a known user. ``users`` (a users table: ``user_id``, ``age``,
    ``gender``, ``location``) and ``interactions`` (with ``user_id``, ``item_id``, ``click``) let it
    serve a user id, excluding the items that user already clicked; ``item_ids`` (the items table's
    ids in action order) adds public ids to the output.
    """

    def __init__(self, score_fn: ScoreFn, n_items: int, layout: Any, *, users: pd.DataFrame | None = None,
                 interactions: pd.DataFrame | None = None, item_ids: Sequence[int] | np.ndarray | None = None):
        if not isinstance(n_items, (int, np.integer)) or isinstance(n_items, bool) or n_items < 1:
            raise invalid("n_items", n_items, "an int in [1, inf)")
        self.score_fn, self.n_items, self.layout = score_fn, int(n_items), layout
        self.item_ids = None if item_ids is None else np.asarray(item_ids)
        if self.item_ids is not None and self.item_ids.shape != (self.n_items,):
            raise invalid("item_ids shape", self.item_ids.shape, f"({self.n_items},), one id per item")
        self._user_rows: dict[Any, int] = {}
        self._user_features = np.zeros((0, layout.user.stop - layout.user.start))
        self._consumed: dict[Any, np.ndarray] = {}
        if users is not None:
            self._index_users(users, interactions)

    @classmethod
    def from_policy(cls, policy: Any, env: Any, dataset: Any = None) -> Recommender:
        """A recommender for a trained agent on ``env``; with a :class:`~recrl_lite.data.Dataset`, it
        also serves the dataset's user ids and excludes what each user clicked in the log."""
        base = unwrap(env)
        kwargs: dict[str, Any] = {}
        if dataset is not None:
            kwargs = {"users": dataset.users, "interactions": dataset.interactions,
                      "item_ids": np.sort(dataset.items["item_id"].to_numpy())}
        return cls(policy_scores(policy), base.config.n_items, base.layout, **kwargs)

    def _index_users(self, users: pd.DataFrame, interactions: pd.DataFrame | None) -> None:
        from recrl_lite.envs.ecommerce import GENDERS, LOCATIONS, UserProfile

        check_columns("users table", users.columns, ("user_id", "age", "gender", "location"))
        self._user_rows = {uid: row for row, uid in enumerate(users["user_id"].tolist())}
        if len(self._user_rows) != len(users):
            repeated = users["user_id"][users["user_id"].duplicated()].unique().tolist()
            raise invalid("users table user_id", users["user_id"], "distinct ids", why=f"repeated: {repeated}")
        feats = []
        for age, gender, location in zip(users["age"], users["gender"], users["location"]):
            if gender not in GENDERS or location not in LOCATIONS:
                raise invalid("users table (gender, location)", (gender, location),
                              f"a gender in {GENDERS} and a location in {LOCATIONS}")
            feats.append(UserProfile(int(age), gender, location, np.zeros(1)).features())
        self._user_features = np.asarray(feats, dtype=np.float32).reshape(len(users), -1)
        if interactions is not None:
            check_columns("interactions table", interactions.columns, ("user_id", "item_id", "click"))
            clicked = interactions[interactions["click"] == 1]
            action_of = ({int(i): a for a, i in enumerate(self.item_ids.tolist())} if self.item_ids is not None else None)
            for uid, group in clicked.groupby("user_id"):
                ids = group["item_id"].to_numpy()
                actions = np.array([action_of[int(i)] for i in ids]) if action_of is not None else ids
                self._consumed[uid] = np.unique(actions)

    # ------------------------------------------------------------------------------------- inputs
    def state_of_user(self, user_id: Any) -> np.ndarray:
        """The first state of a session for a known user: their features and an empty history."""
        if user_id not in self._user_rows:
            known = "no users table was given" if not self._user_rows else f"{len(self._user_rows)} users are known"
            raise invalid("user_id", user_id, "a known user id", why=f"{known}; pass a state vector for a new user")
        obs = np.zeros(self.layout.size, dtype=np.float32)
        obs[self.layout.user] = self._user_features[self._user_rows[user_id]]
        obs[self.layout.recent_items] = -1.0
        return obs

    def _states(self, user_or_state: Any) -> tuple[np.ndarray, list[np.ndarray]]:
        """(observations (B, d), consumed items per row) for a user id, a list of ids, a state or a batch."""
        if isinstance(user_or_state, np.ndarray) and user_or_state.dtype.kind == "f":
            obs = np.atleast_2d(user_or_state)
            if obs.ndim != 2 or obs.shape[1] != self.layout.size:
                raise invalid("state shape", user_or_state.shape, f"({self.layout.size},) or (batch, {self.layout.size})")
            check_finite("state", user_or_state)
            recent = obs[:, self.layout.recent_items]
            clicked = obs[:, self.layout.recent_clicks] > 0.5
            consumed = [np.unique(r[c & (r >= 0)].astype(np.int64)) for r, c in zip(recent, clicked)]
            return obs.astype(np.float32), consumed
        ids = list(user_or_state) if isinstance(user_or_state, (list, tuple, np.ndarray)) else [user_or_state]
        if not ids:
            raise invalid("user_or_state", user_or_state, "a user id, a state or a non-empty list of ids")
        obs = np.stack([self.state_of_user(u) for u in ids])
        return obs, [self._consumed.get(u, np.zeros(0, dtype=np.int64)) for u in ids]

    def scores_and_allowed(self, user_or_state: Any, exclude: Iterable[Iterable[int]] | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
        """Scores of every item (B, n_items) and the mask of the items each row may still be shown."""
        obs, consumed = self._states(user_or_state)
        if exclude is not None:
            extra = [self._excluded_items(row, e) for row, e in enumerate(exclude)]
            if len(extra) != len(consumed):
                raise invalid("exclude length", len(extra), f"{len(consumed)}, one list per row")
            consumed = [np.union1d(c, e) for c, e in zip(consumed, extra)]
        scores = np.asarray(self.score_fn(obs), dtype=np.float64)
        if scores.shape != (obs.shape[0], self.n_items):
            raise invalid("score_fn output shape", scores.shape, f"({obs.shape[0]}, {self.n_items}), a score per item")
        if not np.isfinite(scores).all():  # NaN never ranks: argsort would serve the lowest item ids
            bad_rows = np.flatnonzero(~np.isfinite(scores).all(axis=1))
            raise invalid(f"score_fn {_scorer_name(self.score_fn)} output", scores, "finite scores",
                          why=f"{int((~np.isfinite(scores)).sum())} NaN or inf scores, in rows {bad_rows[:10].tolist()}")
        allowed = np.ones_like(scores, dtype=bool)
        for row, items in enumerate(consumed):
            if items.size and (items.min() < 0 or items.max() >= self.n_items):
                raise invalid(f"consumed/excluded items of row {row}", items.tolist(),
                              f"item indices in [0, {self.n_items - 1}]")
            allowed[row, items] = False
        return scores, allowed

    def _excluded_items(self, row: int, items: Iterable[int]) -> np.ndarray:
        """Row ``row`` of ``exclude`` as int64 item indices, never cast (1.5 would silently exclude item 1);
        the range is checked with the consumed items."""
        name, expected = f"exclude[{row}]", f"integer item indices in [0, {self.n_items - 1}]"
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise invalid(name, items, f"an iterable of {expected}")
        values = list(items)
        for value in values:
            if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
                raise invalid(name, values, expected, why=f"{value!r} (type {type(value).__name__}) is not an integer")
        return np.asarray(values, dtype=np.int64)

    # ------------------------------------------------------------------------------------- serving
    def recommend(self, user_or_state: Any, k: int, *, exclude: Iterable[Iterable[int]] | None = None,
                  exploration: Exploration | None = None, rng: np.random.Generator | None = None) -> Recommendations:
        """The top-``k`` distinct unconsumed items for a user id, a list of ids, a state or a batch of states.

        ``exclude`` adds items to drop, one iterable per row. With ``exploration``, lists are sampled
        (see the module docstring) with ``rng`` and the propensities say how likely each slot was.
        Raises ``ValueError`` for k outside [1, n_items], fewer than k items left after exclusion,
        an unknown user or a state of the wrong shape.
        """
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= self.n_items:
            raise invalid("k", k, f"an int in [1, n_items] = [1, {self.n_items}]")
        scores, allowed = self.scores_and_allowed(user_or_state, exclude)
        left = allowed.sum(axis=1)
        if (left < k).any():
            row = int(np.argmax(left < k))
            raise invalid("k", k, f"at most {int(left[row])}, the unconsumed items left in row {row}")
        if exploration is None:
            masked = np.where(allowed, scores, -np.inf)
            # stable sort on -score: ties go to the lower item id, the same on every machine
            items = np.argsort(-masked, axis=1, kind="stable")[:, :k]
            props = np.ones(items.shape)
        else:
            if rng is None:
                raise invalid("rng", rng, "a numpy Generator to explore", why="so that served lists are reproducible")
            items, props = _sample_lists(scores, allowed, k, exploration, rng)
        picked = np.take_along_axis(scores, items, axis=1)
        ids = None if self.item_ids is None else self.item_ids[items]
        return Recommendations(items.astype(np.int64), picked, props, ids)


def _named(score: ScoreFn, policy: Any) -> ScoreFn:
    """``score``, named after the policy it scores with, so that errors about its scores say which."""
    setattr(score, "__qualname__", f"policy_scores({getattr(policy, '__qualname__', type(policy).__name__)})")
    return score


def _scorer_name(score_fn: Any) -> str:
    """The policy or function behind ``score_fn``, for error messages."""
    policy = getattr(score_fn, "__self__", None)  # a bound method: its object
    if policy is not None:
        return f"{type(policy).__name__}.{getattr(score_fn, '__name__', '')}"
    return str(getattr(score_fn, "__qualname__", type(score_fn).__name__))


def slot_probabilities(scores: np.ndarray, allowed: np.ndarray, how: Exploration | None) -> np.ndarray:
    """The distribution of one slot over the allowed items (module docstring); ``None``: the argmax."""
    if how is None or how.kind == "epsilon":
        epsilon = 0.0 if how is None else how.epsilon
        best = np.argmax(np.where(allowed, scores, -np.inf), axis=1)
        p = allowed / allowed.sum(axis=1, keepdims=True) * epsilon
        p[np.arange(len(p)), best] += 1.0 - epsilon
        return p
    z = np.where(allowed, scores / how.temperature, -np.inf)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _sample_lists(scores: np.ndarray, allowed: np.ndarray, k: int, how: Exploration,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sequential sampling without replacement, all rows at once; returns items and conditional propensities."""
    n = scores.shape[0]
    allowed = allowed.copy()
    items = np.zeros((n, k), dtype=np.int64)
    props = np.zeros((n, k))
    rows = np.arange(n)
    for slot in range(k):
        p = slot_probabilities(scores, allowed, how)
        # inverse-CDF draw per row (vectorised); clip guards the last bin against rounding
        u = np.asarray(rng.random(n))[:, None]
        choice = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), scores.shape[1] - 1)
        # rounding could land on a zero-probability item: move to the last allowed one
        bad = ~allowed[rows, choice]
        if bad.any():
            choice[bad] = np.array([np.flatnonzero(allowed[r])[-1] for r in np.flatnonzero(bad)])
        items[:, slot], props[:, slot] = choice, p[rows, choice]
        allowed[rows, choice] = False
    return items, props


class ServingPolicy(Policy):
    """A :class:`~recrl_lite.agents.base.Policy` that acts by serving slot 0 of ``recommender``'s list.

    With ``exploration`` it records ``last_propensity`` after each ``act``, which
    :func:`recrl_lite.data.log_transitions` writes into the log: the logs of a deployed, exploring
    recommender that chapter 5.4 evaluates off-policy.
    """

    def __init__(self, recommender: Recommender, exploration: Exploration | None = None, name: str = "served"):
        super().__init__()
        self.recommender, self.exploration, self.name = recommender, exploration, name
        self.last_propensity = float("nan")

    def act(self, observation: np.ndarray) -> int:
        served = self.recommender.recommend(np.asarray(observation, dtype=np.float32), 1,
                                            exploration=self.exploration, rng=self.rng)
        self.last_propensity = float(served.propensities[0, 0])
        return int(served.items[0, 0])

    def action_probabilities(self, observations: np.ndarray) -> np.ndarray:
        """π(a|s) for every item (rows sum to 1), as OPE needs for a target policy."""
        scores, allowed = self.recommender.scores_and_allowed(np.asarray(observations, dtype=np.float32))
        return slot_probabilities(scores, allowed, self.exploration)
