"""How chapter 2's tuned defaults compare on a dataset no chapter evaluates on.

Chapter 2 evaluates its classic recommenders on datasets generated with seeds 0 to 4 (its
``DATA_SEEDS``). This script generates one more with seed 100 (same size, same behaviour policy),
applies the chapter's protocol to it (a temporal 80/20 split; warm users are scored on the new items
they click after the cut-off, with their training clicks excluded; cold users on all their clicks
after it), and uses that split as a validation set:

1. matrix factorisation, a grid of factors x lambda, scored by warm-user NDCG@10 (MF has nothing
   personal to offer a cold user);
2. the hybrid weight alpha, with the MF settings chosen in step 1, scored by the mean of the warm
   and the cold NDCG@10 (the hybrid is the chapter's cold-start model, so both groups count);
3. PureSVD, a grid of factors, scored by warm-user NDCG@10;
4. MF (observed), the rating-prediction model of the chapter's Cremonesi experiment (MF fitted on
   the shown cells only), a grid of factors x lambda scored by its RMSE on the warm users' test
   impressions (was each one clicked?), next to item CTR, the non-personalised click predictor.
   The experiment gives both MF models the same factors, so lambda is chosen at the factors of
   step 1 (the best cell of the whole grid is printed too). It also reports how personal each
   fitted model is: the standard deviation of the entries of its user factors P.

It prints the tables and the chosen values next to the chapter's defaults (4 factors and
lambda = 10 for both MF models, alpha = 0.8, 4 PureSVD factors), and writes
benchmarks/results/classic_tuning.json. It takes well under a minute on two cores. UserKNN's
k = 50 and ItemKNN's settings (no neighbourhood cut, no normalisation) are not tuned here.

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
from recrl_lite.models import Hybrid, MatrixFactorization, PureSVD, click_matrix, top_k

SEED = 100            # the tuning dataset; chapter 2 evaluates on seeds 0 to 4
N_USERS = 3000        # as in chapter 2
TEST_FRACTION = 0.2   # as in chapter 2
K = 10
FACTORS = (2, 4, 8, 16)
REGS = (1.0, 3.0, 10.0, 30.0)
ALPHAS = (0.2, 0.4, 0.6, 0.8, 1.0)
SVD_FACTORS = (2, 4, 8, 16)
RMSE_FACTORS = (2, 4, 8)
RMSE_REGS = (1.0, 3.0, 10.0, 30.0)
DEFAULTS = {"n_factors": 4, "reg": 10.0, "alpha": 0.8, "svd_factors": 4,
            "rmse_n_factors": 4, "rmse_reg": 10.0}
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

    svd_rows = [{"n_factors": f, "warm NDCG@10": ndcg(PureSVD(n_factors=f).fit(X), groups["warm"])}
                for f in SVD_FACTORS]
    svd_table = pd.DataFrame(svd_rows)
    svd_factors = int(svd_table.loc[svd_table["warm NDCG@10"].idxmax(), "n_factors"])
    print("\nPureSVD, warm-user NDCG@10")
    print(svd_table.round(4).to_string(index=False))

    # the Cremonesi experiment's rating model: MF on the shown cells, judged by RMSE on the warm
    # users' test impressions (chapter 2's protocol)
    shown = click_matrix(data.train.assign(shown=1), *X.shape, value="shown")
    users = groups["warm"][0]
    test = data.test[data.test["user_index"].isin(users)]
    su, si, y = (test[c].to_numpy() for c in ("user_index", "item_index", "click"))
    item_ctr = (data.train.groupby("item_index")["click"].mean()
                .reindex(range(X.shape[1]), fill_value=0.0).to_numpy())
    ctr_rmse = float(np.sqrt(np.mean((item_ctr[si] - y) ** 2)))
    rmse_rows = []
    for f in RMSE_FACTORS:
        for reg_ in RMSE_REGS:
            mf = MatrixFactorization(n_factors=f, reg=reg_, seed=0).fit(X, weights=shown)
            pred = mf.score(su)[np.arange(len(su)), si]
            rmse_rows.append({"n_factors": f, "reg": reg_,
                              "RMSE": float(np.sqrt(np.mean((pred - y) ** 2))),
                              "sd of P": float(mf.P_.std())})
    rmse_table = pd.DataFrame(rmse_rows)
    # both MF models of the experiment share their factors (only the cells in the loss differ), so
    # lambda is chosen for MF (observed) at MF's factor count; the best cell of the whole grid is
    # reported next to it
    at_f = rmse_table[rmse_table["n_factors"] == n_factors]
    rmse_n_factors, rmse_reg = n_factors, float(at_f.loc[at_f["RMSE"].idxmin(), "reg"])
    overall = rmse_table.loc[rmse_table["RMSE"].idxmin()]
    print(f"\nMF (observed), RMSE on {len(y)} test impressions of warm users "
          f"(rows: factors, columns: lambda); item CTR: {ctr_rmse:.4f}")
    print(rmse_table.pivot(index="n_factors", columns="reg", values="RMSE").round(4).to_string())
    print("standard deviation of the entries of P")
    print(rmse_table.pivot(index="n_factors", columns="reg", values="sd of P").round(4).to_string())
    print(f"best lambda at {n_factors} factors: {rmse_reg:g} (RMSE {at_f['RMSE'].min():.4f}); best of the "
          f"grid: {int(overall['n_factors'])} factors, lambda = {overall['reg']:g} (RMSE {overall['RMSE']:.4f})")

    chosen = {"n_factors": n_factors, "reg": reg, "alpha": alpha, "svd_factors": svd_factors,
              "rmse_n_factors": rmse_n_factors, "rmse_reg": rmse_reg}
    print(f"\nchosen:   MF {n_factors} factors, lambda = {reg:g}; alpha = {alpha:g}; "
          f"PureSVD {svd_factors} factors; MF (observed) {rmse_n_factors} factors, lambda = {rmse_reg:g}")
    print(f"defaults: MF {DEFAULTS['n_factors']} factors, lambda = {DEFAULTS['reg']:g}; "
          f"alpha = {DEFAULTS['alpha']:g}; PureSVD {DEFAULTS['svd_factors']} factors; "
          f"MF (observed) {DEFAULTS['rmse_n_factors']} factors, lambda = {DEFAULTS['rmse_reg']:g}")
    for key in DEFAULTS:
        print(f"  {key:<15} default {DEFAULTS[key]:<5g} chosen {chosen[key]:<5g} "
              f"{'same' if chosen[key] == DEFAULTS[key] else 'DIFFERENT'}")
    seconds = time.perf_counter() - start
    print(f"{seconds:.1f} s")

    results = {
        "seed": SEED, "n_users": N_USERS, "test_fraction": TEST_FRACTION, "k": K,
        "n_warm": len(groups["warm"][0]), "n_cold": len(groups["cold"][0]),
        "mf_grid": mf_rows, "hybrid_grid": hy_rows, "puresvd_grid": svd_rows,
        "rmse_grid": rmse_rows, "item_ctr_rmse": ctr_rmse, "n_test_impressions": int(len(y)),
        "rmse_best_of_grid": {"n_factors": int(overall["n_factors"]), "reg": float(overall["reg"]),
                              "RMSE": float(overall["RMSE"])},
        "chosen": chosen, "defaults": DEFAULTS, "defaults_selected": chosen == DEFAULTS,
        "seconds": seconds,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
