"""Models: the classic recommenders of chapter 2 (numpy), the torch state encoders and the reward
model of chapters 3 and 5, the Keras-equivalent two-tower scorer of chapter 5
(:mod:`recrl_lite.models.keras_equivalent`, which imports Keras only when its Keras functions run), and
chapter 6's pretrained language model (:mod:`recrl_lite.models.language`, which imports
sentence-transformers only when the model is loaded) with the two-tower item head that reads its
embeddings (:mod:`recrl_lite.models.item_heads`)."""

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
from recrl_lite.models.item_heads import PCAProjection, TwoTowerItemHead, build_item_head
from recrl_lite.models.keras_equivalent import TwoTowerScorer
from recrl_lite.models.language import cached_text_embeddings, encode_texts, load_text_encoder
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
    "PCAProjection",
    "Popularity",
    "PureSVD",
    "Recommender",
    "RewardModel",
    "RewardModelPolicy",
    "TransformerEncoder",
    "TwoTowerItemHead",
    "TwoTowerScorer",
    "UserKNN",
    "click_matrix",
    "count_parameters",
    "cosine_similarity",
    "encode_texts",
    "fit_reward_model",
    "load_text_encoder",
    "log_loss",
    "probability_log_loss",
    "build_item_head",
    "cached_text_embeddings",
    "top_k",
]
