"""How chapter 2's MF defaults and hybrid weight compare on a dataset no chapter evaluates on.

Chapter 2 evaluates its classic recommenders on datasets generated with seeds 0, 1 and 2. This
script generates one more with seed 100 (same size, same behaviour policy), applies the chapter's
protocol to it (a temporal 80/20 split; warm users are scored on the new items they click after the
cut-off, with their training clicks excluded; cold users on all their clicks after it), and uses
that split as a validation set:

1. matrix factorisation, a grid of factors x lambda, scored by warm-user NDCG@10 (MF has nothing
   personal to offer a cold user);
2. the hybrid weight alpha, with the MF settings chosen in step 1, scored by the mean of the warm
   and the cold NDCG@10 (the hybrid is the chapter's cold-start model, so both groups count).

It prints both tables and the chosen values next to the chapter's defaults (4 factors, lambda = 10,
alpha = 0.8), and writes benchmarks/results/classic_tuning.json. It takes well under a minute on
two cores.

    python benchmarks/tune_classic.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recrl_lite.data import generate_dataset, prepare
from recrl_lite.evaluation import ndcg_at_k, split_test_users
from recrl_lite.models import Hybrid, MatrixFactorization, click_matrix, top_k

SEED = 100            # the tuning dataset; chapter 2 evaluates on seeds 0, 1, 2
N_USERS = 3000        # as in chapter 2
TEST_FRACTION = 0.2   # as in chapter 2
K = 10
FACTORS = (2, 4, 8, 16)
REGS = (1.0, 3.0, 10.0, 30.0)
ALPHAS = (0.2, 0.4, 0.6, 0.8, 1.0)
DEFAULTS = {"n_factors": 4, "reg": 10.0, "alpha": 0.8}
OUT = Path(__file__).parent / "results" / "classic_tuning.json"


def split_users(data):
    """The training click matrix, and the warm and cold validation users (chapter 2's protocol)."""
    X = click_matrix(data.train, len(data.user_index), len(data.item_index))
    return X, split_test_users(X, data.test)


def ndcg(model, group) -> float:
    users, relevant, exclude = group
    return float(ndcg_at_k(top_k(model.score(users), K, exclude), relevant, K))


def main() -> dict:
    start = time.perf_counter()
    data = prepare(generate_dataset(n_users=N_USERS, seed=SEED), TEST_FRACTION)
    X, groups = split_users(data)
    features = {"user_features": data.user_features, "item_features": data.item_features}
    print(f"seed {SEED}: {X.shape[0]} users x {X.shape[1]} items; validation users: "
          f"{len(groups['warm'][0])} warm, {len(groups['cold'][0])} cold")

    mf_rows = []
    for f in FACTORS:
        for reg in REGS:
            mf = MatrixFactorization(n_factors=f, reg=reg, seed=0).fit(X)
            mf_rows.append({"n_factors": f, "reg": reg, "warm NDCG@10": ndcg(mf, groups["warm"])})
    mf_table = pd.DataFrame(mf_rows)
    best_mf = mf_table.loc[mf_table["warm NDCG@10"].idxmax()]
    n_factors, reg = int(best_mf["n_factors"]), float(best_mf["reg"])
    print("\nMF, warm-user NDCG@10 (rows: factors, columns: lambda)")
    print(mf_table.pivot(index="n_factors", columns="reg", values="warm NDCG@10").round(4).to_string())

    hy_rows = []
    for alpha in ALPHAS:
        hybrid = Hybrid(alpha=alpha, mf=MatrixFactorization(n_factors=n_factors, reg=reg, seed=0))
        hybrid.fit(X, **features)
        warm, cold = ndcg(hybrid, groups["warm"]), ndcg(hybrid, groups["cold"])
        hy_rows.append({"alpha": alpha, "warm NDCG@10": warm, "cold NDCG@10": cold,
                        "mean": (warm + cold) / 2})
    hy_table = pd.DataFrame(hy_rows)
    alpha = float(hy_table.loc[hy_table["mean"].idxmax(), "alpha"])
    print(f"\nhybrid with MF({n_factors} factors, lambda = {reg:g}), NDCG@10")
    print(hy_table.round(4).to_string(index=False))

    chosen = {"n_factors": n_factors, "reg": reg, "alpha": alpha}
    print(f"\nchosen:   {n_factors} factors, lambda = {reg:g}, alpha = {alpha:g}")
    print(f"defaults: {DEFAULTS['n_factors']} factors, lambda = {DEFAULTS['reg']:g}, alpha = {DEFAULTS['alpha']:g}"
          f" -> {'the same' if chosen == DEFAULTS else 'different'}")
    seconds = time.perf_counter() - start
    print(f"{seconds:.1f} s")

    results = {
        "seed": SEED, "n_users": N_USERS, "test_fraction": TEST_FRACTION, "k": K,
        "n_warm": len(groups["warm"][0]), "n_cold": len(groups["cold"][0]),
        "mf_grid": mf_rows, "hybrid_grid": hy_rows,
        "chosen": chosen, "defaults": DEFAULTS, "defaults_selected": chosen == DEFAULTS,
        "seconds": seconds,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
