"""Simulator speed and reference-policy returns.

Prints single-env steps/s through ``gymnasium.make`` (default wrappers) with a random policy, next
to CartPole-v1 measured in the same run; the time to generate the 10,000-user dataset; and the
session return of each reference policy (5 seeds x 300 users, mean and 95% CI).

    python benchmarks/bench_env.py            # writes benchmarks/results/env.json too
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import recrl_lite
from recrl_lite.agents import LongHorizonReference, MyopicOracle, PopularityPolicy, RandomPolicy
from recrl_lite.data import generate_dataset
from recrl_lite.evaluation import compare_policies


def steps_per_second(env_id: str, n_steps: int = 200_000, repeats: int = 3) -> float:
    """Best of ``repeats`` runs of ``n_steps`` random-action steps, resets included."""
    env = gym.make(env_id)
    actions = np.random.default_rng(0).integers(0, env.action_space.n, n_steps).tolist()
    best = 0.0
    for r in range(repeats):
        env.reset(seed=r)
        start = time.perf_counter()
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        best = max(best, n_steps / (time.perf_counter() - start))
    return best


def main() -> dict:
    results: dict = {"python": platform.python_version(), "gymnasium": gym.__version__}
    # interleave the two envs so that both see the same machine load
    ours, cartpole = [], []
    for _ in range(2):
        ours.append(steps_per_second(recrl_lite.ENV_ID))
        cartpole.append(steps_per_second("CartPole-v1"))
    results["steps_per_s"] = {"recrl_lite/ECommerce-v0": max(ours), "CartPole-v1": max(cartpole)}
    print(f"steps/s through gymnasium.make, random policy: ECommerce-v0 {max(ours):,.0f}   CartPole-v1 {max(cartpole):,.0f}")

    start = time.perf_counter()
    dataset = generate_dataset(n_users=10_000, seed=0)
    seconds = time.perf_counter() - start
    results["generate_dataset_10k_users_s"] = seconds
    results["interactions_10k_users"] = len(dataset.interactions)
    print(f"generate_dataset(10,000 users): {seconds:.2f} s, {len(dataset.interactions):,} interactions")

    env = gym.make(recrl_lite.ENV_ID)
    policies = {
        "random": RandomPolicy(env.action_space.n),
        "popularity": PopularityPolicy.from_interactions(dataset.interactions, dataset.items, env),
        "myopic oracle": MyopicOracle(env),
        "long-horizon reference": LongHorizonReference(env),
    }
    table = compare_policies(policies, env, n_users=300, seeds=range(5), metrics=("return", "length", "ctr"))
    print("\nsession return (clicks), 5 seeds x 300 users, mean ± 95% CI")
    results["returns"] = {}
    for name in policies:
        mean, ci = table.loc[name, ("return", "mean")], table.loc[name, ("return", "ci95")]
        length = table.loc[name, ("length", "mean")]
        results["returns"][name] = {"mean": mean, "ci95": ci, "length": length}
        print(f"  {name:24s} {mean:6.2f} ± {ci:4.2f}   (session length {length:5.1f})")
    return results


if __name__ == "__main__":
    out = main()
    path = Path(__file__).parent / "results" / "env.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {path}")
