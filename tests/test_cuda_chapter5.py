"""Chapter 5's torch pieces run unchanged with device="cuda" (skipped where no GPU is present)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import recrl_lite  # noqa: F401
from recrl_lite.agents import SoftmaxBehaviourPolicy
from recrl_lite.agents.serving import Recommender
from recrl_lite.agents.topk_reinforce import OffPolicyReinforceAgent, OffPolicyReinforceConfig, train_offpolicy_reinforce
from recrl_lite.data import log_transitions
from recrl_lite.models.keras_equivalent import TwoTowerScorer

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


@needs_cuda
def test_offpolicy_reinforce_trains_and_serves_on_cuda():
    env = gym.make("recrl_lite/ECommerce-v0")
    logs = log_transitions(env, SoftmaxBehaviourPolicy(env), 1000, seed=0)
    agent = OffPolicyReinforceAgent(env.observation_space, env.action_space,
                                    OffPolicyReinforceConfig(K=4, epochs=2), seed=0, device="cuda")
    history = train_offpolicy_reinforce(logs, agent, seed=0)
    assert np.isfinite(history["policy_loss"].iloc[1:]).all()
    served = Recommender.from_policy(agent, env).recommend(logs.observations[:8], k=5)
    assert served.items.shape == (8, 5)


@needs_cuda
def test_two_tower_scores_on_cuda_match_cpu():
    torch.manual_seed(0)
    cpu = TwoTowerScorer(8, 11)
    gpu = TwoTowerScorer(8, 11).to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    u, i = torch.rand(4, 8), torch.rand(30, 11)
    torch.testing.assert_close(gpu.score_all_items(u.cuda(), i.cuda()).cpu(), cpu.score_all_items(u, i),
                               atol=1e-5, rtol=1e-4)
