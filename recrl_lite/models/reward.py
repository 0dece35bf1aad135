r"""The reward model :math:`\hat r_w(s, a)`: a click model fitted on logged data (chapters 3 and 4).

Introduced in chapter 3 (the source article's §3.3.3, done right) and used again in chapter 4's
deep formulation. A click depends on *which* item is shown, so the model takes the action as well
as the state (AUDIT E8: the article predicts the reward from the state alone, and writes
:math:`r = \phi(r)`):

.. math:: \hat r_w(s, a) = \sigma\big(\langle U \phi(s), e_a \rangle + c_a + w^\top \phi(s) + b\big),

with an encoder :math:`\phi` (:class:`~recrl_lite.models.encoders.MLPEncoder`), an item embedding
:math:`e_a`, an item bias :math:`c_a` (its appeal) and a state term. ``use_action=False`` keeps
only the state term: the article's model, kept for comparison. It is trained by
:func:`fit_reward_model` on the log-loss (binary cross-entropy) of logged ``(s, a, click)`` tuples.

:class:`RewardModelPolicy` recommends :math:`\arg\max_a \hat r(s, a)`: a learned *myopic* policy,
the best a perfect click model can do one step at a time (compare
:class:`~recrl_lite.agents.baselines.MyopicOracle`).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from torch import nn

from recrl_lite.agents.base import TorchPolicy
from recrl_lite.errors import invalid
from recrl_lite.models.encoders import MLPEncoder


class RewardModel(nn.Module):
    r"""Logit of :math:`\hat r(s, a) = \sigma(\langle U\phi(s), e_a\rangle + c_a + w^\top\phi(s) + b)`."""

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        n_items: int,
        dim: int = 8,
        hidden: tuple[int, ...] = (32,),
        use_action: bool = True,
    ):
        super().__init__()
        if n_items < 1:
            raise invalid("n_items", n_items, "an int >= 1")
        if dim < 1:
            raise invalid("dim", dim, "an int >= 1")
        self.n_items = int(n_items)
        self.use_action = bool(use_action)
        self.phi = MLPEncoder(observation_space, hidden=hidden)
        self.to_user = nn.Linear(self.phi.output_dim, dim)      # U
        self.item = nn.Embedding(n_items, dim)                   # e_a
        self.item_bias = nn.Embedding(n_items, 1)                # c_a
        self.state_term = nn.Linear(self.phi.output_dim, 1)      # w . phi(s) + b
        nn.init.normal_(self.item.weight, std=0.1)
        nn.init.zeros_(self.item_bias.weight)

    def forward(self, observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of (observation, item) pairs, shape (batch,)."""
        if action.dtype not in (torch.int32, torch.int64):
            raise invalid("action", action, "integer item indices (int32 or int64)")
        if action.numel() and (int(action.min()) < 0 or int(action.max()) >= self.n_items):
            raise invalid("action", action, f"item indices in [0, {self.n_items - 1}]",
                          why=f"got values in [{int(action.min())}, {int(action.max())}]")
        h = self.phi(observation)
        logit = self.state_term(h).squeeze(-1)
        if self.use_action:
            logit = logit + (self.to_user(h) * self.item(action)).sum(-1) + self.item_bias(action).squeeze(-1)
        return logit

    def all_items(self, observation: torch.Tensor) -> torch.Tensor:
        """Logits of every item for each observation, shape (batch, n_items)."""
        h = self.phi(observation)
        logits = self.state_term(h)  # (batch, 1), broadcast over the items
        if self.use_action:
            logits = logits + self.to_user(h) @ self.item.weight.T + self.item_bias.weight.T
        return logits.expand(-1, self.n_items)


def fit_reward_model(
    model: RewardModel,
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    epochs: int = 10,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> pd.DataFrame:
    """Fit ``model`` by Adam on the log-loss of binary rewards; one row per epoch (``epoch, loss``).

    ``rewards`` must be 0/1 (clicks); all three arrays must have one row per logged step. ``seed``
    fixes the order of the minibatches; seed torch before building ``model`` to fix its weights.
    """
    obs = torch.as_tensor(np.asarray(observations), dtype=torch.float32)
    act = torch.as_tensor(np.asarray(actions), dtype=torch.int64)
    y = torch.as_tensor(np.asarray(rewards), dtype=torch.float32)
    if obs.ndim != 2:
        raise invalid("observations", obs, "an (n, d) array, one row per logged step")
    if act.shape != (obs.shape[0],):
        raise invalid("actions", act, f"shape ({obs.shape[0]},), one action per observation")
    if y.shape != (obs.shape[0],):
        raise invalid("rewards", y, f"shape ({obs.shape[0]},), one reward per observation")
    if obs.shape[0] == 0:
        raise invalid("observations", obs, "at least one logged step to fit the reward model on")
    if not torch.all((y == 0) | (y == 1)):
        raise invalid("rewards", y, "binary clicks (0 or 1) for the log-loss",
                      why=f"{int((~((y == 0) | (y == 1))).sum())} other values")
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    bce = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        total = 0.0
        for idx in torch.randperm(obs.shape[0], generator=generator).split(batch_size):
            optimizer.zero_grad()
            loss = bce(model(obs[idx], act[idx]), y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * idx.shape[0]
        history.append({"epoch": epoch + 1, "loss": total / obs.shape[0]})
    return pd.DataFrame(history)


def log_loss(model: RewardModel, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> float:
    """Mean binary cross-entropy of ``model`` on logged tuples (lower is better)."""
    with torch.no_grad():
        logits = model(torch.as_tensor(np.asarray(observations), dtype=torch.float32),
                       torch.as_tensor(np.asarray(actions), dtype=torch.int64))
        return nn.functional.binary_cross_entropy_with_logits(
            logits, torch.as_tensor(np.asarray(rewards), dtype=torch.float32)).item()


def probability_log_loss(probabilities: np.ndarray, outcomes: np.ndarray) -> float:
    """Mean binary cross-entropy of click probabilities against 0/1 outcomes.

    For predictions that are not a :class:`RewardModel`: a constant click rate, or the simulator's
    true probabilities (the best log-loss any model can reach on the same clicks).
    """
    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(outcomes, dtype=float)
    if p.shape != y.shape:
        raise invalid("outcomes", y, f"the shape of probabilities, {p.shape}")
    if not np.all((p > 0.0) & (p < 1.0)):
        raise invalid("probabilities", p, "values strictly between 0 and 1",
                      why=f"{int((~((p > 0.0) & (p < 1.0))).sum())} outside (0, 1)")
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


class RewardModelPolicy(TorchPolicy):
    """Recommend the item with the highest predicted click probability: a learned myopic policy.

    Checkpoints hold the model's weights and shapes (a checkpoint of another shape is refused).
    """

    name = "reward model (greedy)"

    def __init__(self, model: RewardModel):
        super().__init__()
        self.model = self.net = model
        self.observation_dim = int(model.phi.input_dim)
        self.n_actions = model.n_items
        self.device = next(model.parameters()).device  # act on the device the model lives on

    def scores(self, observation: np.ndarray) -> np.ndarray:
        """Predicted click probabilities of every item, shape (n_items,)."""
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(observation, dtype=np.float32)[None], device=self.device)
            return torch.sigmoid(self.model.all_items(x))[0].cpu().numpy()

    def act(self, observation: np.ndarray) -> int:
        return int(np.argmax(self.scores(observation)))


__all__ = ["RewardModel", "RewardModelPolicy", "fit_reward_model", "log_loss", "probability_log_loss"]
