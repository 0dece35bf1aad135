"""Agents and reference policies; all implement :class:`recrl_lite.agents.base.Policy`."""

from recrl_lite.agents.base import Policy, hyperparameter_table
from recrl_lite.agents.baselines import (
    LongHorizonReference,
    MyopicOracle,
    PopularityPolicy,
    RandomPolicy,
    SoftmaxBehaviourPolicy,
)
from recrl_lite.agents.serving import Exploration, Recommendations, Recommender, ServingPolicy, policy_scores
from recrl_lite.agents.topk_reinforce import (
    OffPolicyReinforceAgent,
    OffPolicyReinforceConfig,
    train_offpolicy_reinforce,
)
from recrl_lite.agents.recommenders import RecommenderPolicy, logged_user_profiles, replay_users
from recrl_lite.agents.tabular import QLearningAgent, SarsaAgent, TabularAgent, TabularConfig, train_tabular
from recrl_lite.agents.bandits import (
    BanditPolicy,
    BernoulliBandit,
    BetaBernoulliThompson,
    EpsilonGreedyBandit,
    LinearContextualBandit,
    LinearThompson,
    LinUCB,
    SimulatorContextualBandit,
    UCB1,
    run_bandit,
    run_contextual_bandit,
    train_bandit_on_sessions,
)

__all__ = [
    "LongHorizonReference",
    "MyopicOracle",
    "Policy",
    "hyperparameter_table",
    "PopularityPolicy",
    "RandomPolicy",
    "SoftmaxBehaviourPolicy",
    # classic recommenders served online (chapter 2)
    "RecommenderPolicy",
    "logged_user_profiles",
    "replay_users",
    # serving and learning from logs (chapter 5)
    "Exploration",
    "OffPolicyReinforceAgent",
    "OffPolicyReinforceConfig",
    "Recommendations",
    "Recommender",
    "ServingPolicy",
    "policy_scores",
    "train_offpolicy_reinforce",
    # tabular TD control (chapter 3)
    "QLearningAgent",
    "SarsaAgent",
    "TabularAgent",
    "TabularConfig",
    "train_tabular",
    # bandits (chapter 3)
    "BanditPolicy",
    "BernoulliBandit",
    "BetaBernoulliThompson",
    "EpsilonGreedyBandit",
    "LinUCB",
    "LinearContextualBandit",
    "LinearThompson",
    "SimulatorContextualBandit",
    "UCB1",
    "run_bandit",
    "run_contextual_bandit",
    "train_bandit_on_sessions",
]
