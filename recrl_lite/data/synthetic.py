"""The dataset the article assumes but never ships, logged from the simulator (chapter 2).

:func:`generate_dataset` lets a known stochastic behaviour policy
(:class:`~recrl_lite.agents.baselines.SoftmaxBehaviourPolicy`) recommend to simulated users and
records what happened, with the probability the policy gave each recommendation. Because the data
come from the simulator, every offline estimate made on them can be checked against the truth.

:func:`log_transitions` keeps what the tables leave out, for models of the agent's state (chapter
3 onwards): the full observation before each recommendation, the item, the reward, the logging
policy's propensity and, for checking only, the true click probability.

Tables (see :data:`recrl_lite.data.schema.SCHEMAS`):

- ``users``: ``user_id, age, gender, location``
- ``items``: ``item_id, category, price, title`` (ascending ``item_id`` = env action index; ``title`` is
  synthetic text written from the item's hidden attributes, :mod:`recrl_lite.data.titles`, chapter 6)
- ``interactions``: ``user_id, item_id, timestamp, position, click, purchase, propensity``,
  sorted by ``timestamp``
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from recrl_lite.agents.base import Policy, unwrap
from recrl_lite.agents.baselines import SoftmaxBehaviourPolicy
from recrl_lite.data.schema import check_references, read_table
from recrl_lite.data.titles import generate_item_texts
from recrl_lite.envs.ecommerce import ECommerceConfig, ECommerceEnv, UserProfile, sample_users
from recrl_lite.errors import invalid

TABLES = ("users", "items", "interactions")


@dataclass
class Dataset:
    """The three tables of a logged dataset, and the simulator's truth about its users.

    ``profiles`` holds the hidden profile (preferences, patience, price sensitivity) of each row
    of ``users``, in that order, so that the simulator can replay a logged user
    (``env.reset(options={"user": profile})``, chapter 2). Only :func:`generate_dataset` knows
    them; a dataset read from files (:func:`load_dataset`) has ``profiles=None``, like any real log.
    """

    users: pd.DataFrame
    items: pd.DataFrame
    interactions: pd.DataFrame
    profiles: list[UserProfile] | None = None

    def to_csv(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``users.csv``, ``items.csv`` and ``interactions.csv`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in TABLES:
            getattr(self, name).to_csv(directory / f"{name}.csv", index=False)
        return directory


def load_dataset(directory: str | os.PathLike[str]) -> Dataset:
    """Read and validate the three CSV files written by :meth:`Dataset.to_csv`.

    Raises :class:`~recrl_lite.data.schema.SchemaError` naming the file, column and rows of any
    missing column, wrong dtype, NaN, unknown id or out-of-range value (e.g. a propensity outside (0, 1]).
    """
    directory = Path(directory)
    users, items, interactions = (read_table(directory / f"{name}.csv", name) for name in TABLES)
    check_references(interactions, users, items, source=str(directory / "interactions.csv"))
    return Dataset(users, items, interactions)


def generate_dataset(
    n_users: int = 10_000,
    config: ECommerceConfig | None = None,
    seed: int = 0,
    temperature: float = 1.0,
    epsilon: float = 0.1,
    n_days: int = 28,
    sessions_per_user: float = 2.0,
    progress: bool = False,
) -> Dataset:
    """Log the sessions of ``n_users`` users served by the softmax behaviour policy.

    Each user returns for 1 + Poisson(``sessions_per_user`` - 1) sessions (same preferences and
    traits each time), so that collaborative filtering has a history to work with. Sessions start
    at uniformly random times over ``n_days``; recommendations within a session are 20 s plus an
    exponential(40 s) apart, so a cut-off time gives a temporal train/test split.
    """
    config = config or ECommerceConfig()
    if config.slate_size != 1:
        raise invalid("config.slate_size", config.slate_size, "1", why="generate_dataset logs single recommendations")
    if n_users < 1:
        raise invalid("n_users", n_users, "an int in [1, inf)")
    if sessions_per_user < 1:
        raise invalid("sessions_per_user", sessions_per_user, "a number in [1, inf)")
    rng = np.random.default_rng(seed)
    env = ECommerceEnv(config)
    catalogue = env.catalogue
    behaviour = SoftmaxBehaviourPolicy(env, temperature=temperature, epsilon=epsilon, seed=seed)
    profiles = sample_users(n_users, rng, config, catalogue)
    user_ids = np.sort(rng.choice(np.arange(100_000, 1_000_000), n_users, replace=False))
    rng.shuffle(user_ids)
    session_user = np.repeat(np.arange(n_users), 1 + rng.poisson(sessions_per_user - 1.0, n_users))
    n_sessions = session_user.size
    starts = rng.integers(0, n_days * 86_400, n_sessions)
    gaps = np.cumsum(20 + rng.exponential(40.0, (n_sessions, config.horizon)).astype(np.int64), axis=1)
    env_seeds = np.random.SeedSequence(seed).generate_state(n_sessions)
    item_ids = catalogue.item_id.tolist()

    log_user, log_item, log_time, log_click, log_buy, log_prop = [], [], [], [], [], []
    for k in tqdm(range(n_sessions), desc="logging sessions", disable=not progress, mininterval=1.0):
        user = int(session_user[k])
        obs, _ = env.reset(seed=int(env_seeds[k]), options={"user": profiles[user]})
        times = (starts[k] + gaps[k]).tolist()
        uid = int(user_ids[user])
        t = 0
        done = False
        while not done:
            action = behaviour.act(obs)
            obs, _, terminated, truncated, info = env.step(action)
            log_user.append(uid)
            log_item.append(item_ids[action])
            log_time.append(times[t])
            log_click.append(int(info["click"]))
            log_buy.append(int(info["purchase"]))
            log_prop.append(behaviour.last_propensity)
            t += 1
            done = terminated or truncated

    users = pd.DataFrame({
        "user_id": user_ids.astype(np.int64),
        "age": np.array([p.age for p in profiles], dtype=np.int64),
        "gender": pd.Series([p.gender for p in profiles], dtype="str"),
        "location": pd.Series([p.location for p in profiles], dtype="str"),
    })
    items = pd.DataFrame({
        "item_id": catalogue.item_id.astype(np.int64),
        "category": pd.Series([catalogue.category_names[c] for c in catalogue.category], dtype="str"),
        "price": catalogue.price.astype(np.float64),
        "title": pd.Series(generate_item_texts(catalogue, seed=config.catalogue_seed)["title"].tolist(), dtype="str"),
    })
    interactions = pd.DataFrame({
        "user_id": np.array(log_user, dtype=np.int64),
        "item_id": np.array(log_item, dtype=np.int64),
        "timestamp": np.array(log_time, dtype=np.int64),
        "position": np.zeros(len(log_user), dtype=np.int64),
        "click": np.array(log_click, dtype=np.int64),
        "purchase": np.array(log_buy, dtype=np.int64),
        "propensity": np.array(log_prop, dtype=np.float64),
    })
    interactions = interactions.sort_values(["timestamp", "user_id"], kind="stable", ignore_index=True)
    return Dataset(users, items, interactions, profiles=profiles)


@dataclass
class Transitions:
    """Logged simulator steps, one row per recommendation, in the order they happened.

    ``session`` numbers the sessions from 0, so a split by session keeps whole sessions apart.
    ``propensity`` is the logging policy's probability of the logged item (NaN if the policy does
    not report one), and ``true_click_probability`` is the simulator's ground truth, which no real
    log has: use it only to check models.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    clicks: np.ndarray
    propensities: np.ndarray
    true_click_probability: np.ndarray
    next_observations: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    session: np.ndarray
    true_click_probabilities: np.ndarray | None = None
    """The click probability of *every* item at each logged step, shape (n, n_items), when logged
    with ``record_truth=True`` (chapter 5 checks off-policy estimates against it); else None."""

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def split(self, train_fraction: float = 0.8) -> tuple[Transitions, Transitions]:
        """The first ``train_fraction`` of the sessions and the rest (a split in time)."""
        if not 0.0 < train_fraction < 1.0:
            raise invalid("train_fraction", train_fraction, "a number in (0, 1)")
        cut = int(train_fraction * (int(self.session.max()) + 1))
        train = self.session < cut
        if train.all() or not train.any():
            raise invalid("train_fraction", train_fraction,
                          "a fraction that leaves sessions on both sides of the split",
                          why=f"{int(self.session.max()) + 1} sessions are too few to split there")
        def pick(mask: np.ndarray) -> Transitions:
            fields: dict[str, Any] = {k: None if v is None else v[mask] for k, v in vars(self).items()}
            return Transitions(**fields)

        return pick(train), pick(~train)


def log_transitions(env: Any, policy: Policy, n_steps: int, seed: int = 0, record_truth: bool = False) -> Transitions:
    """Run ``policy`` on ``env`` for whole sessions until at least ``n_steps`` steps are logged.

    ``record_truth=True`` also keeps the ground-truth click probability of every item at every step
    (``Transitions.true_click_probabilities``), which no real log has.

    ``seed`` fixes the users and the policy's generator. The propensity is read from the policy's ``last_propensity`` after each
    ``act`` (as :class:`~recrl_lite.agents.baselines.SoftmaxBehaviourPolicy` reports it), or is NaN.
    """
    if n_steps < 1:
        raise invalid("n_steps", n_steps, "an int in [1, inf)")
    base = unwrap(env)
    if base.config.slate_size != 1:
        raise invalid("env.config.slate_size", base.config.slate_size, "1",
                      why="log_transitions logs single recommendations")
    policy.seed(seed)
    user_rng = np.random.default_rng([seed, 1])  # a stream distinct from the policy's default_rng(seed)
    columns: dict[str, list[Any]] = {name: [] for name in Transitions.__dataclass_fields__
                                     if name != "true_click_probabilities"}
    all_probabilities: list[np.ndarray] = []
    session = 0
    while len(columns["actions"]) < n_steps:
        obs, _ = env.reset(seed=int(user_rng.integers(2**63)))
        done = False
        while not done:
            action = policy.act(obs)
            probabilities = base.click_probabilities()
            p_click = float(probabilities[action])
            if record_truth:
                all_probabilities.append(np.array(probabilities, dtype=np.float64))
            propensity = float(getattr(policy, "last_propensity", float("nan")))
            next_obs, reward, terminated, truncated, info = env.step(action)
            for name, value in (("observations", obs), ("actions", action), ("rewards", reward),
                                ("clicks", int(info["click"])), ("propensities", propensity),
                                ("true_click_probability", p_click), ("next_observations", next_obs),
                                ("terminated", terminated), ("truncated", truncated), ("session", session)):
                columns[name].append(value)
            obs, done = next_obs, terminated or truncated
        session += 1
    dtypes = {"actions": np.int64, "clicks": np.int64, "session": np.int64, "terminated": bool, "truncated": bool,
              "observations": np.float32, "next_observations": np.float32}
    truth = np.stack(all_probabilities) if record_truth else None
    return Transitions(**{name: np.asarray(values, dtype=dtypes.get(name, np.float64)) for name, values in columns.items()},
                       true_click_probabilities=truth)
