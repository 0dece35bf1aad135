"""recrl_lite: the companion library of "Reinforcement Learning for Recommender Systems, Done Right".

Importing the package registers the gymnasium id ``recrl_lite/ECommerce-v0``.
"""

import gymnasium as gym

from recrl_lite.envs import ENV_ID, ECommerceConfig, ECommerceEnv

__version__ = "0.1.0"

if ENV_ID not in gym.registry:
    # No max_episode_steps: the horizon lives in ECommerceConfig only (one place).
    # make_vec(ENV_ID, num_envs=N) builds the batched simulator (vector_entry_point), same kwargs as make
    gym.register(id=ENV_ID, entry_point="recrl_lite.envs.ecommerce:ECommerceEnv",
                 vector_entry_point="recrl_lite.envs.batched:BatchedECommerceEnv")

__all__ = ["ENV_ID", "ECommerceConfig", "ECommerceEnv", "__version__"]
