"""Models: the classic recommenders of chapter 2 (numpy); neural encoders and heads come later."""

from recrl_lite.models.classic import (
    ContentBased,
    Hybrid,
    ItemKNN,
    MatrixFactorization,
    Popularity,
    Recommender,
    UserKNN,
    click_matrix,
    cosine_similarity,
    top_k,
)

__all__ = [
    "ContentBased",
    "Hybrid",
    "ItemKNN",
    "MatrixFactorization",
    "Popularity",
    "Recommender",
    "UserKNN",
    "click_matrix",
    "cosine_similarity",
    "top_k",
]
