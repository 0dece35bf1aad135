r"""The article's Keras network, corrected, and its torch twin, proven equal by running Keras 3 (chapter 5).

The source article (§5.2.1, AUDIT E15) builds a two-input Keras model: user features ->
``Dense(64, relu)``, item features -> ``Dense(64, relu)``, ``Concatenate``, ``Flatten``, and a
``Dense(64, softmax)`` output, compiled with categorical cross-entropy and never trained. The
Flatten does nothing (its input is already rank 2) and the 64-way softmax is a distribution over
neither the items nor the actions: it has 64 outputs whatever the catalogue size.
:func:`build_article_keras_model` rebuilds exactly that, so the book can run it and show the
problem.

The corrected model (:func:`build_keras_two_tower`) keeps the article's towers and concatenation
and puts a head on it that gives **one logit per (user, item) pair**:

.. math::

    f(u) = \mathrm{relu}(W_u u + b_u),\quad g(i) = \mathrm{relu}(W_i i + b_i),\quad
    s(u, i) = w^\top \mathrm{relu}\big(H [f(u); g(i)] + c\big) + d,

the concatenation-plus-MLP interaction of NCF (He et al., WWW 2017, "Neural Collaborative
Filtering", the MLP branch, eq. 5); the click probability is :math:`\sigma(s)`. Why an MLP head and
not ``Dense(1)`` directly on the concatenation: a linear head splits into
:math:`s = w_u^\top f(u) + w_i^\top g(i) + d`, a user term plus an item term, so every user gets
the *same* ranking of items (``head_hidden=0`` builds it, and the tests show the identical
rankings). Why a logit and not a sigmoid output: the logit ranks items exactly as the probability
does (sigmoid is increasing), and training on logits with ``BCEWithLogitsLoss`` /
``binary_crossentropy(from_logits=True)`` is numerically stable, as in
:class:`~recrl_lite.models.reward.RewardModel`.

:class:`TwoTowerScorer` is the same network in torch (same layer names, sizes, initialiser
distributions and parameter count). :func:`copy_keras_weights` copies a Keras model's weights into
it, and the chapter checks that both give the same scores; :func:`model_summaries` puts the two
models side by side, every number read from the models themselves.

Keras is imported lazily, inside the functions that need it, on the torch backend
(``KERAS_BACKEND=torch``, no TensorFlow), so ``import recrl_lite`` stays light.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from recrl_lite.errors import invalid

_INSTALL_HINT = "install it with `python -m pip install keras==3.15.1` (it runs on the torch backend, no TensorFlow needed)"


def _import_keras() -> Any:
    """Import Keras 3 on the torch backend; ImportError if it is missing, RuntimeError for another backend."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    if "keras" in sys.modules and sys.modules["keras"] is not None:
        backend = sys.modules["keras"].backend.backend()
        if backend != "torch":
            raise RuntimeError(
                f"keras is already imported with the {backend!r} backend, but recrl_lite needs the torch backend; "
                "restart Python and set os.environ['KERAS_BACKEND'] = 'torch' (or export KERAS_BACKEND=torch) "
                "before anything imports keras")
    elif os.environ["KERAS_BACKEND"] != "torch":
        raise RuntimeError(
            f"KERAS_BACKEND is {os.environ['KERAS_BACKEND']!r}, but recrl_lite needs the torch backend; "
            "set KERAS_BACKEND=torch (or unset it) before keras is imported")
    try:
        import keras
    except ImportError as error:
        raise ImportError(f"keras is not installed: {_INSTALL_HINT}") from error
    if not str(keras.__version__).startswith("3."):
        raise RuntimeError(f"recrl_lite needs Keras 3 (multi-backend), found keras {keras.__version__}: {_INSTALL_HINT}")
    if keras.backend.backend() != "torch":  # e.g. a keras.json that a stale import already read
        raise RuntimeError(f"keras runs on the {keras.backend.backend()!r} backend, recrl_lite needs torch: "
                           "set KERAS_BACKEND=torch before keras is imported")
    return keras


def _check_width(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise invalid(name, value, f"an int >= {minimum}")
    return int(value)


def _glorot(keras: Any, seed: int | None, k: int) -> Any:
    """Keras' default kernel initialiser, seeded per layer when a seed is given (same distribution)."""
    return keras.initializers.GlorotUniform(seed=None if seed is None else seed + k)


def build_article_keras_model(
    n_user_features: int,
    n_item_features: int,
    compile: bool = True,
    seed: int | None = None,
) -> Any:
    """The article's §5.2.1 Keras model, as written, on the torch backend (chapter 5, AUDIT E15).

    The article's code runs as written in Keras 3 once its inputs exist. The only changes:

    * **fix:** ``Input(shape=(user_features.shape[1],))`` took the width from the article's
      DataFrames, which never load (``ecommerce_data.csv`` does not exist, AUDIT E13); the widths
      are the arguments ``n_user_features`` and ``n_item_features`` here;
    * **fix:** ``model.summary()`` prints as a side effect; the model is returned instead, and the
      caller prints ``model.summary()`` (or :func:`model_summaries`);
    * names only, no change to the network: each layer is named after the article's variable
      (``user_input`` ... ``output``), since Keras otherwise numbers layers from a global counter
      (``dense_7``), which would make the printed summary differ from one run to the next;
    * ``seed`` seeds the kernels' Glorot-uniform initialisers (Keras' default, so the same
      distribution); ``None`` leaves them unseeded, as in the article.

    Kept on purpose, since this is the model the book criticises: the Flatten that does nothing,
    the 64-way softmax (64 outputs, whatever the number of items), and ``compile`` with categorical
    cross-entropy and accuracy, for which no labels exist (``compile=False`` skips it).
    """
    n_user_features = _check_width("n_user_features", n_user_features)
    n_item_features = _check_width("n_item_features", n_item_features)
    keras = _import_keras()
    from keras.layers import Concatenate, Dense, Flatten, Input
    from keras.models import Model

    # the article's code, line for line
    user_input = Input(shape=(n_user_features,), name="user_input")
    item_input = Input(shape=(n_item_features,), name="item_input")
    user_embedding = Dense(64, activation="relu", name="user_embedding", kernel_initializer=_glorot(keras, seed, 0))(user_input)
    item_embedding = Dense(64, activation="relu", name="item_embedding", kernel_initializer=_glorot(keras, seed, 1))(item_input)
    concatenated = Concatenate(name="concatenated")([user_embedding, item_embedding])
    flatten = Flatten(name="flatten")(concatenated)
    output = Dense(64, activation="softmax", name="output", kernel_initializer=_glorot(keras, seed, 2))(flatten)
    model = Model(inputs=[user_input, item_input], outputs=output, name="article_model")
    if compile:
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def build_keras_two_tower(
    n_user_features: int,
    n_item_features: int,
    hidden: int = 64,
    head_hidden: int = 64,
    seed: int | None = None,
) -> Any:
    r"""The corrected Keras model: one logit :math:`s(u, i)` per (user, item) pair (chapter 5).

    User tower ``Dense(hidden, relu)`` and item tower ``Dense(hidden, relu)`` as in the article,
    concatenated, then the head ``Dense(head_hidden, relu)`` -> ``Dense(1)`` (NCF's MLP
    interaction, He et al. 2017). The output is a logit of shape ``(batch, 1)``: train it with
    ``binary_crossentropy(from_logits=True)`` on clicks; :math:`\sigma(s)` is the click
    probability. ``head_hidden=0`` puts ``Dense(1)`` directly on the concatenation, which is
    additive in user and item and so ranks items identically for every user; it is kept to show
    that. Layer names (``user_tower``, ``item_tower``, ``head``, ``score``) match the attributes
    of :class:`TwoTowerScorer`, which :func:`copy_keras_weights` relies on.
    """
    n_user_features = _check_width("n_user_features", n_user_features)
    n_item_features = _check_width("n_item_features", n_item_features)
    hidden = _check_width("hidden", hidden)
    head_hidden = _check_width("head_hidden", head_hidden, minimum=0)
    keras = _import_keras()
    from keras import layers

    user_input = keras.Input(shape=(n_user_features,), name="user_features")
    item_input = keras.Input(shape=(n_item_features,), name="item_features")
    user = layers.Dense(hidden, activation="relu", name="user_tower", kernel_initializer=_glorot(keras, seed, 0))(user_input)
    item = layers.Dense(hidden, activation="relu", name="item_tower", kernel_initializer=_glorot(keras, seed, 1))(item_input)
    x = layers.Concatenate(name="concatenate")([user, item])
    if head_hidden:
        x = layers.Dense(head_hidden, activation="relu", name="head", kernel_initializer=_glorot(keras, seed, 2))(x)
    score = layers.Dense(1, name="score", kernel_initializer=_glorot(keras, seed, 3))(x)
    return keras.Model(inputs=[user_input, item_input], outputs=score, name="two_tower")


class TwoTowerScorer(nn.Module):
    r"""Torch twin of :func:`build_keras_two_tower`: logits :math:`s(u, i)` (chapter 5).

    Same layers, names and parameter count as the Keras model. Weights start from the same
    distributions as Keras' ``Dense`` defaults (Glorot-uniform kernels, zero biases), so training
    either one from scratch is the same experiment. ``nn.Linear`` stores ``(out, in)`` weights where
    Keras stores ``(in, out)`` kernels; :func:`copy_keras_weights` transposes.
    """

    def __init__(self, n_user_features: int, n_item_features: int, hidden: int = 64, head_hidden: int = 64):
        super().__init__()
        self.n_user_features = _check_width("n_user_features", n_user_features)
        self.n_item_features = _check_width("n_item_features", n_item_features)
        self.hidden = _check_width("hidden", hidden)
        self.head_hidden = _check_width("head_hidden", head_hidden, minimum=0)
        self.user_tower = nn.Linear(self.n_user_features, self.hidden)
        self.item_tower = nn.Linear(self.n_item_features, self.hidden)
        self.head = nn.Linear(2 * self.hidden, self.head_hidden) if self.head_hidden else None
        self.score = nn.Linear(self.head_hidden or 2 * self.hidden, 1)
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def _check(self, name: str, x: torch.Tensor, width: int) -> None:
        if x.ndim != 2 or x.shape[1] != width:
            raise invalid(name, x, f"shape (batch, {width})")

    def forward(self, user_features: torch.Tensor, item_features: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of (user, item) pairs: row b of each input is one pair; shape (batch,)."""
        self._check("user_features", user_features, self.n_user_features)
        self._check("item_features", item_features, self.n_item_features)
        if user_features.shape[0] != item_features.shape[0]:
            raise invalid("item_features", item_features, f"{user_features.shape[0]} rows, the batch size of user_features",
                          why="one row per (user, item) pair; score_all_items scores every item for every user")
        x = torch.cat([torch.relu(self.user_tower(user_features)), torch.relu(self.item_tower(item_features))], dim=-1)
        if self.head is not None:
            x = torch.relu(self.head(x))
        return self.score(x).squeeze(-1)

    def score_all_items(self, user_features: torch.Tensor, item_features: torch.Tensor) -> torch.Tensor:
        r"""Logits of every item for every user, shape (B, N), in one vectorised call (serving, chapter 5).

        Each tower runs once per row (B users, N items), not B * N times: the head's first layer
        acts on a concatenation, so :math:`H[f; g] = H_u f + H_i g`, and its two halves are
        computed per user and per item, then broadcast to the (B, N, head_hidden) grid.
        """
        self._check("user_features", user_features, self.n_user_features)
        self._check("item_features", item_features, self.n_item_features)
        f = torch.relu(self.user_tower(user_features))   # (B, hidden)
        g = torch.relu(self.item_tower(item_features))   # (N, hidden)
        last = self.head if self.head is not None else self.score
        w_user, w_item = last.weight[:, :self.hidden], last.weight[:, self.hidden:]
        pre = (f @ w_user.T)[:, None, :] + (g @ w_item.T + last.bias)[None, :, :]  # (B, N, out)
        if self.head is None:
            return pre.squeeze(-1)
        return self.score(torch.relu(pre)).squeeze(-1)


def _to_numpy(variable: Any) -> np.ndarray:
    """A Keras variable's value as numpy; on the torch backend its value is a torch tensor (on any device)."""
    return torch.as_tensor(variable.value).detach().cpu().numpy()


def _keras_dense_layers(keras_model: Any) -> list[Any]:
    """The layers of ``keras_model`` that hold weights; each must be a Dense (kernel + bias)."""
    dense = []
    for layer in keras_model.layers:
        if not layer.weights:
            continue
        if type(layer).__name__ != "Dense" or getattr(layer, "bias", None) is None or len(layer.weights) != 2:
            raise invalid("keras layer", layer.name, "a Dense layer with a kernel and a bias",
                          why=f"it is a {type(layer).__name__} with {len(layer.weights)} weight(s); "
                              "copy_keras_weights copies Dense layers")
        dense.append(layer)
    return dense


def copy_keras_weights(keras_model: Any, torch_module: nn.Module) -> nn.Module:
    """Copy every Keras ``Dense`` layer's kernel and bias into the ``nn.Linear`` of the same name (chapter 5).

    A Keras kernel is ``(in, out)`` and is applied as ``x @ kernel``; a torch ``Linear.weight`` is
    ``(out, in)`` and is applied as ``x @ weight.T``, so the kernel is copied transposed. Every Dense
    layer must find a torch ``Linear`` with its name and matching shapes, and every torch ``Linear``
    must receive weights, otherwise a ValueError names the layer; nothing is copied unless all
    match. Returns ``torch_module``, modified in place.
    """
    linears = {name: module for name, module in torch_module.named_modules() if isinstance(module, nn.Linear)}
    dense = _keras_dense_layers(keras_model)
    dense_names = [layer.name for layer in dense]
    missing = [name for name in dense_names if name not in linears]
    if missing:
        raise invalid("keras Dense layers", missing, f"names of the Linear layers of {type(torch_module).__name__}, "
                      f"{sorted(linears)}", why=f"no nn.Linear of the same name in {type(torch_module).__name__}")
    unfilled = sorted(set(linears) - set(dense_names))
    if unfilled:
        raise invalid(f"nn.Linear layers of {type(torch_module).__name__}", unfilled,
                      f"names of the keras Dense layers, {dense_names}",
                      why="every Linear layer must receive weights from the keras Dense layer of the same name")
    updates: list[tuple[nn.Linear, np.ndarray, np.ndarray]] = []
    for layer in dense:
        kernel, bias = (_to_numpy(layer.kernel), _to_numpy(layer.bias))
        linear = linears[layer.name]
        if kernel.T.shape != tuple(linear.weight.shape) or linear.bias is None or bias.shape != tuple(linear.bias.shape):
            torch_bias = None if linear.bias is None else tuple(linear.bias.shape)
            raise invalid(f"keras layer {layer.name!r} kernel (in, out) and bias shapes", (kernel.shape, bias.shape),
                          f"shapes that fit the torch weight {tuple(linear.weight.shape)} (out, in) and bias {torch_bias}")
        updates.append((linear, kernel, bias))
    with torch.no_grad():
        for linear, kernel, bias in updates:
            assert linear.bias is not None  # checked above
            linear.weight.copy_(torch.as_tensor(np.ascontiguousarray(kernel.T)))
            linear.bias.copy_(torch.as_tensor(bias))
    return torch_module


def _shape(shape: Any) -> str:
    return "(" + ", ".join("None" if d is None else str(int(d)) for d in shape) + ")"


def model_summaries(keras_model: Any, torch_module: nn.Module, probe_batch: int = 3) -> pd.DataFrame:
    """Side-by-side summary of a Keras model and its torch twin, every number read from the models (chapter 5).

    One row per Keras layer (its name, ``layer.output.shape``, ``layer.count_params()``) beside
    the torch module of the same name (class, output shape, number of parameters); torch modules
    without a Keras counterpart get rows of their own, and Keras layers without a torch module
    (inputs, concatenation, flatten: operations, not modules, in torch) get empty torch cells. Torch
    output shapes come from forward hooks during one forward pass on a zero probe batch of
    ``probe_batch`` rows, built from the Keras model's input shapes; the batch dimension is shown
    as ``None``, as Keras shows it. The last row holds the totals: ``keras_model.count_params()``
    and the number of elements of ``torch_module.parameters()``.
    """
    _check_width("probe_batch", probe_batch)
    shapes: dict[str, tuple[int, ...]] = {}
    modules = {name: m for name, m in torch_module.named_modules() if name and not list(m.children())}

    def hook(name: str) -> Any:
        def record(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            shapes[name] = tuple(output.shape)
        return record

    param = next(torch_module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    probe = []
    for tensor in keras_model.inputs:
        if tensor.shape[0] is not None or any(d is None for d in tensor.shape[1:]):
            raise invalid(f"keras input {tensor.name!r} shape", tensor.shape, "(None, ...) with fixed feature sizes")
        probe.append(torch.zeros((probe_batch, *tensor.shape[1:]), device=device))
    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items()]
    try:
        with torch.no_grad():
            torch_module(*probe)
    finally:
        for handle in handles:
            handle.remove()

    def torch_cells(name: str) -> dict[str, Any]:
        m = modules[name]
        shape = shapes.get(name)
        return {"torch_module": type(m).__name__,
                "torch_output_shape": "(not called)" if shape is None else _shape((None, *shape[1:])),
                "torch_params": sum(p.numel() for p in m.parameters())}

    empty = {"torch_module": "", "torch_output_shape": "", "torch_params": 0}
    rows = []
    for layer in keras_model.layers:
        row = {"layer": layer.name, "keras_output_shape": _shape(layer.output.shape), "keras_params": int(layer.count_params())}
        row.update(torch_cells(layer.name) if layer.name in modules else empty)
        rows.append(row)
    keras_names = {layer.name for layer in keras_model.layers}
    for name in modules:
        if name not in keras_names:
            rows.append({"layer": name, "keras_output_shape": "", "keras_params": 0, **torch_cells(name)})
    rows.append({"layer": "total", "keras_output_shape": "", "keras_params": int(keras_model.count_params()),
                 "torch_module": type(torch_module).__name__, "torch_output_shape": "",
                 "torch_params": sum(p.numel() for p in torch_module.parameters())})
    return pd.DataFrame(rows, columns=["layer", "keras_output_shape", "keras_params",
                                       "torch_module", "torch_output_shape", "torch_params"])
