r"""State encoders :math:`\phi(s)`: the "large model" part of this book's agents (chapter 3).

An encoder maps the simulator's flat observation to a feature vector from which a policy head
(softmax over items), a Q head (one value per item) or a reward model computes its output. This
file holds the MLP encoder used by the chapter 3 agents; sequence encoders over the recent item
history (GRU, Transformer) come with chapter 5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from gymnasium import spaces
from torch import nn


class MLPEncoder(nn.Module):
    """Scale a ``Box`` observation to [0, 1] per dimension, then a ReLU MLP.

    Scaling uses the space's bounds, so item ids (up to n_items - 1) and one-hot features end up on
    the same scale without statistics fitted from data.
    """

    low: torch.Tensor
    scale: torch.Tensor

    def __init__(self, observation_space: spaces.Box, hidden: Sequence[int] = (128, 128)):
        super().__init__()
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(f"MLPEncoder needs a flat Box observation space, got {observation_space}")
        if not hidden:
            raise ValueError("MLPEncoder needs at least one hidden layer")
        low = np.asarray(observation_space.low, dtype=np.float32)
        high = np.asarray(observation_space.high, dtype=np.float32)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError("MLPEncoder needs finite observation bounds to scale by")
        self.register_buffer("low", torch.as_tensor(low))
        self.register_buffer("scale", torch.as_tensor(1.0 / np.maximum(high - low, 1e-6)))
        layers: list[nn.Module] = []
        width = low.shape[0]
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.net = nn.Sequential(*layers)
        self.input_dim = low.shape[0]
        self.output_dim = width

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        if observation.shape[-1] != self.input_dim:
            raise ValueError(f"MLPEncoder expects observations of size {self.input_dim}, got shape {tuple(observation.shape)}")
        return self.net((observation - self.low) * self.scale)


def encoder_width(encoder: nn.Module) -> int:
    """The feature width ``output_dim`` of a pluggable encoder, which sizes the heads built on it."""
    width = getattr(encoder, "output_dim", None)
    if not isinstance(width, (int, np.integer)) or isinstance(width, bool) or width < 1:
        raise ValueError(f"an encoder must have a positive integer attribute output_dim (the width of phi(s)); "
                         f"{type(encoder).__name__} has output_dim={width!r}")
    return int(width)
