r"""Deep Q-Network with the improvements that make it work here (chapter 3).

Mnih et al. (2015): a Q-network :math:`Q_\theta(s, \cdot)` with one output per item, trained on
minibatches from a replay buffer towards targets from a periodically copied target network
:math:`Q_{\bar\theta}`, with the Huber loss. Two additions:

- **n-step returns** (Sutton & Barto 2018, §7.1; Hessel et al. 2018): the target is
  :math:`\sum_{k=0}^{n-1}\gamma^k R_{t+k+1} + \gamma^n (1 - \text{terminated})\, Q_{\bar\theta}(S_{t+n}, a^*)`.
  On the simulator, one-step targets cannot carry the cost of clickbait (a shorter session, many
  steps later) back to the recommendation that caused it within a CPU budget; ten-step targets can.
- **Double DQN** (van Hasselt, Guez & Silver 2016): :math:`a^* = \arg\max_a Q_\theta(S_{t+n}, a)`
  is chosen by the online network and evaluated by the target network, which curbs the
  max-operator's over-estimation.

``terminated`` stops bootstrapping; ``truncated`` (the session's horizon) does not (AUDIT E10).
The state encoder is pluggable: any ``nn.Module`` with an ``output_dim`` attribute (the GRU and
Transformer encoders of chapter 5, ``recrl_lite.models.encoders``).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from recrl_lite.agents.base import TorchPolicy, TrainingClock
from recrl_lite.errors import describe, invalid, invalid_fields
from recrl_lite.models.encoders import MLPEncoder, encoder_width
from recrl_lite.models.item_heads import build_item_head


@dataclass
class DQNConfig:
    """Hyperparameters of :func:`train_dqn`."""

    total_steps: int = 500_000
    """Environment steps over all parallel envs."""
    time_budget_s: float | None = None
    """Stop early after this many CPU-seconds of training (None: no limit). CPU time of this process,
    not wall time, so a busy machine does not shrink the budget; evaluation callbacks do not count."""
    n_envs: int = 16
    """Environments stepped in lockstep (one batched forward pass per step)."""
    buffer_size: int = 200_000
    """Replay capacity in transitions."""
    batch_size: int = 256
    """Minibatch size of each gradient step."""
    learning_rate: float = 1e-3
    """Adam step size."""
    gamma: float = 0.99
    """Discount factor."""
    n_step: int = 10
    """Length of the multi-step return in the target (1 gives the original DQN)."""
    double: bool = True
    """Double DQN targets."""
    target_update_interval: int = 500
    """Gradient steps between copies of the online network into the target network."""
    epsilon_start: float = 1.0
    """Initial exploration rate."""
    epsilon_end: float = 0.05
    """Final exploration rate."""
    exploration_fraction: float = 0.2
    """Fraction of ``total_steps`` over which ε decays linearly."""
    learning_starts: int = 5_000
    """Transitions collected before the first gradient step."""
    train_every: int = 1
    """Lockstep env steps (each ``n_envs`` transitions) between gradient steps."""
    hidden: tuple[int, ...] = (128, 128)
    """Widths of the default MLP encoder."""
    max_grad_norm: float = 10.0
    """Gradient clipping threshold."""

    def __post_init__(self) -> None:
        problems = [f"{name}={describe(getattr(self, name))}; expected an int in [1, inf)"
                    for name in ("n_step", "n_envs", "batch_size") if getattr(self, name) < 1]
        if not 0 <= self.gamma <= 1:
            problems.append(f"gamma={describe(self.gamma)}; expected a number in [0, 1]")
        if not 0 <= self.epsilon_end <= self.epsilon_start <= 1:
            problems.append(f"epsilon_start={describe(self.epsilon_start)}, epsilon_end={describe(self.epsilon_end)}; "
                            "expected 0 <= epsilon_end <= epsilon_start <= 1")
        if problems:
            raise invalid_fields("DQNConfig", problems)

    def epsilon(self, step: int) -> float:
        """Linearly decaying ε at environment step ``step``."""
        fraction = min(1.0, step / max(1.0, self.exploration_fraction * self.total_steps))
        return self.epsilon_start + fraction * (self.epsilon_end - self.epsilon_start)


class QNetwork(nn.Module):
    """Encoder φ(s) followed by a linear Q head with one value per item."""

    def __init__(self, encoder: nn.Module, n_actions: int, q_head: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.q_head = nn.Linear(encoder_width(encoder), n_actions) if q_head is None else q_head

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return self.q_head(self.encoder(observation))


class NStepReplayBuffer:
    """Circular buffer of n-step transitions (s, a, R^{(n)}, s', γ^m·(1 - terminated))."""

    def __init__(self, capacity: int, observation_dim: int, n_step: int, gamma: float, n_envs: int):
        self.capacity, self.n_step, self.gamma = capacity, n_step, gamma
        self.obs = np.zeros((capacity, observation_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, observation_dim), dtype=np.float32)
        self.action = np.zeros(capacity, dtype=np.int64)
        self.ret = np.zeros(capacity, dtype=np.float32)
        self.discount = np.zeros(capacity, dtype=np.float32)
        self.size = self.pos = 0
        self._pending: list[deque[tuple[np.ndarray, int, float]]] = [deque() for _ in range(n_envs)]

    def _store(self, obs: np.ndarray, action: int, ret: float, next_obs: np.ndarray, discount: float) -> None:
        i = self.pos
        self.obs[i], self.action[i], self.ret[i], self.next_obs[i], self.discount[i] = obs, action, ret, next_obs, discount
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _emit(self, pending: deque, next_obs: np.ndarray, bootstrap: bool) -> None:
        ret = 0.0
        for k, (_, _, r) in enumerate(pending):
            ret += self.gamma**k * r
        obs, action, _ = pending.popleft()
        discount = self.gamma ** (len(pending) + 1) if bootstrap else 0.0
        self._store(obs, action, ret, next_obs, discount)

    def add(self, env_index: int, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray,
            terminated: bool, truncated: bool) -> None:
        """Record one step of env ``env_index``; emits n-step transitions as they complete."""
        pending = self._pending[env_index]
        pending.append((np.array(obs, copy=True), action, reward))  # callers may reuse the array
        if terminated or truncated:
            while pending:  # flush the episode's tail: shorter returns, bootstrap only if truncated
                self._emit(pending, next_obs, bootstrap=not terminated)
        elif len(pending) == self.n_step:
            self._emit(pending, next_obs, bootstrap=True)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        idx = rng.integers(0, self.size, batch_size)
        return self.obs[idx], self.action[idx], self.ret[idx], self.next_obs[idx], self.discount[idx]


class DQNAgent(TorchPolicy):
    """ε-greedy policy over a Q-network; see the module docstring for the algorithm."""

    name = "DQN"

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Discrete,
        config: DQNConfig | None = None,
        seed: int | None = None,
        device: str | torch.device = "cpu",
        encoder: nn.Module | None = None,
        encoder_factory: Callable[[], nn.Module] | None = None,
        head_factory: Callable[[int], nn.Module] | None = None,
    ):
        """The Q-network's encoder: ``encoder``, or ``encoder_factory()`` called after the agent seeds
        torch (so ``seed`` fixes its initial weights), or by default an MLPEncoder of ``config.hidden``.
        ``head_factory(width)``, if given, builds the Q head (one value per item) from the encoder's
        width, e.g. a :class:`recrl_lite.models.TwoTowerItemHead` on item text (chapter 6)."""
        super().__init__()
        if not isinstance(action_space, gym.spaces.Discrete):
            raise invalid("action_space", action_space, "a Discrete space", why="DQNAgent has one Q-value per item")
        if encoder is not None and encoder_factory is not None:
            raise invalid("encoder_factory", encoder_factory, "None when encoder is given",
                          why="pass either encoder or encoder_factory to DQNAgent, not both")
        self.config = config or DQNConfig()
        self.observation_dim = int(observation_space.shape[0])
        self.n_actions = int(action_space.n)
        self.device = torch.device(device)
        self.seed(seed)
        if seed is not None:
            torch.manual_seed(seed)
        if encoder_factory is not None:
            if not callable(encoder_factory) or isinstance(encoder_factory, nn.Module):
                raise invalid("encoder_factory", encoder_factory, "a function returning an nn.Module",
                              why=f"got a {type(encoder_factory).__name__}; pass a module as encoder=")
            encoder = encoder_factory()
        encoder = encoder if encoder is not None else MLPEncoder(observation_space, self.config.hidden)
        q_head = None if head_factory is None else build_item_head(head_factory, encoder_width(encoder), self.n_actions)
        self.net = QNetwork(encoder, self.n_actions, q_head).to(self.device)
        self.target_net = _copy_network(self.net)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.config.learning_rate)
        self.epsilon = 0.0  # evaluation default: greedy
        self.gradient_steps = 0

    def q_values(self, observations: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.as_tensor(observations, dtype=torch.float32, device=self.device)
            return self.net(x).cpu().numpy()

    def act_batch(self, observations: np.ndarray) -> np.ndarray:
        """ε-greedy actions for a batch, ties in Q broken by the first maximum (ties have measure zero)."""
        actions = self.q_values(observations).argmax(axis=1)
        explore = self.rng.random(actions.shape[0]) < self.epsilon
        if explore.any():
            actions[explore] = self.rng.integers(0, self.n_actions, int(explore.sum()))
        return actions

    def act(self, observation: np.ndarray) -> int:
        return int(self.act_batch(observation[None])[0])

    def update(self, obs: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor,  # type: ignore[override]
               next_obs: torch.Tensor, discounts: torch.Tensor) -> dict[str, float]:
        """One gradient step on the Huber loss to n-step (Double) DQN targets."""
        cfg = self.config
        with torch.no_grad():
            next_q_target = self.target_net(next_obs)
            if cfg.double:
                best = self.net(next_obs).argmax(dim=1, keepdim=True)
            else:
                best = next_q_target.argmax(dim=1, keepdim=True)
            targets = returns + discounts * next_q_target.gather(1, best).squeeze(1)
        q = self.net(obs).gather(1, actions[:, None]).squeeze(1)
        loss = nn.functional.smooth_l1_loss(q, targets)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.gradient_steps += 1
        if self.gradient_steps % cfg.target_update_interval == 0:
            self.target_net.load_state_dict(self.net.state_dict())
        return {"loss": loss.item(), "q_mean": q.mean().item()}


def _copy_network(net: nn.Module) -> nn.Module:
    target = copy.deepcopy(net)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


def train_dqn(
    agent: DQNAgent,
    make_env: Callable[[], gym.Env],
    seed: int = 0,
    progress: bool = False,
    callback: Callable[[DQNAgent, int], None] | None = None,
) -> pd.DataFrame:
    """Train ``agent`` with its config; returns one row per finished episode.

    ``callback(agent, env_steps)``, if given, runs before the first step and after every lockstep
    step (e.g. :class:`recrl_lite.evaluation.LearningCurve`); its time is not part of ``seconds``
    or of the time budget. ``seconds`` is the CPU time of training so far.
    """
    cfg = agent.config
    envs = [make_env() for _ in range(cfg.n_envs)]
    seeds = np.random.SeedSequence(seed).generate_state(cfg.n_envs).tolist()
    obs = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, seeds)])
    buffer = NStepReplayBuffer(cfg.buffer_size, agent.observation_dim, cfg.n_step, cfg.gamma, cfg.n_envs)
    ep_return = np.zeros(cfg.n_envs)
    ep_length = np.zeros(cfg.n_envs, dtype=int)
    history: list[dict[str, float]] = []
    stats: dict[str, float] = {}
    clock = TrainingClock(agent, callback)
    step = 0
    clock.callback_at(0)
    to_t = lambda x, dtype=torch.float32: torch.as_tensor(x, dtype=dtype, device=agent.device)  # noqa: E731
    with tqdm(total=cfg.total_steps, desc="DQN", disable=not progress, mininterval=1.0) as bar:
        while step < cfg.total_steps:
            agent.epsilon = cfg.epsilon(step)
            actions = agent.act_batch(obs)
            for i, env in enumerate(envs):
                next_obs, reward, terminated, truncated, _ = env.step(int(actions[i]))
                buffer.add(i, obs[i], int(actions[i]), float(reward), next_obs, terminated, truncated)
                ep_return[i] += reward
                ep_length[i] += 1
                if terminated or truncated:
                    history.append({"env_steps": step + i + 1, "episode_return": ep_return[i],
                                    "episode_length": ep_length[i], "epsilon": agent.epsilon,
                                    "seconds": clock.seconds, **stats})
                    ep_return[i], ep_length[i] = 0.0, 0
                    next_obs, _ = env.reset()
                obs[i] = next_obs
            step += cfg.n_envs
            bar.update(cfg.n_envs)
            if buffer.size >= cfg.learning_starts and (step // cfg.n_envs) % cfg.train_every == 0:
                o, a, r, o2, d = buffer.sample(cfg.batch_size, agent.rng)
                stats = agent.update(to_t(o), to_t(a, torch.int64), to_t(r), to_t(o2), to_t(d))
            clock.callback_at(step)
            if cfg.time_budget_s is not None and clock.seconds > cfg.time_budget_s:
                break
    agent.epsilon = 0.0
    return pd.DataFrame(history)


__all__ = ["DQNAgent", "DQNConfig", "NStepReplayBuffer", "QNetwork", "train_dqn"]
