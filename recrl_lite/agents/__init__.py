"""Agents and reference policies; all implement :class:`recrl_lite.agents.base.Policy`."""

from recrl_lite.agents.base import Policy
from recrl_lite.agents.baselines import (
    LongHorizonReference,
    MyopicOracle,
    PopularityPolicy,
    RandomPolicy,
    SoftmaxBehaviourPolicy,
)

__all__ = [
    "LongHorizonReference",
    "MyopicOracle",
    "Policy",
    "PopularityPolicy",
    "RandomPolicy",
    "SoftmaxBehaviourPolicy",
]
