"""Training throughput of the chapter 5 state encoders: MLP, GRU (GRU4Rec-style), Transformer (SASRec-style).

Each encoder trains our REINFORCE (value baseline, 32 sessions per step) and our DQN (16 envs,
batch 256, one gradient step per lockstep step after 2,000 warm-up transitions) on the simulator,
with the agents' default hyperparameters and a small fixed step budget. Throughput is environment
transitions per second of training, acting and environment steps included: per CPU-second
(``time.process_time``, one torch thread, as the chapter's time budgets count) and per wall-second.
The runs are interleaved and repeated; the table reports the median run, and each encoder's ratio to
the MLP of the same algorithm in the same run of this script. Parameter counts are printed too.

    python benchmarks/bench_encoders.py        # about 80 s on two slow cores; writes results/encoders.csv
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import torch
from torch import nn

import recrl_lite
from recrl_lite.agents.dqn import DQNAgent, DQNConfig, train_dqn
from recrl_lite.agents.reinforce import ReinforceAgent, ReinforceConfig, train_reinforce
from recrl_lite.models.encoders import GRUEncoder, MLPEncoder, TransformerEncoder, count_parameters

RESULTS = Path(__file__).parent / "results" / "encoders.csv"
REINFORCE_STEPS = 20_000
DQN_STEPS, DQN_LEARNING_STARTS = 10_000, 2_000
ENCODERS = ("MLP", "GRU", "Transformer")


def make_env() -> gym.Env:
    return gym.make(recrl_lite.ENV_ID)


def encoder_factory(name: str, env: gym.Env, hidden: tuple[int, ...]) -> Callable[[], nn.Module]:
    """A factory of fresh encoders at their defaults (the MLP: the agents' default widths)."""
    if name == "MLP":
        return lambda: MLPEncoder(env.observation_space, hidden)
    cls = {"GRU": GRUEncoder, "Transformer": TransformerEncoder}[name]
    return lambda: cls.from_env(env)


def build(algorithm: str, name: str, env: gym.Env, steps: int, seed: int) -> ReinforceAgent | DQNAgent:
    if algorithm == "REINFORCE":
        rcfg = ReinforceConfig(n_iterations=10**6, total_steps=steps)
        return ReinforceAgent(env.observation_space, env.action_space, rcfg, seed=seed,
                              encoder_factory=encoder_factory(name, env, rcfg.hidden))
    dcfg = DQNConfig(total_steps=steps, learning_starts=min(DQN_LEARNING_STARTS, steps // 2))
    return DQNAgent(env.observation_space, env.action_space, dcfg, seed=seed,
                    encoder_factory=encoder_factory(name, env, dcfg.hidden))


def run(algorithm: str, name: str, steps: int, seed: int) -> dict[str, float]:
    """Train one agent for ``steps`` env steps; its transitions, gradient steps and seconds."""
    env = make_env()
    agent = build(algorithm, name, env, steps, seed)
    cpu, wall = time.process_time(), time.perf_counter()
    if isinstance(agent, ReinforceAgent):
        log = train_reinforce(agent, make_env, seed=seed)
        transitions, gradient_steps = int(log["env_steps"].iloc[-1]), len(log)
    else:
        train_dqn(agent, make_env, seed=seed)
        transitions, gradient_steps = agent.config.total_steps, agent.gradient_steps
    return {"transitions": transitions, "gradient_steps": gradient_steps,
            "cpu_seconds": time.process_time() - cpu, "wall_seconds": time.perf_counter() - wall}


def parameter_counts(algorithm: str, name: str) -> tuple[int, int]:
    """(parameters of one encoder, parameters of the agent's whole network)."""
    env = make_env()
    agent = build(algorithm, name, env, 100, seed=0)
    net = agent.net
    encoder = net.policy_encoder if isinstance(agent, ReinforceAgent) else net.encoder
    return count_parameters(encoder), count_parameters(net)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every run (median reported)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="CSV to write")
    args = parser.parse_args()
    if args.repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {args.repeats}")
    torch.set_num_threads(1)
    budgets = {"REINFORCE": REINFORCE_STEPS, "DQN": DQN_STEPS}
    cases = [(algorithm, name) for algorithm in budgets for name in ENCODERS]
    for algorithm, name in cases:  # warm-up: first calls into torch and the env are slower
        run(algorithm, name, 400, seed=0)
    runs: dict[tuple[str, str], list[dict[str, float]]] = {case: [] for case in cases}
    start = time.perf_counter()
    for repeat in range(args.repeats):
        for case in cases:
            runs[case].append(run(*case, budgets[case[0]], seed=repeat))
    total = time.perf_counter() - start

    rows = []
    for algorithm, name in cases:
        median = lambda key: statistics.median(r[key] for r in runs[(algorithm, name)])  # noqa: E731
        enc_params, net_params = parameter_counts(algorithm, name)
        transitions = median("transitions")
        rows.append({
            "algorithm": algorithm, "encoder": name, "encoder_parameters": enc_params, "network_parameters": net_params,
            "transitions": int(transitions), "gradient_steps": int(median("gradient_steps")),
            "cpu_seconds": round(median("cpu_seconds"), 3), "wall_seconds": round(median("wall_seconds"), 3),
            "transitions_per_cpu_second": round(statistics.median(
                r["transitions"] / r["cpu_seconds"] for r in runs[(algorithm, name)]), 1),
            "transitions_per_wall_second": round(statistics.median(
                r["transitions"] / r["wall_seconds"] for r in runs[(algorithm, name)]), 1),
        })
    for row in rows:
        mlp = next(r for r in rows if r["algorithm"] == row["algorithm"] and r["encoder"] == "MLP")
        row["ratio_vs_mlp_cpu"] = round(row["transitions_per_cpu_second"] / mlp["transitions_per_cpu_second"], 3)
        row["ratio_vs_mlp_wall"] = round(row["transitions_per_wall_second"] / mlp["transitions_per_wall_second"], 3)

    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 torch thread, "
          f"median of {args.repeats} interleaved runs ({total:.0f} s)")
    print(f"budgets: REINFORCE {REINFORCE_STEPS:,} env steps (32 sessions per gradient step); "
          f"DQN {DQN_STEPS:,} env steps (16 envs, batch 256, learning starts at {DQN_LEARNING_STARTS:,})\n")
    header = (f"{'algorithm':<10} {'encoder':<12} {'enc. params':>11} {'net params':>10} {'grad steps':>10} "
              f"{'trans/CPU-s':>11} {'vs MLP':>7} {'trans/wall-s':>12} {'vs MLP':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['algorithm']:<10} {r['encoder']:<12} {r['encoder_parameters']:>11,} {r['network_parameters']:>10,} "
              f"{r['gradient_steps']:>10,} {r['transitions_per_cpu_second']:>11,.0f} {r['ratio_vs_mlp_cpu']:>7.2f} "
              f"{r['transitions_per_wall_second']:>12,.0f} {r['ratio_vs_mlp_wall']:>7.2f}")
    print("\n(REINFORCE's network holds two encoders, policy and value; DQN's target copy is not counted)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
