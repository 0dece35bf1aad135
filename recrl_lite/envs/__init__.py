"""Environments: the e-commerce simulator (chapter 1 onwards) and its wrappers."""

from recrl_lite.envs.batched import BatchedECommerceEnv
from recrl_lite.envs.ecommerce import (
    Catalogue,
    ECommerceConfig,
    ECommerceEnv,
    ObservationLayout,
    SlateSpace,
    UserProfile,
    sample_users,
)
from recrl_lite.envs.wrappers import DiscretiseObservation, MaskObservation

ENV_ID = "recrl_lite/ECommerce-v0"

__all__ = [
    "ENV_ID",
    "BatchedECommerceEnv",
    "Catalogue",
    "DiscretiseObservation",
    "ECommerceConfig",
    "ECommerceEnv",
    "MaskObservation",
    "ObservationLayout",
    "SlateSpace",
    "UserProfile",
    "sample_users",
]
