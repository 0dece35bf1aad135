"""Learning quality of the book's deep agents on a CPU budget, next to stable-baselines3.

For each of 5 training seeds:

- our REINFORCE (value baseline) trains for 120 s of wall time;
- our DQN (10-step, Double) trains for a fixed 500,000 env steps;
- stable-baselines3 DQN (same settings: 10-step returns, same network, buffer, batch, learning
  rate, exploration and target-update period; SB3 has no Double DQN) and SB3 PPO (the settings
  that worked in the prototype) train for the same 500,000 steps.

Each trained agent is evaluated greedily (and, for the stochastic policies, also by sampling) on
300 simulated users drawn from evaluation seed ``10_000 + seed``; the reference policies meet the
same users. Results: mean over training seeds and a 95% t-interval.

    python benchmarks/bench_agents.py            # about 25 minutes on 2 cores
    python benchmarks/bench_agents.py --quick    # a 2-minute smoke version
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import recrl_lite
from recrl_lite.agents import LongHorizonReference, MyopicOracle, Policy, PopularityPolicy, RandomPolicy
from recrl_lite.agents.dqn import DQNAgent, DQNConfig, train_dqn
from recrl_lite.agents.reinforce import ReinforceAgent, ReinforceConfig, train_reinforce
from recrl_lite.data import generate_dataset
from recrl_lite.evaluation import evaluate_policy, intervals_disjoint, mean_ci

EVAL_USERS = 300


def make_env() -> gym.Env:
    return gym.make(recrl_lite.ENV_ID)


def make_scaled_env() -> gym.Env:
    """For SB3: observations rescaled to [0, 1] by the space bounds, as our MLPEncoder does."""
    env = make_env()
    return gym.wrappers.RescaleObservation(env, np.zeros(env.observation_space.shape, np.float32),
                                           np.ones(env.observation_space.shape, np.float32))


class SB3Policy(Policy):
    """Adapter: a trained SB3 model as a recrl_lite policy (on a rescaled observation)."""

    def __init__(self, model, deterministic: bool):
        super().__init__()
        self.model, self.deterministic = model, deterministic
        space = make_env().observation_space
        self.low, self.scale = space.low, 1.0 / (space.high - space.low)
        self.name = "sb3"

    def act(self, observation: np.ndarray) -> int:
        scaled = ((observation - self.low) * self.scale).astype(np.float32)
        return int(self.model.predict(scaled, deterministic=self.deterministic)[0])

    def seed(self, seed: int | None = None) -> None:
        super().seed(seed)
        self.model.policy.set_training_mode(False)
        if seed is not None:
            torch.manual_seed(seed)


def evaluate(policy: Policy, seed: int, n_users: int) -> float:
    env = make_env()
    if getattr(policy, "env", None) is not None:  # privileged policies are bound to their own env
        env = policy.env
    return float(evaluate_policy(policy, env, n_users=n_users, seeds=[10_000 + seed])["return"].mean())


def run_job(job: tuple[str, int, dict]) -> dict:
    name, seed, budget = job
    torch.set_num_threads(1)
    env = make_env()
    start = time.perf_counter()
    row: dict = {"agent": name, "seed": seed}
    if name == "REINFORCE":
        cfg = ReinforceConfig(n_iterations=10**9, time_budget_s=budget["seconds"])
        agent = ReinforceAgent(env.observation_space, env.action_space, cfg, seed=seed)
        history = train_reinforce(agent, make_env, seed=seed)
        row["env_steps"] = int(history["env_steps"].iloc[-1])
        row["train_seconds"] = time.perf_counter() - start
        row["return_sampled"] = evaluate(agent, seed, budget["users"])
        agent.deterministic = True
        row["return"] = evaluate(agent, seed, budget["users"])
    elif name == "DQN":
        cfg = DQNConfig(total_steps=budget["steps"])
        agent = DQNAgent(env.observation_space, env.action_space, cfg, seed=seed)
        train_dqn(agent, make_env, seed=seed)
        row["env_steps"] = cfg.total_steps
        row["train_seconds"] = time.perf_counter() - start
        row["return"] = evaluate(agent, seed, budget["users"])
    elif name in ("SB3 DQN", "SB3 PPO"):
        from stable_baselines3 import DQN, PPO
        from stable_baselines3.common.env_util import make_vec_env

        ours = DQNConfig()
        if name == "SB3 DQN":
            vec = make_vec_env(make_scaled_env, n_envs=ours.n_envs, seed=seed)
            model = DQN("MlpPolicy", vec, learning_rate=ours.learning_rate, buffer_size=ours.buffer_size,
                        learning_starts=ours.learning_starts, batch_size=ours.batch_size, gamma=ours.gamma,
                        train_freq=1, gradient_steps=1, n_steps=ours.n_step,
                        target_update_interval=ours.target_update_interval * ours.n_envs,
                        exploration_fraction=ours.exploration_fraction, exploration_final_eps=ours.epsilon_end,
                        max_grad_norm=ours.max_grad_norm, policy_kwargs={"net_arch": list(ours.hidden)},
                        seed=seed, device="cpu")
        else:
            vec = make_vec_env(make_scaled_env, n_envs=8, seed=seed)
            model = PPO("MlpPolicy", vec, learning_rate=1e-3, n_steps=256, batch_size=512, n_epochs=6,
                        gamma=0.99, ent_coef=0.003, policy_kwargs={"net_arch": [64, 64]}, seed=seed, device="cpu")
        model.learn(total_timesteps=budget["steps"])
        row["env_steps"] = int(model.num_timesteps)
        row["train_seconds"] = time.perf_counter() - start
        if name == "SB3 PPO":
            row["return_sampled"] = evaluate(SB3Policy(model, deterministic=False), seed, budget["users"])
        row["return"] = evaluate(SB3Policy(model, deterministic=True), seed, budget["users"])
    print(f"  {name:10s} seed {seed}: return {row['return']:6.2f}  ({row['env_steps']:,} steps, "
          f"{row['train_seconds']:.0f} s)", flush=True)
    return row


def reference_returns(seeds: list[int], users: int) -> dict[str, list[float]]:
    logs = generate_dataset(n_users=2000, seed=0)
    out: dict[str, list[float]] = {}
    for name in ("random", "popularity", "myopic oracle", "long-horizon reference"):
        out[name] = []
        for seed in seeds:
            env = make_env()
            policy = {
                "random": lambda: RandomPolicy(env.action_space.n),
                "popularity": lambda: PopularityPolicy.from_interactions(logs.interactions, logs.items, env),
                "myopic oracle": lambda: MyopicOracle(env),
                "long-horizon reference": lambda: LongHorizonReference(env),
            }[name]()
            out[name].append(float(evaluate_policy(policy, env, n_users=users, seeds=[10_000 + seed])["return"].mean()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets, to check the script runs")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="parallel single-threaded trainings")
    args = parser.parse_args()
    budget = {"seconds": 120.0, "steps": 500_000, "users": EVAL_USERS}
    if args.quick:
        budget = {"seconds": 5.0, "steps": 20_000, "users": 30}
    seeds = list(range(args.seeds))
    jobs = [(name, seed, budget) for seed in seeds for name in ("REINFORCE", "DQN", "SB3 DQN", "SB3 PPO")]
    # longest jobs first, so that the two workers finish together
    jobs.sort(key=lambda j: {"SB3 DQN": 0, "REINFORCE": 1, "DQN": 2, "SB3 PPO": 3}[j[0]])
    print(f"{len(jobs)} trainings on {args.workers} workers; budgets {budget}")
    with mp.get_context("spawn").Pool(args.workers) as pool:
        rows = pool.map(run_job, jobs, chunksize=1)
    refs = reference_returns(seeds, budget["users"])

    results: dict = {"python": platform.python_version(), "torch": torch.__version__, "budget": budget,
                     "seeds": seeds, "workers": args.workers, "runs": rows, "summary": {}}
    summary = results["summary"]
    for name, values in refs.items():
        summary[name] = {"return": mean_ci(values)}
    for name in ("REINFORCE", "DQN", "SB3 DQN", "SB3 PPO"):
        mine = [r for r in rows if r["agent"] == name]
        summary[name] = {
            "return": mean_ci([r["return"] for r in mine]),
            "train_seconds": mean_ci([r["train_seconds"] for r in mine]),
            "env_steps": float(np.mean([r["env_steps"] for r in mine])),
        }
        if "return_sampled" in mine[0]:
            summary[name]["return_sampled"] = mean_ci([r["return_sampled"] for r in mine])

    reference = summary["long-horizon reference"]["return"][0]
    myopic = summary["myopic oracle"]["return"]
    print(f"\nsession return (clicks), {len(seeds)} seeds, {budget['users']} users each: mean ± 95% CI")
    for name, s in summary.items():
        m, h = s["return"]
        extra = ""
        if "train_seconds" in s:
            extra = f"   {s['env_steps']:>11,.0f} steps in {s['train_seconds'][0]:5.0f} s"
            if "return_sampled" in s:
                extra += f"   (sampled: {s['return_sampled'][0]:.2f} ± {s['return_sampled'][1]:.2f})"
        print(f"  {name:24s} {m:6.2f} ± {h:4.2f}  = {m / reference:4.0%} of reference{extra}")
    best = max(("REINFORCE", "DQN"), key=lambda n: summary[n]["return"][0])
    results["checks"] = {
        "best_learned_agent": best,
        "beats_myopic_oracle_disjoint_ci": intervals_disjoint(summary[best]["return"], myopic) and summary[best]["return"][0] > myopic[0],
        "fraction_of_reference": summary[best]["return"][0] / reference,
        "our_dqn_at_least_sb3_dqn_return": summary["DQN"]["return"][0] >= summary["SB3 DQN"]["return"][0],
        "our_dqn_less_wall_time_than_sb3_dqn": summary["DQN"]["train_seconds"][0] < summary["SB3 DQN"]["train_seconds"][0],
    }
    print("\nchecks:", json.dumps(results["checks"], indent=2))
    if not args.quick:
        path = Path(__file__).parent / "results" / "agents.json"
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
