"""Evaluation: online rollouts with confidence intervals, ranking metrics, statistics, off-policy
estimators (:mod:`recrl_lite.evaluation.ope`, chapter 5) and linear probes of item text (chapter 6)."""

from recrl_lite.evaluation.metrics import (
    RankingUsers,
    catalogue_coverage,
    category_diversity,
    hit_rate_at_k,
    ndcg_at_k,
    split_test_users,
)
from recrl_lite.evaluation.online import (
    SESSION_METRICS,
    LearningCurve,
    compare_policies,
    evaluate_policy,
    session_returns_in_lockstep,
    summarize,
)
from recrl_lite.evaluation import ope
from recrl_lite.evaluation.probes import bag_of_words_features, linear_probe_auc
from recrl_lite.evaluation.stats import intervals_disjoint, mean_ci, paired_difference_ci, t_quantile_975

__all__ = [
    "SESSION_METRICS",
    "LearningCurve",
    "RankingUsers",
    "bag_of_words_features",
    "catalogue_coverage",
    "category_diversity",
    "compare_policies",
    "evaluate_policy",
    "hit_rate_at_k",
    "intervals_disjoint",
    "linear_probe_auc",
    "mean_ci",
    "ndcg_at_k",
    "ope",
    "paired_difference_ci",
    "session_returns_in_lockstep",
    "split_test_users",
    "summarize",
    "t_quantile_975",
]
