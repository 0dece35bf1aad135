"""Online evaluation: roll a policy out on the simulator for N users x S seeds (chapter 1 onwards).

Every policy comparison in the book goes through :func:`evaluate_policy` and :func:`summarize`, so
all chapters report the same metrics the same way: the mean over seeds of each seed's mean, with a
95% t-interval across seeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from recrl_lite.agents.base import Policy, unwrap
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
) -> pd.DataFrame:
    """Run ``policy`` for ``n_users`` sessions per seed; one row per session.

    Seed ``s`` fixes both the users (``env.reset(seed=...)`` from a ``SeedSequence(s)``) and the
    policy's own generator, so two policies evaluated with the same seeds meet the same users.
    Columns: ``seed, session`` and :data:`SESSION_METRICS`, plus ``terminated`` and the shown
    ``items``.
    """
    base = unwrap(env)
    bound = getattr(policy, "env", None)
    if bound is not None and bound is not base:
        raise ValueError(f"{policy!r} reads ground truth from another env instance than the one evaluated")
    if n_users < 1:
        raise ValueError(f"n_users must be >= 1, got {n_users}")
    seeds = list(seeds)
    category = base.catalogue.category
    n_categories = base.config.n_categories
    rows: list[dict[str, Any]] = []
    with tqdm(total=n_users * len(seeds), desc=policy.name, disable=not progress, mininterval=1.0) as bar:
        for seed in seeds:
            policy.seed(seed)
            user_seeds = np.random.SeedSequence(seed).generate_state(n_users)
            for session in range(n_users):
                obs, _ = env.reset(seed=int(user_seeds[session]))
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
                })
                bar.update()
    return pd.DataFrame(rows)


def summarize(sessions: pd.DataFrame, n_items: int) -> pd.DataFrame:
    """Mean and 95% CI half-width across seeds of each metric's per-seed mean.

    Also computes per-seed catalogue ``coverage`` (the fraction of items shown at least once).
    Returns a frame indexed by metric with columns ``mean`` and ``ci95``.
    """
    missing = [c for c in ("seed", "items", *SESSION_METRICS) if c not in sessions.columns]
    if missing:
        raise ValueError(f"sessions frame lacks columns {missing}; pass the output of evaluate_policy")
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
    seeds = list(seeds)
    metrics = list(metrics)
    n_items = unwrap(env).config.n_items
    table = {}
    for name, policy in policies.items():
        summary = summarize(evaluate_policy(policy, env, n_users, seeds, progress), n_items)
        table[name] = summary.loc[metrics].stack()
    return pd.DataFrame(table).T
