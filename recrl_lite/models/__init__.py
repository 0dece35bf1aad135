"""Models: the classic recommenders of chapter 2 (numpy), the torch state encoder and the reward
model of chapter 3."""

from recrl_lite.models.classic import (
    ContentBased,
    Hybrid,
    ItemKNN,
    MatrixFactorization,
    Popularity,
    PureSVD,
    Recommender,
    UserKNN,
    click_matrix,
    cosine_similarity,
    top_k,
)
from recrl_lite.models.encoders import MLPEncoder
from recrl_lite.models.reward import (
    RewardModel,
    RewardModelPolicy,
    fit_reward_model,
    log_loss,
    probability_log_loss,
)

__all__ = [
    "ContentBased",
    "Hybrid",
    "ItemKNN",
    "MLPEncoder",
    "MatrixFactorization",
    "Popularity",
    "PureSVD",
    "Recommender",
    "RewardModel",
    "RewardModelPolicy",
    "UserKNN",
    "click_matrix",
    "cosine_similarity",
    "fit_reward_model",
    "log_loss",
    "probability_log_loss",
    "top_k",
]
