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
import pickletools
import re
import textwrap
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from recrl_lite.errors import interval, invalid, invalid_file, invalid_type

CHECKPOINT = "a recrl_lite checkpoint"


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
        owner = f"{type(self).__name__} checkpoint"
        if not isinstance(state, dict):
            raise invalid(f"{owner} state", state, "a dict")
        expected = set(self.state_dict())
        if set(state) != expected:
            raise invalid(f"{owner} keys", sorted(state), f"{sorted(expected)}")
        for key, value in state.items():
            _check_finite_entries(owner, str(key), value)

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
            raise invalid(f"class of checkpoint {path}", payload["class"], f"{type(self).__name__!r}",
                          why="a checkpoint is loaded by the class of policy that saved it")
        owner = f"{type(self).__name__} checkpoint"
        try:
            # top-level tensors were numpy arrays when saved (see save); nested state dicts stay tensors
            state = {k: tensor_as_numpy(f"{owner} entry {k!r}", v) if isinstance(v, torch.Tensor) else v
                     for k, v in payload["state"].items()}
            self.load_state_dict(state)
        except (ValueError, TypeError) as error:  # the entry is named; say which file it came from
            kind = ValueError if isinstance(error, ValueError) else TypeError
            raise invalid_file(path, f"a checkpoint this {type(self).__name__} can load", str(error),
                               error=kind) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def tensor_as_numpy(name: str, tensor: torch.Tensor) -> np.ndarray:
    """``tensor`` as a numpy array, or an error naming ``name`` for a tensor numpy cannot hold.

    ``Policy.save`` stores numpy arrays, so such a tensor (bfloat16, float8, sparse, quantised) was
    written by something else (a bfloat16 table has lost all but 3 significant digits): it is refused,
    not converted.
    """
    try:
        return tensor.detach().cpu().numpy()
    except (TypeError, RuntimeError):
        raise invalid_type(name, tensor, "a dense tensor of a numpy dtype (Policy.save stores numpy arrays)",
                           why=f"dtype {tensor.dtype}, layout {tensor.layout}") from None


#: containers nested deeper than this in a state dict are refused (no policy nests its state this deep)
MAX_STATE_DEPTH = 32


def _check_finite_entries(owner: str, key: str, value: Any, depth: int = 0) -> None:
    """Refuse NaN or inf anywhere in a state entry: arrays, tensors, floats, and inside dicts, lists
    and tuples (a torch agent's weights sit in the nested ``net`` dict), naming the entry's path."""
    name = f"{owner} entry {key!r}"
    if depth > MAX_STATE_DEPTH:
        raise invalid(name, value, f"containers nested at most {MAX_STATE_DEPTH} deep")
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex():
            finite = torch.isfinite(value.detach())
            if not bool(finite.all()):
                raise invalid(name, value, "finite values",
                              why=f"{int((~finite).sum())} of {value.numel()} values are NaN or inf")
    elif isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            bad = int((~np.isfinite(value)).sum())
            if bad:
                raise invalid(name, value, "finite values", why=f"{bad} of {value.size} values are NaN or inf")
        elif value.dtype.kind == "O":
            for index, item in enumerate(value.ravel().tolist()):
                _check_finite_entries(owner, f"{key}[{index}]", item, depth + 1)
    elif isinstance(value, dict):
        for inner, item in value.items():
            _check_finite_entries(owner, f"{key}.{inner}", item, depth + 1)
    elif isinstance(value, (list, tuple)):
        try:  # a table saved as nested lists of numbers: check it whole, to count its bad values
            array = np.asarray(value) if value and all(isinstance(v, (int, float, list, tuple)) for v in value) else None
        except (ValueError, TypeError, OverflowError):  # ragged, or ints beyond int64
            array = None
        if array is not None and array.dtype.kind in "fc":
            _check_finite_entries(owner, key, array, depth)
        else:
            for index, item in enumerate(value):
                _check_finite_entries(owner, f"{key}[{index}]", item, depth + 1)
    elif isinstance(value, (float, complex, np.floating, np.complexfloating)) and not np.isfinite(value):
        raise invalid(name, value, "a finite number")


def checkpoint_array(owner: str, key: str, value: Any, shape: tuple[int, ...], shape_meaning: str, *,
                     integer: bool = False, low: float | None = None, low_open: bool = False) -> np.ndarray:
    """Entry ``key`` of ``owner``'s checkpoint as a new float64 (``integer``: int64) array of ``shape``.

    Refuses, naming the entry: what is not an array of real numbers (a string, an object), integer
    entries given as floats (1.5 visits would be truncated silently), NaN or inf, values below ``low``.
    """
    name = f"{owner} checkpoint entry {key!r}"
    expected = "an array of integers" if integer else "an array of real numbers"
    if isinstance(value, torch.Tensor):
        value = tensor_as_numpy(name, value)
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError) as error:  # ragged nested lists
        raise invalid(name, value, expected, why=str(error)) from None
    if raw.dtype.kind not in ("iu" if integer else "iuf"):
        raise invalid_type(name, value, expected, why=f"dtype {raw.dtype}")
    if raw.dtype.kind == "u" and raw.size and int(raw.max()) > np.iinfo(np.int64).max:
        raise invalid(name, value, f"integers at most {np.iinfo(np.int64).max}")
    array = raw.astype(np.int64 if integer else np.float64)  # a copy: the policy never aliases the state
    if array.shape != shape:
        raise invalid(f"{name} shape", array.shape, f"{shape}", why=shape_meaning)
    bad = int((~np.isfinite(array)).sum())
    if bad:
        raise invalid(name, value, "finite values", why=f"{bad} of {array.size} values are NaN or inf")
    if low is not None:
        below = int((array <= low).sum() if low_open else (array < low).sum())
        if below:
            raise invalid(name, value, f"values in {interval(low, None, low_open=low_open)}",
                          why=f"{below} of {array.size} values are not")
    return array


#: opcodes that import a global: what makes a pickle able to run code
_IMPORTING_OPCODES = {"GLOBAL", "INST", "STACK_GLOBAL"}
_STRING_OPCODES = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING",
                   "STRING"}


def _allowed_globals() -> set[str]:
    """The globals torch's weights-only unpickler allows (tensor rebuilders, OrderedDict...)."""
    try:
        from torch._weights_only_unpickler import _get_allowed_globals
        return set(_get_allowed_globals())
    except (ImportError, AttributeError):  # another torch: then every global counts as unsafe
        return set()


def _globals_of_pickle(data: bytes) -> list[str]:
    """Every global ``data`` imports, read with ``pickletools.genops`` without unpickling anything.

    A ``STACK_GLOBAL`` takes its module and name from the stack, so the strings pushed (or fetched
    from the memo) just before it are tracked; one that cannot be traced reads ``<unknown>``.
    ``genops`` ends at the first ``STOP``: bytes after it are never unpickled, so never scanned.
    """
    found: list[str] = []
    memo: dict[int, str | None] = {}
    recent: list[str | None] = []  # what the last opcodes pushed: a string, or None for anything else
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
                recent.append(None)
            elif opcode.name == "STACK_GLOBAL":
                module, attr = (recent[-2], recent[-1]) if len(recent) >= 2 else (None, None)
                found.append(f"{module}.{attr}" if module is not None and attr is not None else "<unknown>")
                recent.append(None)
            elif opcode.name in _STRING_OPCODES:
                recent.append(arg.decode("latin-1") if isinstance(arg, bytes) else str(arg))
            elif opcode.name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif opcode.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = recent[-1] if recent else None  # type: ignore[arg-type]
            elif opcode.name in ("GET", "BINGET", "LONG_BINGET"):
                recent.append(memo.get(int(arg)))  # type: ignore[arg-type]
            elif opcode.name not in ("PROTO", "FRAME"):
                recent.append(None)
    except Exception:  # noqa: BLE001  garbage after a valid start: the globals seen so far still count
        pass
    return found


def _unsafe_global(path: str | os.PathLike[str], message: str) -> str | None:
    """The global that makes ``path`` unsafe to unpickle, or None.

    torch names it in its message ("Unsupported global: GLOBAL x.y", "unsupported GLOBAL posix.system
    whose module posix is blocked"); its unpickler stops at protocol 4's FRAME opcode ("Unsupported
    operand 149") before it reads any global, so the pickles themselves are scanned as well.
    """
    named = re.search(r"unsupported global\W+(?:global\s+)?(\S+)", message, flags=re.IGNORECASE)
    if named and _is_import_path(named.group(1).rstrip(".")):
        return named.group(1).rstrip(".")
    allowed = _allowed_globals()
    pickles: list[bytes] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                pickles = [archive.read(member) for member in archive.namelist() if member.endswith(".pkl")]
        else:
            pickles = [Path(path).read_bytes()]
    except Exception:  # noqa: BLE001  unreadable: nothing to scan
        return None
    for data in pickles:
        if not data.startswith(b"\x80"):  # not a binary pickle (text, CSV): its bytes only look like opcodes
            continue
        for name in _globals_of_pickle(data):
            if name not in allowed and (name == "<unknown>" or _is_import_path(name)):
                return name
    return None


def _is_import_path(name: str) -> bool:
    """Whether ``name`` could be imported (``posix.system``); text read as a pickle names other things."""
    return all(part.isidentifier() for part in name.split("."))


def _torch_detail(error: BaseException) -> str:
    """The first line of torch's explanation, without its advice (never to re-run with weights_only=False)."""
    text = str(error).split("WeightsUnpickler error:")[-1]
    for line in text.splitlines():
        line = line.strip()
        if line and "weights_only" not in line and "Weights only load failed" not in line:
            return line if len(line) <= 200 else line[:196] + " ..."
    return ""


def _check_zip_integrity(path: str | os.PathLike[str]) -> None:
    """Refuse a zip whose members fail their CRC-32: torch does not check them, so a flipped byte
    in the tensor data would load a different policy silently."""
    with open(path, "rb") as file:
        head = file.read(4)
    if head != b"PK\x03\x04" and not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
    except Exception as error:  # noqa: BLE001  BadZipFile, zlib.error, an unknown compression...
        raise invalid_file(path, CHECKPOINT, f"corrupt: not a readable zip archive ({type(error).__name__}: "
                                             f"{str(error)[:200]})") from None
    if bad_member is not None:
        raise invalid_file(path, CHECKPOINT, f"corrupt: CRC mismatch in member {bad_member}")


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``{"class": name, "state": dict}`` payload of a file written by ``Policy.save``.

    Errors say "not a recrl_lite checkpoint: <path>" and why (empty, truncated, corrupt, not a
    torch file, or another payload), or that the file was refused for safety, naming the global it
    would import; a missing file is FileNotFoundError. The zip's CRC-32s are verified first.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if Path(path).is_dir():
        raise invalid_file(path, CHECKPOINT, "a directory, not a file")
    if Path(path).stat().st_size == 0:
        raise invalid_file(path, CHECKPOINT, "the file is empty")
    _check_zip_integrity(path)
    try:
        payload = torch.load(path, weights_only=True)
    except Exception as error:  # noqa: BLE001  torch's readers fail with many classes (KeyError for text...)
        unsafe = _unsafe_global(path, str(error))
        if unsafe is not None:  # a class or function to import: the unsafe kind of pickle
            raise invalid_file(path, CHECKPOINT,
                               f"refused for safety: unpickling it would import {unsafe}, and importing and calling "
                               "globals can run any code; recrl_lite checkpoints hold only tensors and plain "
                               "containers") from None
        detail = _torch_detail(error)
        if re.search(r"unsupported global", detail, flags=re.IGNORECASE):  # bytes read as an import path
            detail = "its pickle names a global that is no Python import path"
        if isinstance(error, pickle.UnpicklingError):
            why = f"not a torch file: {detail or 'unreadable pickle'}"
        else:
            why = f"not a readable torch file ({type(error).__name__}" + (f": {detail})" if detail else ")")
        raise invalid_file(path, CHECKPOINT, why) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("class"), str) or not isinstance(payload.get("state"), dict):
        got = sorted(payload, key=repr) if isinstance(payload, dict) else type(payload).__name__
        raise invalid_file(path, CHECKPOINT, f"expected a dict with a 'class' name and a 'state' dict, got {got}")
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
        owner = f"{type(self).__name__} checkpoint"
        try:
            same_meta = isinstance(state["meta"], dict) and bool(state["meta"] == self._meta())
        except (RuntimeError, ValueError, TypeError):  # arrays or tensors in it: == is elementwise
            same_meta = False
        if not same_meta:
            raise invalid(f"{owner} meta", state["meta"], f"{self._meta()}",
                          why="a checkpoint from another env or config?")
        if not isinstance(state["net"], dict):
            raise invalid_type(f"{owner} entry 'net'", state["net"], "a dict of tensors, the network's state_dict")
        for key, value in state["net"].items():
            if not isinstance(value, torch.Tensor):
                raise invalid_type(f"{owner} entry 'net.{key}'", value, "a tensor")
        own = self.net.state_dict()
        wrong = {k: (tuple(v.shape), tuple(own[k].shape)) for k, v in state["net"].items() if k in own and v.shape != own[k].shape}
        if wrong or set(state["net"]) != set(own):
            raise invalid(f"{type(self).__name__} checkpoint weights", sorted(state["net"]), "the layers of this network",
                          why=f"they do not fit it: shape (saved, expected) {wrong}, missing "
                              f"{sorted(set(own) - set(state['net']))}, unexpected {sorted(set(state['net']) - set(own))}")
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
        raise invalid("config", config, "a dataclass instance", why="hyperparameter_table shows its fields")
    docs = field_docstrings(type(config))
    rows = [{"hyperparameter": f.name, "value": repr(getattr(config, f.name)) if isinstance(getattr(config, f.name), str)
             else str(getattr(config, f.name)), "meaning": overrides_shown.get(f.name, docs.get(f.name, ""))}
            for f in dataclasses.fields(config)]
    return pd.DataFrame(rows).set_index("hyperparameter")


def unwrap(env: Any) -> Any:
    """The base env under any gymnasium wrappers (ground truth is not forwarded by wrappers)."""
    return getattr(env, "unwrapped", env)
