"""The policy interface every agent and baseline in the book implements (chapter 1 onwards), and
:class:`TorchPolicy`, the checkpointing shared by the torch agents.

A policy maps an observation to an action (``act``), may learn from experience (``update``), owns
its random generator (``seed``) and can be checkpointed (``save``/``load``). Privileged policies,
such as the oracles, read the simulator's ground truth and are therefore bound to one env.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import os
import pickle
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn


class Policy:
    """Base class: act / update / seed / save / load."""

    name: str = "policy"
    #: the env a privileged policy reads ground truth from (None for ordinary policies)
    env: Any = None

    def __init__(self) -> None:
        self.rng = np.random.default_rng()

    def act(self, observation: np.ndarray) -> Any:
        """Return the action for ``observation``."""
        raise NotImplementedError

    def update(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Learn from experience; returns training statistics. Fixed policies learn nothing."""
        return {}

    def seed(self, seed: int | None = None) -> None:
        """Reseed the policy's own random generator (exploration, tie-breaking)."""
        self.rng = np.random.default_rng(seed)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore the policy; tensors or numpy arrays."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Check the keys, and that no array of learned statistics holds NaN or inf (it would load silently)."""
        if not isinstance(state, dict):
            raise ValueError(f"{type(self).__name__} checkpoint state must be a dict, got {type(state).__name__}")
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(f"{type(self).__name__} checkpoint has keys {sorted(state)}, expected {sorted(expected)}")
        for key, value in state.items():
            if isinstance(value, (np.ndarray, torch.Tensor)):
                array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
                if array.dtype.kind in "fc" and not np.isfinite(array).all():
                    bad = int((~np.isfinite(array)).sum())
                    raise ValueError(f"{type(self).__name__} checkpoint entry {key!r} holds NaN or inf "
                                     f"({bad} of {array.size} values)")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``state_dict()`` with ``torch.save`` (numpy arrays are stored as tensors)."""
        state = {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in self.state_dict().items()}
        torch.save({"class": type(self).__name__, "state": state}, path)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Restore from ``save``; refuses checkpoints of another class or with other keys/shapes.

        Loading uses ``torch.load(weights_only=True)``: a file that would need arbitrary Python
        objects to unpickle (and could run code doing so) is refused, never retried unsafely.
        """
        payload = read_checkpoint(path)
        if payload["class"] != type(self).__name__:
            raise ValueError(f"{path} holds a checkpoint of {payload['class']!r}, not of {type(self).__name__!r}")
        # top-level tensors were numpy arrays when saved (see save); nested state dicts stay tensors
        state = {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in payload["state"].items()}
        self.load_state_dict(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``{"class": name, "state": dict}`` payload of a file written by ``Policy.save``.

    Errors say "not a recrl_lite checkpoint: <path>" and why (empty, truncated, not a torch file, or
    another payload), or that the file was refused for safety; a missing file is FileNotFoundError.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" in str(error):  # a class or function to import: the unsafe kind of pickle
            raise ValueError(f"refused to load {path}: it holds Python objects other than tensors and plain containers, "
                             "which could run code when unpickled; recrl_lite checkpoints never do, so it is not one "
                             "of ours (it was refused for safety)") from None
        detail = str(error).split("WeightsUnpickler error:")[-1].strip().splitlines()[0] if str(error) else ""
        raise ValueError(f"not a recrl_lite checkpoint: {path} (not a torch file: {detail or 'unreadable pickle'})") from None
    except (EOFError, RuntimeError, OSError, ValueError) as error:
        size = Path(path).stat().st_size
        why = "the file is empty" if size == 0 else f"not a readable torch file ({type(error).__name__}: {error})"
        raise ValueError(f"not a recrl_lite checkpoint: {path} ({why})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("class"), str) or not isinstance(payload.get("state"), dict):
        got = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"not a recrl_lite checkpoint: {path} (expected a dict with a 'class' name and a 'state' dict, "
                         f"got {got})")
    return payload


class TorchPolicy(Policy):
    """Shared checkpointing for torch agents: the network's state_dict plus the shapes it fits."""

    net: nn.Module
    device: torch.device
    observation_dim: int
    n_actions: int

    def _meta(self) -> dict[str, Any]:
        return {"observation_dim": self.observation_dim, "n_actions": self.n_actions}

    def state_dict(self) -> dict[str, Any]:
        return {"meta": self._meta(), "net": self.net.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if state["meta"] != self._meta():
            raise ValueError(
                f"checkpoint is for {state['meta']}, but this {type(self).__name__} has {self._meta()} "
                "(a checkpoint from another env or config?)"
            )
        own = self.net.state_dict()
        wrong = {k: (tuple(v.shape), tuple(own[k].shape)) for k, v in state["net"].items() if k in own and v.shape != own[k].shape}
        if wrong or set(state["net"]) != set(own):
            raise ValueError(f"checkpoint weights do not fit this network: shape (saved, expected) {wrong}, "
                             f"missing {sorted(set(own) - set(state['net']))}, unexpected {sorted(set(state['net']) - set(own))}")
        self.net.load_state_dict(state["net"])

    def save(self, path: Any) -> None:
        torch.save({"class": type(self).__name__, "state": self.state_dict()}, path)


class TrainingClock:
    """CPU-seconds of a training loop, leaving out the time its callback spends (chapter 3).

    The training loops call ``callback_at(env_steps)`` before the first step and after every
    step or iteration; ``callback(agent, env_steps)`` (for example a
    :class:`recrl_lite.evaluation.LearningCurve`) then runs, and its CPU time is excluded from
    ``seconds``, which is what time budgets are measured against. CPU time of this process, not
    wall time, so that a busy machine does not shrink a budget.
    """

    def __init__(self, agent: Any, callback: Callable[[Any, int], None] | None = None):
        self.agent, self.callback = agent, callback
        self.start, self.excluded = time.process_time(), 0.0

    def callback_at(self, env_steps: int) -> None:
        if self.callback is not None:
            t0 = time.process_time()
            self.callback(self.agent, env_steps)
            self.excluded += time.process_time() - t0

    @property
    def seconds(self) -> float:
        return time.process_time() - self.start - self.excluded


def field_docstrings(config_class: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (``x: int = 1`` then ``\"\"\"...\"\"\"``)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(config_class)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def hyperparameter_table(config: Any, **overrides_shown: str) -> pd.DataFrame:
    """One row per field of a config dataclass: its value and the docstring that explains it.

    Every algorithm page of the book shows its hyperparameters with this, read from the config the
    chapter actually trained with, so the table cannot drift from the code. ``overrides_shown``
    replaces the description of a field (e.g. to say why a chapter changed it).
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise ValueError(f"hyperparameter_table needs a dataclass instance, got {config!r}")
    docs = field_docstrings(type(config))
    rows = [{"hyperparameter": f.name, "value": repr(getattr(config, f.name)) if isinstance(getattr(config, f.name), str)
             else str(getattr(config, f.name)), "meaning": overrides_shown.get(f.name, docs.get(f.name, ""))}
            for f in dataclasses.fields(config)]
    return pd.DataFrame(rows).set_index("hyperparameter")


def unwrap(env: Any) -> Any:
    """The base env under any gymnasium wrappers (ground truth is not forwarded by wrappers)."""
    return getattr(env, "unwrapped", env)
