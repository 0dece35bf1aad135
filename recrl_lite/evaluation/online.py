"""Online evaluation: roll a policy out on the simulator for N users x S seeds (chapter 1 onwards).

Every policy comparison in the book goes through :func:`evaluate_policy` and :func:`summarize`, so
all chapters report the same metrics the same way: the mean over seeds of each seed's mean, with a
95% t-interval across seeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from recrl_lite.agents.base import Policy, unwrap
from recrl_lite.errors import check_int, invalid, invalid_type
from recrl_lite.evaluation.metrics import catalogue_coverage, category_diversity
from recrl_lite.evaluation.stats import mean_ci

SESSION_METRICS = ("return", "clicks", "ctr", "purchases", "revenue", "length", "diversity")
"""Per-session columns of :func:`evaluate_policy`; ``summarize`` adds catalogue ``coverage``."""


def evaluate_policy(
    policy: Policy,
    env: Any,
    n_users: int = 300,
    seeds: Iterable[int] = range(5),
    progress: bool = False,
    users: tuple[Any, Any] | None = None,
) -> pd.DataFrame:
    """Run ``policy`` for ``n_users`` sessions per seed; one row per session.

    Seed ``s`` fixes both the users (``env.reset(seed=...)`` from a ``SeedSequence(s)``) and the
    policy's own generator, so two policies evaluated with the same seeds meet the same users.
    Columns: ``seed, session`` and :data:`SESSION_METRICS`, plus ``terminated`` and the shown
    ``items``.

    ``users=(profiles, user_indices)`` replays *logged* users instead of drawing new ones (chapter 5):
    seed ``s`` draws ``n_users`` of them without replacement (``default_rng(s)``), and a
    :class:`~recrl_lite.agents.RecommenderPolicy` is told whose session it is, so models that know
    users only by their row (MF, popularity) meet the same people as the agents. The frame then
    also has a ``user_index`` column.
    """
    base = unwrap(env)
    bound = getattr(policy, "env", None)
    if bound is not None and bound is not base:
        raise invalid("policy", policy, "a policy bound to the env being evaluated",
                      why="it reads ground truth from another env instance than the one evaluated")
    n_users = check_int("n_users", n_users, 1)
    seeds = _check_seeds(seeds)
    if users is not None:
        profiles, user_indices = list(users[0]), np.asarray(users[1])
        if len(profiles) != len(user_indices) or user_indices.ndim != 1:
            raise invalid("users", users, "(profiles, user_indices) of equal length, with 1-D user_indices",
                          why=f"got {len(profiles)} profiles and user_indices of shape {user_indices.shape}")
        if n_users > len(profiles):
            raise invalid("n_users", n_users, f"an int in [1, {len(profiles)}]",
                          why=f"only {len(profiles)} logged users to replay")
    category = base.catalogue.category
    n_categories = base.config.n_categories
    rows: list[dict[str, Any]] = []
    with tqdm(total=n_users * len(seeds), desc=policy.name, disable=not progress, mininterval=1.0) as bar:
        for seed in seeds:
            policy.seed(seed)
            user_seeds = np.random.SeedSequence(seed).generate_state(n_users)
            picked = (np.random.default_rng(seed).choice(len(profiles), n_users, replace=False)
                      if users is not None else None)
            for session in range(n_users):
                if picked is None:
                    obs, _ = env.reset(seed=int(user_seeds[session]))
                else:
                    row = int(picked[session])
                    obs, _ = env.reset(seed=int(user_seeds[session]), options={"user": profiles[row]})
                    start = getattr(policy, "start_session", None)
                    if callable(start):
                        start(int(user_indices[row]))
                total = 0.0
                clicks = purchases = 0
                revenue = 0.0
                items: list[int] = []
                terminated = truncated = False
                while not (terminated or truncated):
                    action = policy.act(obs)
                    obs, reward, terminated, truncated, info = env.step(action)
                    total += reward
                    clicks += info["click"]
                    purchases += info["purchase"]
                    revenue += info["revenue"]
                    items.extend(info["slate"])
                length = len(items) // base.config.slate_size
                rows.append({
                    "seed": seed,
                    "session": session,
                    "return": total,
                    "clicks": clicks,
                    "ctr": clicks / length,
                    "purchases": purchases,
                    "revenue": revenue,
                    "length": length,
                    "diversity": category_diversity(category[items], n_categories),
                    "terminated": terminated,
                    "items": items,
                    **({} if picked is None else {"user_index": int(user_indices[int(picked[session])])}),
                })
                bar.update()
    return pd.DataFrame(rows)


def _check_seeds(seeds: Iterable[int]) -> list[int]:
    """A non-empty list of distinct integer seeds >= 0 (a repeated seed would merge two runs into one).

    Negative seeds are refused here because ``np.random.SeedSequence`` refuses them without naming ``seeds``.
    """
    if isinstance(seeds, (str, bytes)):  # iterable, but of characters
        raise invalid_type("seeds", seeds, "an iterable of ints >= 0, such as range(5)")
    try:
        values = list(seeds)
    except TypeError:  # an int or None: not iterable
        raise invalid_type("seeds", seeds, "an iterable of ints >= 0, such as range(5)") from None
    if not values:
        raise invalid("seeds", values, "at least one seed")
    if any(isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) for s in values):
        raise invalid("seeds", values, "integers")
    negative = [int(s) for s in values if s < 0]
    if negative:
        raise invalid("seeds", values, "integers >= 0", why=f"{negative[:5]} negative; np.random.SeedSequence needs >= 0")
    repeated = sorted({int(s) for s in values if values.count(s) > 1})
    if repeated:
        raise invalid("seeds", values, "distinct seeds",
                      why=f"{repeated} repeated; each seed is one independent run")
    return [int(s) for s in values]


def summarize(sessions: pd.DataFrame, n_items: int) -> pd.DataFrame:
    """Mean and 95% CI half-width across seeds of each metric's per-seed mean.

    Also computes per-seed catalogue ``coverage`` (the fraction of items shown at least once).
    Returns a frame indexed by metric with columns ``mean`` and ``ci95``.
    """
    required = ["seed", "items", *SESSION_METRICS]
    missing = [c for c in required if c not in sessions.columns]
    if missing:
        raise invalid("sessions columns", list(sessions.columns), f"the columns {required}",
                      why=f"missing {missing}; pass the output of evaluate_policy")
    per_seed = sessions.groupby("seed")[list(SESSION_METRICS)].mean()
    per_seed["coverage"] = sessions.groupby("seed")["items"].apply(lambda s: catalogue_coverage(s.tolist(), n_items))
    stats = {metric: mean_ci(per_seed[metric]) for metric in per_seed.columns}
    return pd.DataFrame.from_dict(stats, orient="index", columns=["mean", "ci95"])


def compare_policies(
    policies: Mapping[str, Policy],
    env: Any,
    n_users: int = 300,
    seeds: Iterable[int] = range(5),
    metrics: Iterable[str] = ("return", "clicks", "ctr", "length", "coverage", "diversity"),
    progress: bool = False,
) -> pd.DataFrame:
    """Evaluate several policies on the same users; one row per policy.

    Columns are ``(metric, "mean")`` and ``(metric, "ci95")`` pairs.
    """
    n_users = check_int("n_users", n_users, 1)
    seeds = _check_seeds(seeds)
    metrics = list(metrics)
    known = (*SESSION_METRICS, "coverage")
    unknown = [m for m in metrics if m not in known]
    if unknown or not metrics:
        raise invalid("metrics", metrics, f"some of {list(known)}",
                      why=f"unknown {unknown}" if unknown else "none given")
    n_items = unwrap(env).config.n_items
    table = {}
    for name, policy in policies.items():
        summary = summarize(evaluate_policy(policy, env, n_users, seeds, progress), n_items)
        table[name] = summary.loc[metrics].stack()
    return pd.DataFrame(table).T


def session_returns_in_lockstep(policy: Any, envs: list[Any], seed: int) -> np.ndarray:
    """Undiscounted return of one session in each of ``envs``, all stepped together.

    One ``policy.act_batch`` call per step serves every live session, which is much faster than
    :func:`evaluate_policy` for a torch policy. The users are those of :func:`evaluate_policy` with
    the same ``seed`` (``SeedSequence(seed)``), and the policy is reseeded with ``seed``.
    """
    if not hasattr(policy, "act_batch"):
        raise invalid("policy", policy, "a policy with act_batch",
                      why="use evaluate_policy for one-at-a-time policies")
    if not envs:
        raise invalid("envs", envs, "at least one env")
    policy.seed(seed)
    user_seeds = np.random.SeedSequence(seed).generate_state(len(envs))
    obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(envs, user_seeds)])
    returns = np.zeros(len(envs))
    live = np.arange(len(envs))
    while live.size:
        actions = policy.act_batch(obs[live])
        still = []
        for i, action in zip(live.tolist(), np.asarray(actions).tolist()):
            obs[i], reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += float(reward)
            if not (terminated or truncated):
                still.append(i)
        live = np.array(still, dtype=int)
    return returns


class LearningCurve:
    """A training callback: the agent's *evaluation* return every ``every`` env steps (chapter 3).

    Training curves of ε-greedy or sampled returns mix learning with exploration; this records what
    the policy would earn if it were deployed at that point: ``n_users`` held-out users of
    evaluation seed ``seed`` (the same users at every checkpoint), each mode in ``modes``:

    - ``"greedy"``: ε = 0 for DQN, the argmax of the softmax for REINFORCE;
    - ``"sampled"``: REINFORCE's softmax policy as trained.

    The training loops call ``curve(agent, env_steps)`` after every step or iteration; it evaluates
    when a checkpoint is due and then restores the agent's exploration settings and random
    generator, so training continues exactly as it would have without it. ``seconds`` accumulates
    the time spent evaluating, which the training loops leave out of their time budgets.
    """

    MODES = ("greedy", "sampled")

    def __init__(self, make_env: Callable[[], Any], n_users: int = 50, seed: int = 0, every: int = 5_000,
                 modes: Iterable[str] = ("greedy",)):
        n_users = check_int("n_users", n_users, 1)
        if every < 1:
            raise invalid("every", every, "an int in [1, inf)")
        self.modes = tuple(modes)
        unknown = [m for m in self.modes if m not in self.MODES]
        if unknown or not self.modes:
            raise invalid("modes", list(self.modes), f"one or more of {list(self.MODES)}",
                          why=f"unknown {unknown}" if unknown else "none given")
        self.envs = [make_env() for _ in range(n_users)]
        self.seed, self.every = seed, every
        self.next_checkpoint = 0
        self.rows: list[dict[str, Any]] = []
        self.seconds = 0.0

    def __call__(self, agent: Any, env_steps: int) -> None:
        if env_steps < self.next_checkpoint:
            return
        start = time.process_time()
        saved_rng = agent.rng
        saved = {name: getattr(agent, name) for name in ("epsilon", "deterministic") if hasattr(agent, name)}
        for mode in self.modes:
            if mode == "sampled" and "deterministic" not in saved:
                raise invalid("agent", agent, "an agent with a 'deterministic' attribute for mode 'sampled'",
                              why="it has no sampled mode")
            if "epsilon" in saved:
                agent.epsilon = 0.0
            if "deterministic" in saved:
                agent.deterministic = mode == "greedy"
            returns = session_returns_in_lockstep(agent, self.envs, self.seed)
            self.rows.append({"env_steps": int(env_steps), "mode": mode, "return": float(returns.mean())})
        for name, value in saved.items():
            setattr(agent, name, value)
        agent.rng = saved_rng  # evaluation reseeded the agent: training must not notice
        while self.next_checkpoint <= env_steps:
            self.next_checkpoint += self.every
        self.seconds += time.process_time() - start

    @property
    def frame(self) -> pd.DataFrame:
        """One row per checkpoint and mode: ``env_steps, mode, return``."""
        return pd.DataFrame(self.rows, columns=["env_steps", "mode", "return"])
