"""Learning quality of the book's deep agents on a CPU budget, next to stable-baselines3.

Every agent trains on each of 5 seeds under two budgets, so that comparisons are matched either
way (chapter 3, "With two CPU-minutes"):

- ``steps``: 500,000 environment steps;
- ``cpu``: 120 CPU-seconds of training (``time.process_time`` of the worker, one torch thread;
  evaluation excluded), so a busy machine does not shrink anyone's budget.

The agents: our REINFORCE (value baseline) and DQN (10-step, Double), stable-baselines3 DQN (the
same network, buffer, batch, learning rate, exploration, target period and 10-step returns; SB3
has no Double DQN) and SB3 PPO (the settings that worked in the simulator prototype). During
training, the greedy policy is scored every 50,000 env steps on 100 held-out users (the learning
curves); after training, greedily and (REINFORCE, PPO) by sampling, on 300 users of evaluation
seed ``10_000 + seed``, whom the reference policies meet too. Results: mean over the training
seeds with a 95% t-interval, and the same normalised between random (0) and the long-horizon
reference (1).

The claims the book makes about these runs are checked at the end (``CLAIMS``); the script exits
with status 1 if one fails, after writing ``results/agents.json``.

    python benchmarks/bench_agents.py              # about 40 minutes on two workers
    python benchmarks/bench_agents.py --quick      # a few minutes: tiny budgets, not written
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import recrl_lite
from recrl_lite.agents import LongHorizonReference, MyopicOracle, Policy, PopularityPolicy, RandomPolicy
from recrl_lite.agents.dqn import DQNAgent, DQNConfig, train_dqn
from recrl_lite.agents.reinforce import ReinforceAgent, ReinforceConfig, train_reinforce
from recrl_lite.data import generate_dataset
from recrl_lite.evaluation import LearningCurve, evaluate_policy, intervals_disjoint, mean_ci

AGENTS = ("REINFORCE", "DQN", "SB3 DQN", "SB3 PPO")
BUDGETS = {"steps": {"steps": 500_000}, "cpu": {"cpu_seconds": 120.0}}
# Exploration schedules follow the planned total (DQN's ε decays over a fraction of it), so a
# CPU-budget run plans for the steps it can reach in its CPU-seconds: the step-budget runs go
# first, and each agent's CPU-budget runs plan 1.1 x (its mean steps per CPU-second) x budget.
PLAN_MARGIN = 1.1
EVAL_USERS, CURVE_USERS, CURVE_EVERY, EVAL_OFFSET = 300, 100, 50_000, 10_000
PPO_SETTINGS = dict(learning_rate=1e-3, n_steps=256, batch_size=512, n_epochs=6, gamma=0.99, ent_coef=0.003,
                    policy_kwargs={"net_arch": [64, 64]})


def make_env() -> gym.Env:
    return gym.make(recrl_lite.ENV_ID)


def make_scaled_env() -> gym.Env:
    """For SB3: observations rescaled to [0, 1] by the space bounds, as our MLPEncoder does."""
    env = make_env()
    return gym.wrappers.RescaleObservation(env, np.zeros(env.observation_space.shape, np.float32),
                                           np.ones(env.observation_space.shape, np.float32))


class SB3Policy(Policy):
    """Adapter: a trained SB3 model as a recrl_lite policy (on a rescaled observation)."""

    def __init__(self, model: Any, deterministic: bool = True, reseed_torch: bool = True):
        super().__init__()
        self.model, self.deterministic, self.reseed_torch = model, deterministic, reseed_torch
        space = make_env().observation_space
        self.low, self.scale = space.low, 1.0 / (space.high - space.low)
        self.name = "sb3"

    def act_batch(self, observations: np.ndarray) -> np.ndarray:
        scaled = ((observations - self.low) * self.scale).astype(np.float32)
        return np.asarray(self.model.predict(scaled, deterministic=self.deterministic)[0])

    def act(self, observation: np.ndarray) -> int:
        return int(self.act_batch(observation[None])[0])

    def seed(self, seed: int | None = None) -> None:
        super().seed(seed)
        self.model.policy.set_training_mode(False)
        if seed is not None and self.reseed_torch:
            torch.manual_seed(seed)


def sb3_callback(curve: LearningCurve, cpu_budget: float | None) -> Any:
    """SB3 callback: the learning curve (greedy, torch RNG untouched) and the CPU-time budget."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Callback(BaseCallback):
        def _on_training_start(self) -> None:
            self.start, self.excluded = time.process_time(), 0.0
            self._evaluate()

        def _evaluate(self) -> None:
            if self.num_timesteps < curve.next_checkpoint:
                return
            t0 = time.process_time()
            with torch.random.fork_rng():
                curve(SB3Policy(self.model, deterministic=True, reseed_torch=False), self.num_timesteps)
            self.model.policy.set_training_mode(True)
            self.excluded += time.process_time() - t0

        def _on_step(self) -> bool:
            self._evaluate()
            return cpu_budget is None or time.process_time() - self.start - self.excluded < cpu_budget

    return Callback()


def evaluate(policy: Policy, seed: int, n_users: int) -> float:
    env = policy.env if getattr(policy, "env", None) is not None else make_env()
    return float(evaluate_policy(policy, env, n_users=n_users, seeds=[EVAL_OFFSET + seed])["return"].mean())


def run_job(job: tuple[str, int, str, dict]) -> dict:
    name, seed, budget_name, scale, planned = job
    torch.set_num_threads(1)
    budget = BUDGETS[budget_name]
    steps = int(budget["steps"] * scale["steps"]) if "steps" in budget else planned
    cpu = budget.get("cpu_seconds") and budget["cpu_seconds"] * scale["seconds"]
    users = max(int(EVAL_USERS * scale["users"]), 10)
    curve = LearningCurve(make_env, n_users=max(int(CURVE_USERS * scale["users"]), 5), seed=EVAL_OFFSET + seed,
                          every=max(int(CURVE_EVERY * scale["steps"]), 1))
    last_step = [0]

    def callback(agent: Any, env_steps: int) -> None:
        last_step[0] = env_steps
        curve(agent, env_steps)

    env = make_env()
    row: dict = {"agent": name, "seed": seed, "budget": budget_name, "planned_steps": steps}
    start = time.process_time()
    if name == "REINFORCE":
        cfg = ReinforceConfig(n_iterations=10**9, total_steps=steps if "steps" in budget else None, time_budget_s=cpu)
        row["planned_steps"] = cfg.total_steps  # no schedule to plan: the CPU budget alone stops it
        agent = ReinforceAgent(env.observation_space, env.action_space, cfg, seed=seed)
        history = train_reinforce(agent, make_env, seed=seed, callback=callback)
        row["env_steps"], row["cpu_seconds"] = int(history["env_steps"].iloc[-1]), float(history["seconds"].iloc[-1])
        row["return_sampled"] = evaluate(agent, seed, users)
        agent.deterministic = True
        row["return"] = evaluate(agent, seed, users)
    elif name == "DQN":
        cfg = DQNConfig(total_steps=steps, time_budget_s=cpu)
        agent = DQNAgent(env.observation_space, env.action_space, cfg, seed=seed)
        train_dqn(agent, make_env, seed=seed, callback=callback)
        row["env_steps"] = last_step[0]
        row["cpu_seconds"] = time.process_time() - start - curve.seconds
        row["return"] = evaluate(agent, seed, users)
    else:
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
            model = PPO("MlpPolicy", vec, seed=seed, device="cpu", **PPO_SETTINGS)
        sb3 = sb3_callback(curve, cpu)
        model.learn(total_timesteps=steps, callback=sb3)
        row["env_steps"] = int(model.num_timesteps)
        row["cpu_seconds"] = time.process_time() - start - sb3.excluded
        if name == "SB3 PPO":
            row["return_sampled"] = evaluate(SB3Policy(model, deterministic=False), seed, users)
        row["return"] = evaluate(SB3Policy(model, deterministic=True), seed, users)
    row["curve"] = curve.frame[["env_steps", "return"]].to_dict("list")
    print(f"  {name:10s} {budget_name:5s} seed {seed}: return {row['return']:6.2f}  ({row['env_steps']:,} steps, "
          f"{row['cpu_seconds']:.0f} CPU-s)", flush=True)
    return row


def reference_returns(seeds: list[int], users: int) -> dict[str, list[float]]:
    logs = generate_dataset(n_users=2000, seed=0)
    env = make_env()
    makers = {"random": lambda: RandomPolicy(env.action_space.n),
              "popularity": lambda: PopularityPolicy.from_interactions(logs.interactions, logs.items, env),
              "myopic oracle": lambda: MyopicOracle(env), "long-horizon reference": lambda: LongHorizonReference(env)}
    return {name: [evaluate(make(), seed, users) for seed in seeds] for name, make in makers.items()}


def summarise(rows: list[dict], refs: dict[str, list[float]]) -> dict:
    random_, reference = np.mean(refs["random"]), np.mean(refs["long-horizon reference"])
    summary: dict = {"references": {name: {"return": mean_ci(v)} for name, v in refs.items()}}
    for budget in BUDGETS:
        summary[budget] = {}
        for name in AGENTS:
            mine = [r for r in rows if r["agent"] == name and r["budget"] == budget]
            if not mine:
                continue
            entry = {"return": mean_ci([r["return"] for r in mine]),
                     "normalised": mean_ci([(r["return"] - random_) / (reference - random_) for r in mine]),
                     "env_steps": float(np.mean([r["env_steps"] for r in mine])),
                     "cpu_seconds": float(np.mean([r["cpu_seconds"] for r in mine]))}
            if "return_sampled" in mine[0]:
                entry["return_sampled"] = mean_ci([r["return_sampled"] for r in mine])
            summary[budget][name] = entry
    return summary


def curve_at(rows: list[dict], name: str, budget: str, env_steps: int) -> tuple[float, float]:
    """Mean and 95% CI over seeds of an agent's learning-curve point nearest ``env_steps``."""
    values = []
    for r in rows:
        if r["agent"] == name and r["budget"] == budget:
            steps = np.asarray(r["curve"]["env_steps"])
            values.append(r["curve"]["return"][int(np.argmin(np.abs(steps - env_steps)))])
    return mean_ci(values)


def claims(summary: dict, rows: list[dict]) -> dict[str, dict]:
    """The claims chapter 3 makes about these runs, each with the numbers it rests on."""
    ref, cpu, steps = summary["references"], summary["cpu"], summary["steps"]
    best = max(("REINFORCE", "DQN"), key=lambda n: cpu[n]["return"][0])
    myopic = ref["myopic oracle"]["return"]

    def beats(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] > b[0] and intervals_disjoint(a, b)

    early = {name: curve_at(rows, name, "steps", 100_000) for name in AGENTS}
    return {
        "the best of our agents at 120 CPU-seconds beats the myopic oracle, 95% CIs apart": {
            "agent": best, "return": cpu[best]["return"], "myopic oracle": myopic,
            "holds": beats(cpu[best]["return"], myopic)},
        "at 100,000 env steps both DQNs are ahead of REINFORCE, 95% CIs apart (learning curves)": {
            **early, "holds": beats(early["DQN"], early["REINFORCE"]) and beats(early["SB3 DQN"], early["REINFORCE"])},
        "at 500,000 env steps PPO beats REINFORCE and both DQNs, 95% CIs apart": {
            name: steps[name]["return"] for name in AGENTS} | {
            "holds": all(beats(steps["SB3 PPO"]["return"], steps[n]["return"]) for n in ("REINFORCE", "DQN", "SB3 DQN"))},
        "at 120 CPU-seconds REINFORCE and PPO are level (95% CIs overlap)": {
            "REINFORCE": cpu["REINFORCE"]["return"], "SB3 PPO": cpu["SB3 PPO"]["return"],
            "holds": not intervals_disjoint(cpu["REINFORCE"]["return"], cpu["SB3 PPO"]["return"])},
        "at 120 CPU-seconds REINFORCE and PPO both beat both DQNs, 95% CIs apart": {
            name: cpu[name]["return"] for name in AGENTS} | {
            "holds": all(beats(cpu[a]["return"], cpu[b]["return"]) for a in ("REINFORCE", "SB3 PPO")
                         for b in ("DQN", "SB3 DQN"))},
        "our DQN and SB3's DQN are level at 500,000 env steps (95% CIs overlap)": {
            "DQN": steps["DQN"]["return"], "SB3 DQN": steps["SB3 DQN"]["return"],
            "holds": not intervals_disjoint(steps["DQN"]["return"], steps["SB3 DQN"]["return"])},
        "our DQN needs fewer CPU-seconds than SB3's for 500,000 env steps (same run)": {
            "DQN": steps["DQN"]["cpu_seconds"], "SB3 DQN": steps["SB3 DQN"]["cpu_seconds"],
            "holds": steps["DQN"]["cpu_seconds"] < steps["SB3 DQN"]["cpu_seconds"]},
    }


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets, to check the script runs (nothing written)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="parallel single-threaded trainings")
    parser.add_argument("--recheck", type=Path, default=None, metavar="RESULTS",
                        help="recompute the summary and the claims from the runs stored in RESULTS, rewrite them "
                             "there, and exit (no training)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the results (default: results/agents.json; --quick writes only here)")
    args = parser.parse_args()
    if args.recheck is not None:
        stored = json.loads(args.recheck.read_text())
        # the reference policies are exact (numpy only): recompute them if the file predates their storage
        refs = stored.get("references_per_seed") or reference_returns(stored["seeds"], stored["users"]["evaluation"])
        stored["references_per_seed"] = refs
        stored["summary"] = summarise(stored["runs"], refs)
        stored["claims"] = claims(stored["summary"], stored["runs"])
        args.recheck.write_text(json.dumps(stored, indent=1) + "\n")
        for claim, c in stored["claims"].items():
            print(f"{'holds' if c['holds'] else 'FAILS'}: {claim}")
        return 0 if all(c["holds"] for c in stored["claims"].values()) else 1
    scale = {"steps": 0.03, "seconds": 0.05, "users": 0.1} if args.quick else {"steps": 1.0, "seconds": 1.0, "users": 1.0}
    seeds = list(range(args.seeds))
    order = {"SB3 DQN": 0, "SB3 PPO": 1, "DQN": 2, "REINFORCE": 3}   # longest first, so the workers finish together
    started = datetime.datetime.now(datetime.timezone.utc)
    print(f"{len(AGENTS) * len(seeds) * len(BUDGETS)} trainings on {args.workers} worker(s); budgets {BUDGETS}, "
          f"scale {scale}", flush=True)
    with mp.get_context("spawn").Pool(args.workers) as pool:
        jobs = sorted(((name, seed, "steps", scale, None) for seed in seeds for name in AGENTS), key=lambda j: order[j[0]])
        rows = pool.map(run_job, jobs, chunksize=1)
        cpu_budget = BUDGETS["cpu"]["cpu_seconds"] * scale["seconds"]
        rate = {name: np.mean([r["env_steps"] / r["cpu_seconds"] for r in rows if r["agent"] == name]) for name in AGENTS}
        jobs = sorted(((name, seed, "cpu", scale, int(PLAN_MARGIN * rate[name] * cpu_budget)) for seed in seeds
                       for name in AGENTS), key=lambda j: order[j[0]])
        rows += pool.map(run_job, jobs, chunksize=1)
    refs = reference_returns(seeds, max(int(EVAL_USERS * scale["users"]), 10))
    summary = summarise(rows, refs)
    checked = claims(summary, rows)
    results = {
        "measured": {"started": started.isoformat(timespec="seconds"),
                     "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     "machine": machine(), "workers": args.workers, "python": platform.python_version(),
                     "torch": torch.__version__, "command": "python benchmarks/bench_agents.py"},
        "budgets": BUDGETS, "plan_margin": PLAN_MARGIN, "seeds": seeds,
        "users": {"evaluation": EVAL_USERS, "curve": CURVE_USERS, "curve_every": CURVE_EVERY},
        "summary": summary, "claims": checked, "references_per_seed": refs, "runs": rows,
    }
    for budget in BUDGETS:
        print(f"\n{budget} budget: session return (clicks), mean ± 95% CI over {len(seeds)} seeds; normalised 0 = random, 1 = reference")
        for name, s in summary[budget].items():
            sampled = f"   sampled {s['return_sampled'][0]:5.2f}" if "return_sampled" in s else ""
            print(f"  {name:10s} {s['return'][0]:6.2f} ± {s['return'][1]:4.2f}  ({s['normalised'][0]:4.0%})  "
                  f"{s['env_steps']:>11,.0f} steps  {s['cpu_seconds']:5.0f} CPU-s{sampled}")
    for claim, c in checked.items():
        print(f"{'holds' if c['holds'] else 'FAILS'}: {claim}")
    path = args.out or (None if args.quick else Path(__file__).parent / "results" / "agents.json")
    if path is not None:
        path.write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {path}")
    return 0 if all(c["holds"] for c in checked.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
