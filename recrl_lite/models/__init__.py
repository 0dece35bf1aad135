"""Models: the classic recommenders of chapter 2 (numpy), the torch state encoders and the reward
model of chapters 3 and 5, and the Keras-equivalent two-tower scorer of chapter 5
(:mod:`recrl_lite.models.keras_equivalent`, which imports Keras only when its Keras functions run)."""

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
from recrl_lite.models.encoders import GRUEncoder, MLPEncoder, TransformerEncoder, count_parameters
from recrl_lite.models.keras_equivalent import TwoTowerScorer
from recrl_lite.models.reward import (
    RewardModel,
    RewardModelPolicy,
    fit_reward_model,
    log_loss,
    probability_log_loss,
)

__all__ = [
    "ContentBased",
    "GRUEncoder",
    "Hybrid",
    "ItemKNN",
    "MLPEncoder",
    "MatrixFactorization",
    "Popularity",
    "PureSVD",
    "Recommender",
    "RewardModel",
    "RewardModelPolicy",
    "TransformerEncoder",
    "TwoTowerScorer",
    "UserKNN",
    "click_matrix",
    "count_parameters",
    "cosine_similarity",
    "fit_reward_model",
    "log_loss",
    "probability_log_loss",
    "top_k",
]
