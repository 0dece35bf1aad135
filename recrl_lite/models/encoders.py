r"""State encoders :math:`\phi(s)`: the "large model" part of this book's agents (chapters 3 and 5).

An encoder maps the simulator's flat observation to a feature vector from which a policy head
(softmax over items), a Q head (one value per item) or a reward model computes its output. Any
``nn.Module`` with an integer attribute ``output_dim`` that takes a float tensor of flat
observations ``(batch, obs_dim)`` plugs into the agents (:func:`encoder_width`).

- :class:`MLPEncoder` (chapter 3): the whole observation, scaled to [0, 1], through a ReLU MLP.
- :class:`GRUEncoder` (chapter 5): GRU4Rec-style recurrent encoder of the recent items.
- :class:`TransformerEncoder` (chapter 5): SASRec-style causal self-attention over them.

The two sequence encoders read the ``recent_items`` / ``recent_clicks`` slices of the observation
(:class:`recrl_lite.envs.ecommerce.ObservationLayout`: item ids newest last, -1 where there is no
item yet) as a sequence, and the rest (user features, category exposure, step, clicks, skips) as
context scaled by the space's bounds as the MLP does. Padding (-1) never influences their output.

Parameter counts at the defaults, for the default simulator (n_items=120, history_length=5, a
31-dimensional observation; :func:`count_parameters`):

=====================================================  ==========
encoder                                                parameters
=====================================================  ==========
``MLPEncoder(space)`` (hidden 128, 128)                    20,608
``GRUEncoder(space, layout, 120)``                         28,256
``TransformerEncoder(space, layout, 120)``                 16,160
=====================================================  ==========

The item head of an agent on top adds ``(output_dim + 1) * 120`` (7,800 for ``output_dim`` 64).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from recrl_lite.envs.ecommerce import ObservationLayout
from recrl_lite.errors import invalid


def _bounds(observation_space: Any, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """Float32 *copies* of a flat, finite ``Box``'s bounds.

    Copies, never views: a buffer that aliased ``space.low`` would let ``load_state_dict`` write a
    checkpoint's bounds into the env's observation space.
    """
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise invalid("observation_space", observation_space, "a flat (1-D) gymnasium Box",
                      why=f"{owner} reads flat observations")
    low = np.array(observation_space.low, dtype=np.float32, copy=True)
    high = np.array(observation_space.high, dtype=np.float32, copy=True)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise invalid("observation_space", observation_space, "a Box with finite bounds", why=f"{owner} scales by them")
    return low, high


class MLPEncoder(nn.Module):
    """Scale a ``Box`` observation to [0, 1] per dimension, then a ReLU MLP (chapter 3).

    Scaling uses the space's bounds, so item ids (up to n_items - 1) and one-hot features end up on
    the same scale without statistics fitted from data.
    """

    low: torch.Tensor
    scale: torch.Tensor

    def __init__(self, observation_space: spaces.Box, hidden: Sequence[int] = (128, 128)):
        super().__init__()
        low, high = _bounds(observation_space, "MLPEncoder")
        if not hidden:
            raise invalid("hidden", hidden, "at least one hidden layer width")
        self.register_buffer("low", torch.tensor(low))
        self.register_buffer("scale", torch.tensor(1.0 / np.maximum(high - low, 1e-6)))
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
            raise invalid("observation", observation, f"size {self.input_dim} in the last dimension")
        return self.net((observation - self.low) * self.scale)


def encoder_width(encoder: nn.Module) -> int:
    """The feature width ``output_dim`` of a pluggable encoder, which sizes the heads built on it."""
    width = getattr(encoder, "output_dim", None)
    if not isinstance(width, (int, np.integer)) or isinstance(width, bool) or width < 1:
        raise invalid(f"{type(encoder).__name__}.output_dim", width, "a positive int attribute output_dim",
                      why="an encoder's output_dim is the width of phi(s), which sizes the heads")
    return int(width)


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of ``module`` (each shared tensor once, trainable or not).

    At the defaults, for n_items=120 (the default simulator): MLPEncoder 20,608, GRUEncoder 28,256,
    TransformerEncoder 16,160 (tested in tests/test_encoders.py).
    """
    return sum(p.numel() for p in module.parameters())


def _positive_int(value: Any, name: str, owner: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise invalid(name, value, "a positive int", why=f"an argument of {owner}")
    return int(value)


class _SequenceEncoder(nn.Module):
    """Shared plumbing of the sequence encoders: split a flat observation into the item history
    (ids, click flags, a validity mask) and the scaled context, and check both.
    """

    context_index: torch.Tensor
    context_low: torch.Tensor
    context_scale: torch.Tensor
    items_index: torch.Tensor
    clicks_index: torch.Tensor

    def __init__(self, observation_space: spaces.Box, layout: ObservationLayout, n_items: int):
        super().__init__()
        owner = type(self).__name__
        low, high = _bounds(observation_space, owner)
        if not isinstance(layout, ObservationLayout):
            raise invalid("layout", layout, "an ObservationLayout (env.unwrapped.layout)",
                          why=f"{owner} got type {type(layout).__name__}")
        if layout.size != low.shape[0]:
            raise invalid("layout.size", layout.size, f"{low.shape[0]}, the size of the observation space",
                          why=f"{owner} reads the observation through the layout")
        self.n_items = _positive_int(n_items, "n_items", owner)
        items = np.arange(layout.size)[layout.recent_items]
        clicks = np.arange(layout.size)[layout.recent_clicks]
        if items.size < 1 or items.size != clicks.size:
            raise invalid("layout recent_items and recent_clicks lengths", (items.size, clicks.size),
                          "two equal, positive lengths", why=f"{owner} reads them as one sequence")
        top = float(high[items].max())
        if top > self.n_items - 1:
            raise invalid("n_items", self.n_items, f"at least {top + 1:g}",
                          why=f"the observation space allows item ids up to {top:g}; pass the env's n_items")
        context = np.setdiff1d(np.arange(layout.size), np.concatenate([items, clicks]))
        self.input_dim = int(layout.size)
        self.history_length = int(items.size)
        self.context_dim = int(context.size)
        self.register_buffer("items_index", torch.tensor(items, dtype=torch.long))
        self.register_buffer("clicks_index", torch.tensor(clicks, dtype=torch.long))
        self.register_buffer("context_index", torch.tensor(context, dtype=torch.long))
        # copies of the bounds (fancy indexing copies; torch.tensor copies again, see _bounds)
        self.register_buffer("context_low", torch.tensor(np.array(low[context])))
        self.register_buffer("context_scale", torch.tensor(np.array(1.0 / np.maximum(high[context] - low[context], 1e-6))))

    @classmethod
    def from_env(cls, env: Any, **kwargs: Any) -> Self:
        """Build the encoder for an ``ECommerceEnv`` (wrapped or not): its space, layout and n_items."""
        base = env.unwrapped
        return cls(base.observation_space, base.layout, base.config.n_items, **kwargs)

    def _split(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, ...]]:
        """(item ids + 1 with 0 for padding, click flags, valid mask, scaled context, leading shape)."""
        owner = type(self).__name__
        if observation.ndim < 1 or observation.shape[-1] != self.input_dim:
            raise invalid("observation", observation, f"observations of size {self.input_dim}, "
                          f"shape (batch, {self.input_dim}) or ({self.input_dim},)", why=owner)
        lead = tuple(observation.shape[:-1])
        x = observation.reshape(-1, self.input_dim).float()
        raw = x.index_select(1, self.items_index)
        bad = (raw != raw.round()) | (raw < -1) | (raw > self.n_items - 1)
        if bool(bad.any()):
            value = raw[bad][0].item()
            raise invalid("observation recent_items entry", value,
                          f"an integer item id in [0, {self.n_items - 1}] or -1 (no item)", why=owner)
        ids = raw.long() + 1  # 0 is the padding index
        clicks = x.index_select(1, self.clicks_index)
        context = (x.index_select(1, self.context_index) - self.context_low) * self.context_scale
        return ids, clicks, ids > 0, context, lead


class GRUEncoder(_SequenceEncoder):
    r"""GRU4Rec-style encoder (Hidasi, Karatzoglou, Baltrunas & Tikk, ICLR 2016), chapter 5.

    Each recent item :math:`i_k` (oldest to newest) becomes :math:`x_k = E[i_k] + c_k w_1 + (1 - c_k) w_0`,
    an item embedding plus a learned click embedding (one vector for shown-and-clicked, one for
    shown-and-skipped; GRU4Rec's sessions hold clicks only, here the history also records what was
    ignored). A GRU (Cho et al. 2014; GRU4Rec's eq. 1-4, in PyTorch's variant, which applies the
    reset gate after the recurrent product) runs over the :math:`x_k`,

    .. math:: r_k = \sigma(W_r x_k + U_r h_{k-1} + b_r), \quad z_k = \sigma(W_z x_k + U_z h_{k-1} + b_z),

    .. math:: n_k = \tanh(W_n x_k + b_n + r_k \odot (U_n h_{k-1} + b'_n)), \quad
              h_k = (1 - z_k) \odot n_k + z_k \odot h_{k-1},

    from :math:`h_0 = 0`, and :math:`\phi(s) = \mathrm{ReLU}(A [h_n; \tilde c] + a)` joins the final
    state with the context :math:`\tilde c` (user features, exposure, step/clicks/skips, scaled to
    [0, 1] by the space's bounds). Padding (-1) is skipped: the valid items are moved to the front,
    in order, and the state after the last of them is read, so padding anywhere is the same as no
    item at all, and an empty history gives :math:`h = 0`.
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        layout: ObservationLayout,
        n_items: int,
        embedding_dim: int = 32,
        hidden: int = 64,
        output_dim: int = 64,
    ):
        super().__init__(observation_space, layout, n_items)
        embedding_dim = _positive_int(embedding_dim, "embedding_dim", "GRUEncoder")
        self.hidden = _positive_int(hidden, "hidden", "GRUEncoder")
        self.output_dim = _positive_int(output_dim, "output_dim", "GRUEncoder")
        self.item_embedding = nn.Embedding(self.n_items + 1, embedding_dim, padding_idx=0)
        self.click_embedding = nn.Linear(1, embedding_dim)  # c w + b: w_1 = w + b, w_0 = b
        self.gru = nn.GRU(embedding_dim, self.hidden, batch_first=True)
        self.out = nn.Linear(self.hidden + self.context_dim, self.output_dim)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        ids, clicks, valid, context, lead = self._split(observation)
        length = self.history_length
        # valid items first, in their order (unique keys, so a plain sort is stable)
        order = ((~valid).long() * length + torch.arange(length, device=ids.device)).argsort(dim=1)
        ids, clicks = ids.gather(1, order), clicks.gather(1, order)
        x = self.item_embedding(ids) + self.click_embedding(clicks.unsqueeze(-1))
        states, _ = self.gru(x)
        n_valid = valid.sum(1)
        # the GRU is causal, so the state after the last valid item ignores the padding behind it
        last = (n_valid - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, self.hidden)
        h = states.gather(1, last).squeeze(1) * (n_valid > 0).unsqueeze(1)
        phi = torch.relu(self.out(torch.cat([h, context], dim=1)))
        return phi.reshape(*lead, self.output_dim)


class TransformerEncoder(_SequenceEncoder):
    r"""SASRec-style encoder (Kang & McAuley, ICDM 2018), chapter 5.

    The input at history slot :math:`k` is :math:`E[i_k] + P[L-1-k] + e_{\text{click}}(c_k)`: item
    embedding, a learned positional embedding indexed by the distance from the newest slot (so the
    newest item always has position 0, and prepending padding moves nothing), and the click
    embedding of :class:`GRUEncoder`. ``n_layers`` pre-norm self-attention blocks follow (SASRec
    §III-B/C: attention, a point-wise ReLU feed-forward net, residuals, layer norm), with SASRec's
    causality, :math:`\mathrm{Attention}(Q, K, V) = \mathrm{softmax}(QK^\top/\sqrt{d} + M) V` where
    :math:`M_{kj} = -\infty` for :math:`j > k` (a slot sees only itself and older items) and for
    padded keys :math:`j`. :math:`\phi(s) = \mathrm{ReLU}(A [y_n; \tilde c] + a)` joins the output
    :math:`y_n` at the newest item with the scaled context, as in :class:`GRUEncoder`.
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        layout: ObservationLayout,
        n_items: int,
        d_model: int = 32,
        n_heads: int = 2,
        n_layers: int = 1,
        dim_feedforward: int = 64,
        dropout: float = 0.0,
        output_dim: int = 64,
    ):
        super().__init__(observation_space, layout, n_items)
        self.d_model = _positive_int(d_model, "d_model", "TransformerEncoder")
        self.n_heads = _positive_int(n_heads, "n_heads", "TransformerEncoder")
        if self.d_model % self.n_heads:
            raise invalid("d_model", d_model, f"a multiple of n_heads={n_heads}",
                          why="each head attends over d_model / n_heads dimensions")
        n_layers = _positive_int(n_layers, "n_layers", "TransformerEncoder")
        dim_feedforward = _positive_int(dim_feedforward, "dim_feedforward", "TransformerEncoder")
        if not 0.0 <= dropout < 1.0:
            raise invalid("dropout", dropout, "a number in [0, 1)")
        self.output_dim = _positive_int(output_dim, "output_dim", "TransformerEncoder")
        self.item_embedding = nn.Embedding(self.n_items + 1, self.d_model, padding_idx=0)
        self.position_embedding = nn.Embedding(self.history_length, self.d_model)
        self.click_embedding = nn.Linear(1, self.d_model)
        block = nn.TransformerEncoderLayer(self.d_model, self.n_heads, dim_feedforward, dropout,
                                           activation="relu", batch_first=True, norm_first=True)
        # no nested tensors: they would warn (norm_first) and need a key-padding mask, not ours
        self.blocks = nn.TransformerEncoder(block, n_layers, norm=nn.LayerNorm(self.d_model), enable_nested_tensor=False)
        self.out = nn.Linear(self.d_model + self.context_dim, self.output_dim)
        length = self.history_length
        future = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
        self.register_buffer("future", future, persistent=False)
        self.register_buffer("positions", torch.arange(length - 1, -1, -1), persistent=False)

    future: torch.Tensor
    positions: torch.Tensor

    def _sequence(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, ...]]:
        ids, clicks, valid, context, lead = self._split(observation)
        x = self.item_embedding(ids) + self.position_embedding(self.positions) + self.click_embedding(clicks.unsqueeze(-1))
        # blocked[b, k, j]: slot k may not attend to j (newer, or padding); a slot always sees
        # itself, so padded slots (outputs discarded below) never get an all -inf row (NaN)
        diagonal = torch.eye(self.history_length, dtype=torch.bool, device=ids.device)
        blocked = self.future | ((~valid).unsqueeze(1) & ~diagonal)
        y = self.blocks(x, mask=blocked.repeat_interleave(self.n_heads, dim=0))
        return y * valid.unsqueeze(-1), valid, context, lead

    def sequence_outputs(self, observation: torch.Tensor) -> torch.Tensor:
        """The self-attention output at every history slot, oldest first, ``(..., L, d_model)``;
        zero at padded slots. Slot k depends only on slots 0..k (tested)."""
        y, _, _, lead = self._sequence(observation)
        return y.reshape(*lead, self.history_length, self.d_model)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        y, valid, context, lead = self._sequence(observation)
        length = self.history_length
        # newest valid slot (the last one in the simulator); padded outputs are zero, so an empty
        # history reads a zero vector
        newest = length - 1 - valid.flip(1).long().argmax(dim=1)
        y_n = y.gather(1, newest.view(-1, 1, 1).expand(-1, 1, self.d_model)).squeeze(1)
        phi = torch.relu(self.out(torch.cat([y_n, context], dim=1)))
        return phi.reshape(*lead, self.output_dim)


__all__ = ["GRUEncoder", "MLPEncoder", "TransformerEncoder", "count_parameters", "encoder_width"]
