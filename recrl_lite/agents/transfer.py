r"""Moving a trained agent to a catalogue it has never seen, and fine-tuning it there (chapter 6).

Introduced in chapter 6 ("Large models in the loop"), for its two experiments:

- **item cold start**: an agent trained on one catalogue serves a catalogue of *new* items in the
  same world (``ECommerceConfig(item_seed=...)``), first with no data about them ("day one"), then
  after N sessions of fine-tuning;
- **cross-domain transfer** (the article's §6.5): pretrained on items of some categories,
  fine-tuned on items of other categories (``ECommerceConfig(item_categories=...)``), against the
  same agent trained from scratch.

Both move the agent with :func:`deploy_on_catalogue`, which keeps everything the agent learned
except the per-item parameters, and measure it with :func:`fine_tuning_curve`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from recrl_lite.agents.reinforce import ReinforceAgent, train_reinforce
from recrl_lite.errors import invalid
from recrl_lite.evaluation.online import session_returns_in_lockstep
from recrl_lite.models.item_heads import TwoTowerItemHead


def item_head(agent: Any) -> TwoTowerItemHead:
    """The :class:`TwoTowerItemHead` of a REINFORCE (policy head) or DQN (Q head) agent."""
    net = getattr(agent, "net", None)
    head = getattr(net, "policy_head", None)
    if head is None:
        head = getattr(net, "q_head", None)
    if not isinstance(head, TwoTowerItemHead):
        raise invalid("agent", agent, "an agent with a TwoTowerItemHead",
                      why=f"it has no TwoTowerItemHead, its head is a {type(head).__name__}: build it with "
                          "head_factory=lambda width: TwoTowerItemHead(width, ...)")
    return head


def deploy_on_catalogue(agent: Any, item_features: np.ndarray | torch.Tensor | None = None) -> Any:
    """Point ``agent``'s item head at another catalogue (its item features, or None for an id-only head).

    The state encoder, value network and the head's towers are kept; the per-item parameters start
    again at zero (:meth:`TwoTowerItemHead.set_catalogue`). A DQN agent's target network follows.
    Returns the agent.
    """
    item_head(agent).set_catalogue(item_features)
    target = getattr(agent, "target_net", None)
    if target is not None:
        target.load_state_dict(agent.net.state_dict())
    return agent


def fine_tuning_curve(
    agent: ReinforceAgent,
    make_env: Callable[[], Any],
    sessions: Sequence[int],
    n_users: int = 200,
    eval_seed: int = 0,
    seed: int = 0,
    deterministic: bool = False,
) -> pd.DataFrame:
    """Evaluate ``agent`` on ``make_env()`` after each number of training sessions in ``sessions``.

    ``sessions`` is increasing and starts at 0 or more, each a multiple of the agent's
    ``batch_episodes`` (one REINFORCE iteration trains on that many sessions); 0 is "day one",
    before any training here. Every checkpoint evaluates the same ``n_users`` users
    (``eval_seed``), with the sampled policy or, if ``deterministic``, its argmax. Training stage
    ``k`` draws its users from ``SeedSequence([seed, k])``. Returns one row per checkpoint:
    ``sessions, env_steps, return`` (mean undiscounted session return).
    """
    if not isinstance(agent, ReinforceAgent):
        raise invalid("agent", agent, "a ReinforceAgent", why="fine_tuning_curve trains it with train_reinforce")
    checkpoints = [int(s) for s in sessions]
    batch = agent.config.batch_episodes
    if not checkpoints or any(s < 0 for s in checkpoints) or any(b <= a for a, b in zip(checkpoints, checkpoints[1:])):
        raise invalid("sessions", list(sessions), "a non-empty increasing list of counts >= 0")
    uneven = [s for s in checkpoints if s % batch]
    if uneven:
        raise invalid("sessions", list(sessions), f"multiples of the agent's batch_episodes={batch}",
                      why=f"{uneven} are not; one training iteration uses {batch} sessions")
    if n_users < 1:
        raise invalid("n_users", n_users, "an int in [1, inf)")
    eval_envs = [make_env() for _ in range(n_users)]
    saved_config, saved_mode = agent.config, agent.deterministic
    rows, done, env_steps = [], 0, 0
    try:
        for stage, target in enumerate(checkpoints):
            if target > done:
                agent.config = replace(saved_config, n_iterations=(target - done) // batch, total_steps=None,
                                       time_budget_s=None)
                agent.deterministic = False
                history = train_reinforce(agent, make_env, seed=int(np.random.SeedSequence([seed, stage]).generate_state(1)[0]))
                env_steps += int(history["steps"].sum())
                done = target
            agent.deterministic = deterministic
            training_rng = agent.rng  # evaluation reseeds the agent; training must not notice
            returns = session_returns_in_lockstep(agent, eval_envs, eval_seed)
            agent.rng = training_rng
            rows.append({"sessions": target, "env_steps": env_steps, "return": float(returns.mean())})
    finally:
        agent.config, agent.deterministic = saved_config, saved_mode
    return pd.DataFrame(rows, columns=["sessions", "env_steps", "return"])


__all__ = ["deploy_on_catalogue", "fine_tuning_curve", "item_head"]
