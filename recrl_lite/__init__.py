"""recrl_lite: the companion library of "Reinforcement Learning for Recommender Systems, Done Right".

Importing the package registers the gymnasium id ``recrl_lite/ECommerce-v0``.
"""

import gymnasium as gym

from recrl_lite.envs import ENV_ID, ECommerceConfig, ECommerceEnv

__version__ = "0.1.0"

if ENV_ID not in gym.registry:
    # No max_episode_steps: the horizon lives in ECommerceConfig only (one place).
    gym.register(id=ENV_ID, entry_point="recrl_lite.envs.ecommerce:ECommerceEnv")

__all__ = ["ENV_ID", "ECommerceConfig", "ECommerceEnv", "__version__"]
