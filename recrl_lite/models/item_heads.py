r"""Item heads: how an agent turns its state features :math:`\phi(s)` into one score per item.

Introduced in chapter 6 ("Large models in the loop"). Chapters 3 and 5 give every item its own
output unit, ``nn.Linear(width, n_items)``: the score of item :math:`i` is :math:`w_i^\top \phi(s) +
b_i`, and :math:`w_i` is learned from the sessions in which item :math:`i` was shown. An item that
was never shown has an untrained :math:`w_i`, so such a head cannot say anything about a new item.

:class:`TwoTowerItemHead` factorises the score into a state tower and an item tower, as two-tower
retrieval models do (Covington, Adams & Sargin, RecSys 2016; Yi et al., RecSys 2019):

.. math:: \text{score}(s, i) = \big\langle f(\phi(s)),\; g(x_i) + e_i \big\rangle + b_i,

where :math:`f` and :math:`g` are small MLPs, :math:`x_i` is a fixed description of item :math:`i`
(in chapter 6, the frozen embedding :math:`\psi_{LM}(\text{title}_i)` of its title by a pretrained
language model), and :math:`e_i`, :math:`b_i` are optional per-item ("id") parameters.

- **Text head** (``item_features=ψ``, ``id_embeddings=False``): a new item is scored from its text
  alone, through the same :math:`g` that was trained on other items.
- **Id-only head** (``item_features=None``, ``id_embeddings=True``): the same agent with
  :math:`g(x_i)` removed, so that it is the usual per-item head in factorised form.
- **Both**: text plus a per-item correction learned once an item has history.

:meth:`TwoTowerItemHead.set_catalogue` swaps in another catalogue's items (its texts, and fresh id
parameters, zero: nothing is known about them), which is how chapter 6 deploys a trained agent on
unseen items. The head is an ``nn.Module`` mapping ``(batch, width)`` to ``(batch, n_items)``, so it
plugs into :class:`recrl_lite.agents.ReinforceAgent` and :class:`recrl_lite.agents.DQNAgent` through
their ``head_factory`` argument, on any state encoder (MLP, GRU, Transformer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from recrl_lite.errors import invalid, invalid_type


def _mlp(width: int, hidden: Sequence[int], out: int) -> nn.Module:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, out))
    return nn.Sequential(*layers)


def _as_feature_matrix(item_features: np.ndarray | torch.Tensor, name: str = "item_features") -> torch.Tensor:
    """(n_items, d) features as a (1, n_items, d) tensor of one view; (n_views, n_items, d) as is."""
    x = torch.as_tensor(np.asarray(item_features, dtype=np.float32) if not isinstance(item_features, torch.Tensor)
                        else item_features.detach().to(torch.float32))
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or min(x.shape) < 1:
        raise invalid(name, item_features, "an (n_items, feature_dim) matrix, or (n_views, n_items, feature_dim) "
                      "for several descriptions of each item, with every size >= 1")
    if not torch.isfinite(x).all():
        raise invalid(name, item_features, "finite values", why=f"{int((~torch.isfinite(x)).sum())} NaN or inf entries")
    return x.clone()


class TwoTowerItemHead(nn.Module):
    r"""score(s, i) = ⟨f(φ(s)), g(x_i) + e_i⟩ + b_i for every item i of the current catalogue.

    ``in_features`` is the state encoder's width; ``item_features`` the fixed item descriptions
    (n_items, feature_dim), or (n_views, n_items, feature_dim) for several descriptions of each item
    (:meth:`resample_views` picks which one each item shows), or None for an id-only
    head of ``n_items`` items. ``dim`` is the width of
    the shared space; ``state_hidden`` and ``item_hidden`` the hidden widths of f and g.
    """

    item_features: torch.Tensor
    view: torch.Tensor

    def __init__(
        self,
        in_features: int,
        item_features: np.ndarray | torch.Tensor | None = None,
        n_items: int | None = None,
        dim: int = 32,
        state_hidden: Sequence[int] = (),
        item_hidden: Sequence[int] = (64,),
        id_embeddings: bool = False,
        item_bias: bool = True,
    ):
        super().__init__()
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise invalid("in_features", in_features, "the encoder width, an int >= 1")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise invalid("dim", dim, "an int >= 1")
        if item_features is None:
            if not id_embeddings:
                raise invalid("id_embeddings", id_embeddings, "True when item_features is None",
                              why="the head would have no item tower")
            if n_items is None or isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 1:
                raise invalid("n_items", n_items, "the number of items, an int >= 1", why="an id-only head needs it")
            features = torch.zeros(1, n_items, 0)
        else:
            features = _as_feature_matrix(item_features)
            if n_items is not None and n_items != features.shape[1]:
                raise invalid("n_items", n_items, f"None or {features.shape[1]}, the number of items in item_features")
        self.register_buffer("item_features", features)
        self.register_buffer("view", torch.zeros(features.shape[1], dtype=torch.long))
        self.n_items = int(features.shape[1])
        self.dim = dim
        self.state_tower = _mlp(in_features, state_hidden, dim)
        self.item_tower = _mlp(int(features.shape[2]), item_hidden, dim) if features.shape[2] > 0 else None
        # id parameters: small random init for an id-only head (it has nothing else), zero beside text
        self.id_embedding = (nn.Parameter(torch.randn(self.n_items, dim) * (0.1 if self.item_tower is None else 0.0))
                             if id_embeddings else None)
        self.bias = nn.Parameter(torch.zeros(self.n_items)) if item_bias else None

    @property
    def uses_text(self) -> bool:
        """Whether the item tower reads item features (False for an id-only head)."""
        return self.item_tower is not None

    @property
    def n_views(self) -> int:
        """How many descriptions of each item the head holds (1 unless trained with several wordings)."""
        return int(self.item_features.shape[0])

    def current_features(self) -> torch.Tensor:
        """x_i for every item, (n_items, feature_dim): the view of each item chosen by :meth:`resample_views`."""
        if self.n_views == 1:
            return self.item_features[0]
        return self.item_features[self.view, torch.arange(self.n_items, device=self.view.device)]

    @torch.no_grad()
    def resample_views(self, rng: np.random.Generator) -> None:
        """Pick one of the ``n_views`` descriptions of each item, independently, for the next calls.

        Several wordings of the same item (paraphrase augmentation) keep the item tower from
        memorising one title per item: it can only score well with what the wordings share. Call
        it between training iterations (a ``train_reinforce`` callback), not within one: the
        policy gradient needs the same features when acting and when updating.
        """
        if not isinstance(rng, np.random.Generator):
            raise invalid_type("rng", rng, "a numpy Generator (np.random.default_rng(seed))")
        self.view = torch.as_tensor(rng.integers(self.n_views, size=self.n_items), device=self.view.device)

    def item_vectors(self) -> torch.Tensor:
        """g(x_i) + e_i for every item, (n_items, dim)."""
        vectors = torch.zeros(self.n_items, self.dim, device=self.item_features.device)
        if self.item_tower is not None:
            vectors = self.item_tower(self.current_features())
        if self.id_embedding is not None:
            vectors = vectors + self.id_embedding
        return vectors

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        scores = self.state_tower(features) @ self.item_vectors().T
        return scores + self.bias if self.bias is not None else scores

    @torch.no_grad()
    def set_catalogue(self, item_features: np.ndarray | torch.Tensor | None = None, n_items: int | None = None) -> None:
        """Serve another catalogue: new item features (same width), and zero id parameters for its items.

        The towers f and g are kept, which is the point: for a text head they carry what was
        learned about items in general. A per-item parameter learned for an old item says nothing
        about a new one, so e_i and b_i restart at zero (an id-only head then scores every new item
        alike). The number of items must stay the same (it is the agent's action space).
        """
        device = self.item_features.device
        if item_features is None:
            if self.item_tower is not None:
                raise invalid("item_features", item_features, "the new catalogue's item features",
                              why="this head reads item text")
            n = self.n_items if n_items is None else n_items
            features = torch.zeros(1, n, 0)
        else:
            if self.item_tower is None:
                raise invalid("item_features", item_features, "None", why="this is an id-only head; it takes no item_features")
            features = _as_feature_matrix(item_features)
            if features.shape[2] != self.item_features.shape[2]:
                raise invalid("item_features", item_features, f"width {self.item_features.shape[2]} "
                              "(the width the item tower was built for)", why=f"got width {features.shape[2]}")
        if features.shape[1] != self.n_items:
            name, value = ("n_items", n_items) if item_features is None else ("item_features", item_features)
            raise invalid(name, value, f"{self.n_items} items, the agent's action space",
                          why=f"the new catalogue has {features.shape[1]}")
        self.item_features = features.to(device)
        self.view = torch.zeros(self.n_items, dtype=torch.long, device=device)
        if self.id_embedding is not None:
            self.id_embedding.zero_()
        if self.bias is not None:
            self.bias.zero_()


@dataclass(frozen=True)
class PCAProjection:
    r"""Whitened principal components of item embeddings: :math:`z = (x - \bar x) V_k / \sigma_k`.

    Chapter 6 feeds the item tower the top ``k`` components of the language model's 384-d title
    embeddings, fitted on the training catalogue's titles only: fewer inputs leave the tower less
    room to memorise one title per item, and each component has unit variance on the titles it was
    fitted to (Jolliffe, *Principal Component Analysis*, 2002, §3.2). New items are projected with
    the same map.
    """

    mean: np.ndarray  # (d,)
    components: np.ndarray  # (d, k), orthonormal columns
    scale: np.ndarray  # (k,), standard deviation of each component on the fit set

    @classmethod
    def fit(cls, embeddings: np.ndarray, n_components: int) -> PCAProjection:
        """Fit on ``embeddings`` (n, d), or (n_views, n, d) whose views are pooled."""
        x = np.asarray(embeddings, dtype=np.float64)
        x = x.reshape(-1, x.shape[-1]) if x.ndim == 3 else x
        if x.ndim != 2 or x.shape[0] < 2:
            raise invalid("embeddings", embeddings, "an (n, d) matrix with n >= 2, or (n_views, n, d)")
        if not np.isfinite(x).all():
            raise invalid("embeddings", embeddings, "finite values", why=f"{int((~np.isfinite(x)).sum())} NaN or inf entries")
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) \
                or not 1 <= n_components <= min(x.shape) - 1:
            raise invalid("n_components", n_components, f"an int in [1, {min(x.shape) - 1}]",
                          why=f"for {x.shape[0]} rows of width {x.shape[1]}")
        mean = x.mean(axis=0)
        _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)
        scale = singular[:n_components] / math.sqrt(x.shape[0])
        if scale[-1] <= 1e-12:
            raise invalid("n_components", n_components, "at most the number of dimensions the embeddings span",
                          why="the embeddings span fewer dimensions than that")
        return cls(mean=mean, components=vt[:n_components].T, scale=scale)

    @property
    def n_components(self) -> int:
        return int(self.components.shape[1])

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        """Project (..., d) embeddings to (..., k) float32 components."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.shape[-1] != self.mean.shape[0]:
            raise invalid("embeddings", embeddings, f"width {self.mean.shape[0]} in the last dimension")
        return (((x - self.mean) @ self.components) / self.scale).astype(np.float32)


def build_item_head(head_factory: Callable[[int], nn.Module], width: int, n_actions: int) -> nn.Module:
    """Call ``head_factory(width)`` and check that the head maps (batch, width) to (batch, n_actions)."""
    if not callable(head_factory) or isinstance(head_factory, nn.Module):
        raise invalid("head_factory", head_factory, "a function of the encoder width returning a new nn.Module "
                      "(e.g. lambda width: TwoTowerItemHead(width, item_text_embeddings))",
                      why=f"got type {type(head_factory).__name__}")
    head = head_factory(width)
    if not isinstance(head, nn.Module):
        raise invalid(f"head_factory({width})", head, "an nn.Module", why=f"it returned type {type(head).__name__}")
    with torch.no_grad():
        probe = head(torch.zeros(2, width))
    if tuple(probe.shape) != (2, n_actions):
        raise invalid("head_factory's head output shape", tuple(probe.shape)[1:],
                      f"({n_actions},): one score per item of the action space", why=f"for a (batch, {width}) input")
    return head


__all__ = ["PCAProjection", "TwoTowerItemHead", "build_item_head"]
