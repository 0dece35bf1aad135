"""What the pretrained language model of chapter 6 costs: encoding throughput and agent training cost.

Three measurements, each repeated and reported as the median, with ratios to a peer in the same
run of this script (ratios hold across machines better than seconds do):

- **encoding**: titles per second of all-MiniLM-L6-v2 (``recrl_lite.models.language``) for batch
  sizes 1, 8, 64 and 256, with 1 and 2 torch threads, as ratios to batch 64 on 1 thread;
- **depth**: the same encoder with 3 of its 6 Transformer layers, as a ratio of time to the full
  model (layers run one after another, so time grows with depth);
- **agent training**: REINFORCE transitions per CPU-second with the text two-tower head on cached
  embeddings, the id-only two-tower head and the default linear head of chapter 3, as ratios to the
  default head.

    python benchmarks/bench_language.py     # about 2 minutes on two cores; writes results/language.csv
"""

from __future__ import annotations

import argparse
import copy
import csv
import platform
import statistics
import time
from pathlib import Path

import torch

from recrl_lite.agents.reinforce import ReinforceAgent, ReinforceConfig, train_reinforce
from recrl_lite.data import generate_item_texts
from recrl_lite.envs import Catalogue, ECommerceConfig, ECommerceEnv
from recrl_lite.models import PCAProjection, TwoTowerItemHead, language

RESULTS = Path(__file__).parent / "results" / "language.csv"
TRAIN_STEPS = 20_000


def median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--titles", type=int, default=256)
    args = parser.parse_args()
    titles = generate_item_texts(Catalogue.generate(ECommerceConfig(n_items=args.titles, item_seed=1)),
                                 seed=1)["title"].tolist()
    encoder = language.load_text_encoder()
    rows = []

    # encoding throughput by batch size and threads
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch in (1, 8, 64, 256):
            sample = titles[:32] if batch == 1 else titles
            seconds = median_seconds(lambda: encoder.encode(sample, batch_size=batch, show_progress_bar=False),
                                     args.repeats)
            rows.append({"measure": "encoding", "setting": f"batch {batch}, {threads} thread(s)",
                         "value": len(sample) / seconds, "unit": "titles/s"})
    torch.set_num_threads(1)
    peer = next(r["value"] for r in rows if r["setting"] == "batch 64, 1 thread(s)")
    for r in rows:
        r["ratio"] = r["value"] / peer
        r["peer"] = "batch 64, 1 thread"

    # depth: half the layers
    half = copy.deepcopy(encoder)
    half[0].auto_model.encoder.layer = half[0].auto_model.encoder.layer[:3]
    full_s = median_seconds(lambda: encoder.encode(titles, batch_size=64, show_progress_bar=False), args.repeats)
    half_s = median_seconds(lambda: half.encode(titles, batch_size=64, show_progress_bar=False), args.repeats)
    rows.append({"measure": "depth", "setting": "3 of 6 layers", "value": half_s / len(titles) * 1e3,
                 "unit": "ms/title", "ratio": half_s / full_s, "peer": "6 layers"})

    # agent training on cached embeddings
    env = ECommerceEnv()
    embeddings = language.encode_texts(generate_item_texts(env.catalogue, seed=0)["title"].tolist(), model=encoder)
    item_features = PCAProjection.fit(embeddings, 16)(embeddings)
    heads = {
        "default linear head": None,
        "id-only two-tower": lambda width: TwoTowerItemHead(width, None, n_items=120, id_embeddings=True),
        "text two-tower": lambda width: TwoTowerItemHead(width, item_features),
    }
    config = ReinforceConfig(n_iterations=10**6, total_steps=TRAIN_STEPS, batch_episodes=64, hidden=(64, 64))
    rates: dict[str, list[float]] = {name: [] for name in heads}
    for repeat in range(args.repeats):
        for name, head in heads.items():  # interleaved, so a busy spell hits every head alike
            agent = ReinforceAgent(env.observation_space, env.action_space, config, seed=repeat, head_factory=head)
            start = time.process_time()
            history = train_reinforce(agent, ECommerceEnv, seed=repeat)
            rates[name].append(int(history["steps"].sum()) / (time.process_time() - start))
    base = statistics.median(rates["default linear head"])
    for name, values in rates.items():
        rows.append({"measure": "agent training", "setting": name, "value": statistics.median(values),
                     "unit": "transitions/CPU-s", "ratio": statistics.median(values) / base,
                     "peer": "default linear head"})

    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s) for training"
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["measure", "setting", "value", "unit", "ratio", "peer", "machine"])
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "value": f"{r['value']:.3f}", "ratio": f"{r['ratio']:.3f}", "machine": machine})
    for r in rows:
        print(f"{r['measure']:<15} {r['setting']:<26} {r['value']:>10.1f} {r['unit']:<18} x{r['ratio']:.2f} of {r['peer']}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
