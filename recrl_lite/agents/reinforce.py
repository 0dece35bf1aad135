r"""REINFORCE with a baseline: Monte Carlo policy gradient (chapter 3; the maths is in chapter 4).

Williams (1992); Sutton & Barto (2018), §13.3–13.4. For the discounted objective
:math:`J(\theta) = \mathbb E[G_0]`, the policy gradient theorem (Sutton, McAllester, Singh &
Mansour, 1999) gives

.. math:: \nabla_\theta J(\theta) = \mathbb E_\pi\big[\textstyle\sum_t \gamma^t (G_t - b(S_t))\,
          \nabla_\theta \ln \pi_\theta(A_t \mid S_t)\big],

and any baseline :math:`b(s)` that does not depend on the action leaves it unbiased, because
:math:`\mathbb E_{a\sim\pi}[\nabla \ln \pi(a|s)] = 0`. Here :math:`b = V_w(s)`, a separate value
network fitted to the returns. As in most implementations, :class:`ReinforceAgent` drops the
:math:`\gamma^t` factor (it would down-weight late steps of a session), so its update follows a
direction that is not exactly :math:`\nabla J`; chapter 4 checks the exact estimator, with
:math:`\gamma^t`, against the theorem.

Two versions: :class:`TabularSoftmaxPolicy`, a numpy softmax table for the exact checks of
chapter 4, and :class:`ReinforceAgent`, a torch softmax policy over items on an encoder
:math:`\phi(s)`, trained by :func:`train_reinforce` on batches of whole sessions. Its encoders are
pluggable (``encoder_factory``; the GRU and Transformer encoders of chapter 5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from recrl_lite.agents.base import TorchPolicy, TrainingClock
from recrl_lite.errors import check_choice, describe, invalid, invalid_fields
from recrl_lite.models.encoders import MLPEncoder, encoder_width
from recrl_lite.models.item_heads import build_item_head


# ----------------------------------------------------------------------------- tabular (chapter 4)
class TabularSoftmaxPolicy:
    r"""π(a|s) = softmax(θ[s])_a with the exact score function (AUDIT E6):
    :math:`\partial \ln \pi(a|s) / \partial \theta_{s,b} = \mathbb 1[a=b] - \pi(b|s)`.
    """

    def __init__(self, n_states: int, n_actions: int, theta: np.ndarray | None = None):
        self.theta = np.zeros((n_states, n_actions)) if theta is None else np.array(theta, dtype=float)
        if self.theta.shape != (n_states, n_actions):
            raise invalid("theta shape", self.theta.shape, f"({n_states}, {n_actions}) = (n_states, n_actions)")

    def probabilities(self, state: int | None = None) -> np.ndarray:
        z = self.theta if state is None else self.theta[state]
        z = z - z.max(axis=-1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=-1, keepdims=True)

    def grad_log_prob(self, state: int, action: int) -> np.ndarray:
        """∇_θ ln π(action|state), a matrix shaped like θ (zero outside row ``state``)."""
        grad = np.zeros_like(self.theta)
        grad[state] = -self.probabilities(state)
        grad[state, action] += 1.0
        return grad

    def sample(self, state: int, rng: np.random.Generator) -> int:
        return int(rng.choice(self.theta.shape[1], p=self.probabilities(state)))


# ----------------------------------------------------------------------------- deep (chapter 3)
@dataclass
class ReinforceConfig:
    """Hyperparameters of :func:`train_reinforce`."""

    n_iterations: int = 4000
    """Gradient steps; each uses ``batch_episodes`` fresh sessions."""
    total_steps: int | None = None
    """Stop early once this many environment steps have been used (None: no limit)."""
    time_budget_s: float | None = None
    """Stop early after this many CPU-seconds of training (None: no limit). CPU time of this process,
    not wall time, so a busy machine does not shrink the budget; evaluation callbacks do not count."""
    batch_episodes: int = 32
    """Sessions collected in lockstep per gradient step."""
    gamma: float = 0.99
    """Discount factor of the returns."""
    learning_rate: float = 1e-3
    """Adam step size."""
    hidden: tuple[int, ...] = (128, 128)
    """Widths of the MLP encoder."""
    baseline: str = "value"
    """"value" (learned V(s)), "mean" (batch mean return) or "none"."""
    value_coef: float = 0.5
    """Weight of the value-regression loss."""
    entropy_coef: float = 0.01
    """Entropy bonus, keeps the softmax from collapsing early."""
    normalize_advantages: bool = True
    """Standardise G - b within each batch (scale-free step sizes)."""
    max_grad_norm: float = 1.0
    """Gradient clipping threshold."""

    def __post_init__(self) -> None:
        check_choice("ReinforceConfig.baseline", self.baseline, ("value", "mean", "none"))
        problems = [f"{name}={describe(getattr(self, name))}; expected an int in [1, inf)"
                    for name in ("batch_episodes", "n_iterations") if getattr(self, name) < 1]
        if not 0 <= self.gamma <= 1:
            problems.append(f"gamma={describe(self.gamma)}; expected a number in [0, 1]")
        if self.total_steps is not None and self.total_steps < 1:
            problems.append(f"total_steps={describe(self.total_steps)}; expected an int in [1, inf) or None")
        if problems:
            raise invalid_fields("ReinforceConfig", problems)


class PolicyValueNet(nn.Module):
    """A softmax policy over items and a separate value network V(s), each on its own encoder.

    Separate encoders keep the value regression (squared errors of returns in the tens) from
    dominating the gradient of the policy's shared features, as in CleanRL's actor-critic agents.
    """

    def __init__(self, policy_encoder: nn.Module, value_encoder: nn.Module, n_actions: int,
                 policy_head: nn.Module | None = None):
        super().__init__()
        self.policy_encoder = policy_encoder
        self.value_encoder = value_encoder
        self.policy_head = nn.Linear(encoder_width(policy_encoder), n_actions) if policy_head is None else policy_head
        self.value_head = nn.Linear(encoder_width(value_encoder), 1)

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.policy_head(self.policy_encoder(observation))
        return logits, self.value_head(self.value_encoder(observation)).squeeze(-1)


class ReinforceAgent(TorchPolicy):
    """Softmax policy over items, trained by REINFORCE with a learned value baseline."""

    name = "REINFORCE"

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Discrete,
        config: ReinforceConfig | None = None,
        seed: int | None = None,
        device: str | torch.device = "cpu",
        encoder_factory: Callable[[], nn.Module] | None = None,
        head_factory: Callable[[int], nn.Module] | None = None,
    ):
        """``encoder_factory()``, if given, builds each of the two encoders (policy, then value; it is
        called after the agent seeds torch, so ``seed`` fixes their initial weights), for example
        ``lambda: GRUEncoder.from_env(env)`` (chapter 5). Default: two MLPEncoders of ``config.hidden``.

        ``head_factory(width)``, if given, builds the policy's item head from the encoder's width: a
        module mapping ``(batch, width)`` features to ``(batch, n_items)`` logits, for example a
        :class:`recrl_lite.models.TwoTowerItemHead` on item text (chapter 6). Default: one linear
        output per item."""
        super().__init__()
        if not isinstance(action_space, gym.spaces.Discrete):
            raise invalid("action_space", action_space, "a Discrete space", why="the policy is a softmax over items")
        if encoder_factory is not None and (not callable(encoder_factory) or isinstance(encoder_factory, nn.Module)):
            raise invalid("encoder_factory", encoder_factory, "a function returning a new nn.Module",
                          why=f"got a {type(encoder_factory).__name__}; e.g. lambda: GRUEncoder.from_env(env)")
        self.config = config or ReinforceConfig()
        self.observation_dim = int(observation_space.shape[0])
        self.n_actions = int(action_space.n)
        self.device = torch.device(device)
        self.seed(seed)
        if seed is not None:
            torch.manual_seed(seed)
        if encoder_factory is None:
            policy_encoder: nn.Module = MLPEncoder(observation_space, self.config.hidden)
            value_encoder: nn.Module = MLPEncoder(observation_space, self.config.hidden)
        else:
            policy_encoder, value_encoder = encoder_factory(), encoder_factory()
            if policy_encoder is value_encoder or not all(isinstance(e, nn.Module) for e in (policy_encoder, value_encoder)):
                got = "the same object twice" if policy_encoder is value_encoder else \
                    f"{type(policy_encoder).__name__} and {type(value_encoder).__name__}"
                raise invalid("encoder_factory", encoder_factory, "a function returning a new nn.Module on every call",
                              why=f"the policy and the value network each get their own; it returned {got}")
        policy_head = None if head_factory is None else build_item_head(head_factory, encoder_width(policy_encoder),
                                                                    self.n_actions)
        self.net = PolicyValueNet(policy_encoder, value_encoder, self.n_actions, policy_head).to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.config.learning_rate)
        self.deterministic = False

    def _logits(self, observations: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            x = torch.as_tensor(observations, dtype=torch.float32, device=self.device)
            return self.net(x)[0]

    def act_batch(self, observations: np.ndarray, deterministic: bool | None = None) -> np.ndarray:
        """Actions for a batch of observations (sampled, or argmax when deterministic)."""
        logits = self._logits(observations).cpu().numpy().astype(np.float64)
        if self.deterministic if deterministic is None else deterministic:
            return logits.argmax(axis=1)
        # Gumbel-max: one vectorised draw from the softmax, using the agent's own generator
        return (logits - np.log(-np.log(self.rng.random(logits.shape)))).argmax(axis=1)

    def act(self, observation: np.ndarray) -> int:
        return int(self.act_batch(observation[None])[0])

    def update(self, observations: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:  # type: ignore[override]
        """One policy-gradient step on a batch of (s_t, a_t, G_t) from whole episodes."""
        cfg = self.config
        logits, values = self.net(observations)
        log_probs = torch.log_softmax(logits, dim=1)
        chosen = log_probs.gather(1, actions[:, None]).squeeze(1)
        if cfg.baseline == "value":
            advantages = returns - values.detach()
        elif cfg.baseline == "mean":
            advantages = returns - returns.mean()
        else:
            advantages = returns.clone()
        if cfg.normalize_advantages and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(advantages * chosen).mean()
        entropy = -(log_probs.exp() * log_probs).sum(1).mean()
        loss = policy_loss - cfg.entropy_coef * entropy
        value_loss = torch.zeros((), device=self.device)
        if cfg.baseline == "value":
            value_loss = nn.functional.mse_loss(values, returns)
            loss = loss + cfg.value_coef * value_loss
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        return {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": entropy.item()}


def collect_episodes(
    agent: ReinforceAgent, envs: list[gym.Env], seeds: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run one session in each env in lockstep; returns (obs, actions, rewards, mask), each (B, H, ...)."""
    horizon = envs[0].unwrapped.config.horizon  # type: ignore[attr-defined]
    n = len(envs)
    obs = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, seeds)])
    obs_buf = np.zeros((n, horizon, obs.shape[1]), dtype=np.float32)
    act_buf = np.zeros((n, horizon), dtype=np.int64)
    rew_buf = np.zeros((n, horizon), dtype=np.float32)
    mask = np.zeros((n, horizon), dtype=bool)
    active = np.arange(n)
    for t in range(horizon):
        actions = agent.act_batch(obs[active])
        obs_buf[active, t] = obs[active]
        act_buf[active, t] = actions
        mask[active, t] = True
        still = []
        for i, a in zip(active.tolist(), actions.tolist()):
            obs[i], r, terminated, truncated, _ = envs[i].step(a)
            rew_buf[i, t] = r
            if not (terminated or truncated):
                still.append(i)
        active = np.array(still, dtype=int)
        if active.size == 0:
            break
    return obs_buf, act_buf, rew_buf, mask


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = r_t + γ G_{t+1} along the last axis (zero after the episode ends)."""
    returns = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[:-1], dtype=rewards.dtype)
    for t in range(rewards.shape[-1] - 1, -1, -1):
        running = rewards[..., t] + gamma * running
        returns[..., t] = running
    return returns


def train_reinforce(
    agent: ReinforceAgent,
    make_env: Callable[[], gym.Env],
    seed: int = 0,
    progress: bool = False,
    callback: Callable[[ReinforceAgent, int], None] | None = None,
) -> pd.DataFrame:
    """Train ``agent`` with its config; returns one row per iteration (mean return, losses, time).

    ``callback(agent, env_steps)``, if given, runs before the first iteration and after every one
    (e.g. :class:`recrl_lite.evaluation.LearningCurve`); its time is not part of ``seconds`` or of
    the time budget. ``seconds`` is the CPU time of training so far.
    """
    cfg = agent.config
    envs = [make_env() for _ in range(cfg.batch_episodes)]
    seed_stream = np.random.SeedSequence(seed)
    history = []
    clock = TrainingClock(agent, callback)
    env_steps = 0
    clock.callback_at(env_steps)
    for iteration in tqdm(range(cfg.n_iterations), desc="REINFORCE", disable=not progress, mininterval=1.0):
        seeds = seed_stream.spawn(1)[0].generate_state(cfg.batch_episodes).tolist()
        obs, actions, rewards, mask = collect_episodes(agent, envs, seeds)
        returns = discounted_returns(rewards, cfg.gamma)
        to_tensor = lambda x, dtype: torch.as_tensor(x[mask], dtype=dtype, device=agent.device)  # noqa: E731
        stats = agent.update(to_tensor(obs, torch.float32), to_tensor(actions, torch.int64), to_tensor(returns, torch.float32))
        env_steps += int(mask.sum())
        clock.callback_at(env_steps)
        elapsed = clock.seconds
        history.append({
            "iteration": iteration,
            "episode_return": float(rewards.sum(1).mean()),
            "episode_length": float(mask.sum(1).mean()),
            "steps": int(mask.sum()),
            "seconds": elapsed,
            **stats,
        })
        if (cfg.time_budget_s is not None and elapsed > cfg.time_budget_s) or (
                cfg.total_steps is not None and env_steps >= cfg.total_steps):
            break
    frame = pd.DataFrame(history)
    frame["env_steps"] = frame["steps"].cumsum()
    return frame


__all__ = [
    "PolicyValueNet",
    "ReinforceAgent",
    "ReinforceConfig",
    "TabularSoftmaxPolicy",
    "TorchPolicy",
    "collect_episodes",
    "discounted_returns",
    "train_reinforce",
]
