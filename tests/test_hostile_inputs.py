"""Hostile input (issue 11): one table of bad inputs for every part of the library a reader feeds.

Each :class:`Refused` case is an input the library must refuse with a ``ValueError`` / ``TypeError``
/ ``SchemaError`` (``FileNotFoundError`` for a missing file) whose message *names the culprit*: the
argument, config field, user trait, column or file. Only names are asserted, never whole messages,
so the cases hold while the messages are reworded into the one style of ``recrl_lite.errors``.
Each :class:`Accepted` case is an odd-looking input that is fine by design; the comment says why.

A case that shows a real bug (a crash deep inside numpy/pandas/torch, a silent acceptance, a
message that does not name the culprit) keeps the expectation it should meet and carries
``bug="BUG: ..."``, which marks it ``xfail(strict=True)``: fixing the bug makes it XPASS, and the
strict xfail then fails until the ``bug`` is removed. The last test counts the cases of every
category, so the suite cannot quietly shrink.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import functools
import io
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from recrl_lite.agents import BetaBernoulliThompson, QLearningAgent, RandomPolicy, UCB1
from recrl_lite.agents.base import read_checkpoint
from recrl_lite.agents.dqn import DQNAgent, DQNConfig
from recrl_lite.agents.reinforce import ReinforceAgent, ReinforceConfig
from recrl_lite.agents.serving import Recommender
from recrl_lite.data import (
    Dataset,
    SchemaError,
    generate_dataset,
    load_dataset,
    prepare,
    read_table,
    temporal_split,
    validate_table,
)
from recrl_lite.envs import ECommerceConfig, ECommerceEnv
from recrl_lite.evaluation import (
    catalogue_coverage,
    compare_policies,
    evaluate_policy,
    hit_rate_at_k,
    mean_ci,
    ndcg_at_k,
)

torch.set_num_threads(1)

CATEGORIES = ("env-config", "env-step", "env-reset", "data", "checkpoint", "evaluation")
MIN_CASES_PER_CATEGORY = 5
NAN, INF = float("nan"), float("inf")
INPUT_ERRORS = (ValueError, TypeError)  # SchemaError is a ValueError


@dataclasses.dataclass(frozen=True)
class Refused:
    """``run(tmp_path)`` must raise ``error`` with every string of ``names`` in its message (as a word)."""

    category: str
    id: str
    run: Callable[[Path], Any]
    names: tuple[str, ...]
    error: type[BaseException] | tuple[type[BaseException], ...] = INPUT_ERRORS
    bug: str | None = None


@dataclasses.dataclass(frozen=True)
class Accepted:
    """``run(tmp_path)`` must succeed and return something for which ``check`` is true."""

    category: str
    id: str
    run: Callable[[Path], Any]
    check: Callable[[Any], bool] = lambda result: True


def _names(message: str, name: str) -> bool:
    """``name`` occurs in ``message`` as a whole word ("k" in "invalid k 0", not in "kind")."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) is not None


# ============================================================================= the simulator
def _config(**fields: Any) -> Callable[[Path], Any]:
    return lambda tmp: ECommerceConfig(**fields)


def _step(action: Any, slate_size: int = 1) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        env = ECommerceEnv(slate_size=slate_size)
        env.reset(seed=0)
        return env.step(action)[4]["slate"]
    return run


def _replay_user(**change: Any) -> Callable[[Path], Any]:
    """Replay a drawn user with ``change`` to their profile, and take one step (a bad trait that
    slips through reset can still crash the step)."""
    def run(tmp: Path) -> Any:
        env = ECommerceEnv()
        _, info = env.reset(seed=0)
        user = dataclasses.replace(info["user"], **change)
        obs, _ = env.reset(seed=1, options={"user": user})
        env.step(0)
        return env, obs
    return run


def _reset_options(options: Any) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        env = ECommerceEnv()
        _, info = env.reset(seed=0)
        return env.reset(seed=1, options=options(info["user"]) if callable(options) else options)
    return run


def _obs_in_space(result: Any) -> bool:
    env, obs = result
    return bool(env.observation_space.contains(obs))


ENV_CASES: list[Refused | Accepted] = [
    # ---- ECommerceConfig fields
    Refused("env-config", "horizon-1e9", _config(horizon=1e9), ("horizon",)),
    Refused("env-config", "horizon-10**9", _config(horizon=10**9), ("horizon",)),
    Refused("env-config", "horizon-2.5", _config(horizon=2.5), ("horizon",)),
    Refused("env-config", "horizon-string", _config(horizon="50"), ("horizon",)),
    Refused("env-config", "horizon-bool", _config(horizon=True), ("horizon",)),
    Refused("env-config", "n_items-above-90000", _config(n_items=90_001), ("n_items",)),
    Refused("env-config", "n_items-1", _config(n_items=1), ("n_items",)),
    Refused("env-config", "skip_cost-nan", _config(skip_cost=NAN), ("skip_cost",)),
    Refused("env-config", "no_click_bias-inf", _config(no_click_bias=INF), ("no_click_bias",)),
    Refused("env-config", "fatigue_weight-minus-inf", _config(fatigue_weight=-INF), ("fatigue_weight",)),
    Refused("env-config", "appeal_noise-negative", _config(appeal_noise=-1.0), ("appeal_noise",)),
    Refused("env-config", "preference_noise-negative", _config(preference_noise=-0.1), ("preference_noise",)),
    Refused("env-config", "quality_range-reversed", _config(quality_range=(1.7, 0.9)), ("quality_range",)),
    Refused("env-config", "clickbait_quality_range-reversed", _config(clickbait_quality_range=(0.4, 0.0)),
            ("clickbait_quality_range",)),
    Refused("env-config", "quality_range-nan", _config(quality_range=(NAN, 1.0)), ("quality_range",)),
    Refused("env-config", "quality_range-scalar", _config(quality_range=0.5), ("quality_range",)),
    Refused("env-config", "fatigue_decay-1", _config(fatigue_decay=1.0), ("fatigue_decay",)),
    Refused("env-config", "clickbait_fraction-1", _config(clickbait_fraction=1.0), ("clickbait_fraction",)),
    Refused("env-config", "patience-range-reversed", _config(patience_low=10.0, patience_high=5.0), ("patience_high",)),
    Refused("env-config", "slate-larger-than-catalogue", _config(slate_size=121), ("slate_size",)),
    Refused("env-config", "more-categories-than-items", _config(n_items=5, n_categories=6), ("n_categories",)),
    Refused("env-config", "item_categories-repeated", _config(item_categories=(0, 0)), ("item_categories",)),
    Refused("env-config", "item_seed-negative", _config(item_seed=-1), ("item_seed",)),
    Refused("env-config", "reward-unknown", _config(reward="ctr"), ("reward",)),
    Refused("env-config", "unknown-field", _config(horizont=50), ("horizont",)),
    Refused("env-config", "skip_cost-int-beyond-float", _config(skip_cost=10**400), ("skip_cost",)),
    Refused("env-config", "quality_range-int-beyond-float", _config(quality_range=(0, 10**400)), ("quality_range",)),
    Refused("env-config", "reward-numpy-array", _config(reward=np.array(["click"])), ("reward",)),
    # by design: numpy integers are integers (SB3 and numpy code pass them)
    Accepted("env-config", "horizon-numpy-int", _config(horizon=np.int64(50)), lambda c: c.horizon == 50),
    # by design: 90,000 is the whole public id range 10,000..99,999, so the largest catalogue it holds
    Accepted("env-config", "n_items-90000", lambda tmp: ECommerceConfig(n_items=90_000).n_items, lambda n: n == 90_000),
    # by design: a degenerate range is a constant quality
    Accepted("env-config", "quality_range-constant", _config(quality_range=(1.0, 1.0))),
    # by design: every user starts with the same patience
    Accepted("env-config", "patience-fixed", _config(patience_low=8.0, patience_high=8.0)),
    # by design: a catalogue without clickbait, and fatigue without memory, are legitimate ablations
    Accepted("env-config", "no-clickbait-no-fatigue-memory", _config(clickbait_fraction=0.0, fatigue_decay=0.0)),

    # ---- step(action)
    Refused("env-step", "string", _step("3"), ("action",)),
    Refused("env-step", "none", _step(None), ("action",)),
    Refused("env-step", "float", _step(2.0), ("action",)),
    Refused("env-step", "numpy-float", _step(np.float32(2.0)), ("action",)),
    Refused("env-step", "float-0d-array", _step(np.array(2.0)), ("action",)),
    Refused("env-step", "shape-(1,)", _step(np.array([3])), ("action",)),
    Refused("env-step", "list-of-one", _step([3]), ("action",)),
    Refused("env-step", "negative-id", _step(-1), ("action",)),
    Refused("env-step", "id-n_items", _step(120), ("action",)),
    Refused("env-step", "id-2**64", _step(2**64), ("action",)),
    Refused("env-step", "bool", _step(True), ("action",)),
    Refused("env-step", "numpy-bool", _step(np.True_), ("action",)),
    Refused("env-step", "slate-repeated-id", _step([1, 1, 2], slate_size=3), ("action",)),
    Refused("env-step", "slate-floats", _step([0.0, 1.0, 2.0], slate_size=3), ("action",)),
    Refused("env-step", "slate-too-short", _step([0, 1], slate_size=3), ("action",)),
    Refused("env-step", "slate-bools", _step([True, 1, 2], slate_size=3), ("action",)),
    Refused("env-step", "slate-set", _step({0, 1, 2}, slate_size=3), ("action",)),
    Refused("env-step", "slate-nested", _step([[0, 1, 2]], slate_size=3), ("action",)),
    Refused("env-step", "slate-id-2**63", _step([0, 1, 2**63], slate_size=3), ("action",)),
    # by design: any numpy integer is an item id (SB3 passes np.int64, a 0-d array from predict)
    Accepted("env-step", "numpy-uint8", _step(np.uint8(3)), lambda slate: slate == [3]),
    Accepted("env-step", "int-0d-array", _step(np.array(4)), lambda slate: slate == [4]),
    # by design: a slate is any sequence or integer array of distinct ids
    Accepted("env-step", "slate-tuple", _step((0, 1, 2), slate_size=3), lambda slate: slate == [0, 1, 2]),
    Accepted("env-step", "slate-uint8-array", _step(np.array([5, 1, 2], dtype=np.uint8), slate_size=3),
             lambda slate: slate == [5, 1, 2]),
    Accepted("env-step", "slate-mixed-python-numpy-ints", _step([0, 1, np.int64(2)], slate_size=3),
             lambda slate: slate == [0, 1, 2]),

    # ---- reset(options={"user": ...})
    Refused("env-reset", "gender-unknown", _replay_user(gender="X"), ("gender",)),
    Refused("env-reset", "location-unknown", _replay_user(location="moon"), ("location",)),
    Refused("env-reset", "preference-wrong-length", _replay_user(preference=np.zeros(3)), ("preference",)),
    Refused("env-reset", "preference-nan", _replay_user(preference=np.full(8, NAN)), ("preference",)),
    Refused("env-reset", "patience-nan", _replay_user(patience=NAN), ("patience",)),
    Refused("env-reset", "patience-negative", _replay_user(patience=-1.0), ("patience",)),
    Refused("env-reset", "patience-zero", _replay_user(patience=0.0), ("patience",)),
    Refused("env-reset", "age-17", _replay_user(age=17), ("age",)),
    Refused("env-reset", "age-71", _replay_user(age=71), ("age",)),
    Refused("env-reset", "age-fractional", _replay_user(age=30.5), ("age",)),
    Refused("env-reset", "age-bool", _replay_user(age=True), ("age",)),
    Refused("env-reset", "price_sensitivity-inf", _replay_user(price_sensitivity=INF), ("price_sensitivity",)),
    Refused("env-reset", "user-a-dict", _reset_options({"user": {"age": 30}}), ("user",)),
    Refused("env-reset", "preference-complex", _replay_user(preference=np.zeros(8, dtype=complex)), ("preference",)),
    Refused("env-reset", "options-not-a-dict", _reset_options(["user"]), ("options",)),
    Refused("env-reset", "options-misspelt-key", _reset_options(lambda user: {"users": user}), ("users",)),
    # by design: numpy integers are ages like any other
    Accepted("env-reset", "age-numpy-int", _replay_user(age=np.int64(30)), _obs_in_space),
    # by design: a preference is any sequence of embedding_dim finite numbers
    Accepted("env-reset", "preference-list", _replay_user(preference=[0.1] * 8), _obs_in_space),
    # by design: {"user": None} is the default, a user drawn from the population
    Accepted("env-reset", "user-none", _reset_options({"user": None}), lambda out: out[1]["user"] is not None),
    # by design: a price-blind user, and a user whose patience outlasts any horizon
    Accepted("env-reset", "price_sensitivity-zero", _replay_user(price_sensitivity=0.0), _obs_in_space),
    Accepted("env-reset", "patience-huge", _replay_user(patience=1e6), _obs_in_space),
]


# ============================================================================= the data loaders
@functools.lru_cache(maxsize=1)
def _dataset() -> Dataset:
    return generate_dataset(n_users=20, seed=1)


def _rewrite(tmp: Path, table: str, edit: Callable[[list[list[str]]], list[list[str]]]) -> Dataset:
    """Write the three tables, replace ``table``'s CSV rows (header first) by ``edit(rows)``, load all."""
    _dataset().to_csv(tmp)
    path = tmp / f"{table}.csv"
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(edit(rows))
    return load_dataset(tmp)


def _set_cell(table: str, column: str, text: str, row: int = 0) -> Callable[[Path], Dataset]:
    def edit(rows: list[list[str]]) -> list[list[str]]:
        rows[1 + row][rows[0].index(column)] = text
        return rows
    return lambda tmp: _rewrite(tmp, table, edit)


def _drop_column(table: str, column: str) -> Callable[[Path], Dataset]:
    def edit(rows: list[list[str]]) -> list[list[str]]:
        j = rows[0].index(column)
        return [r[:j] + r[j + 1:] for r in rows]
    return lambda tmp: _rewrite(tmp, table, edit)


def _edit_rows(table: str, edit: Callable[[list[list[str]]], list[list[str]]]) -> Callable[[Path], Dataset]:
    return lambda tmp: _rewrite(tmp, table, edit)


def _write_file(table: str, content: bytes) -> Callable[[Path], Dataset]:
    def run(tmp: Path) -> Dataset:
        _dataset().to_csv(tmp)
        (tmp / f"{table}.csv").write_bytes(content)
        return load_dataset(tmp)
    return run


def _purchase_without_click(rows: list[list[str]]) -> list[list[str]]:
    click, purchase = rows[0].index("click"), rows[0].index("purchase")
    row = next(r for r in rows[1:] if r[click] == "0")
    row[purchase] = "1"
    return rows


def _one_user_id_unknown(rows: list[list[str]]) -> list[list[str]]:
    rows[1][rows[0].index("user_id")] = "1"  # generated user ids are >= 100,000
    return rows


def _remove_file(table: str) -> Callable[[Path], Dataset]:
    def run(tmp: Path) -> Dataset:
        _dataset().to_csv(tmp)
        (tmp / f"{table}.csv").unlink()
        return load_dataset(tmp)
    return run


def _directory_in_place_of(table: str) -> Callable[[Path], Dataset]:
    def run(tmp: Path) -> Dataset:
        _dataset().to_csv(tmp)
        (tmp / f"{table}.csv").unlink()
        (tmp / f"{table}.csv").mkdir()
        return load_dataset(tmp)
    return run


def _split(test_fraction: Any = 0.2, edit: Callable[[pd.DataFrame], Any] = lambda f: f) -> Callable[[Path], Any]:
    return lambda tmp: temporal_split(edit(_dataset().interactions.copy()), test_fraction)


def _validate(table: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], Any]:
    return lambda tmp: validate_table(edit(getattr(_dataset(), table).copy()), table)


def _loads_like_the_original(loaded: Dataset) -> bool:
    original = _dataset()
    return all(getattr(loaded, t).equals(getattr(original, t)) for t in ("users", "items", "interactions"))


DATA_CASES: list[Refused | Accepted] = [
    Refused("data", "missing-column", _drop_column("users", "age"), ("users.csv", "age")),
    Refused("data", "wrong-dtype-strings-in-int", _set_cell("users", "age", "thirty"), ("users.csv", "age")),
    Refused("data", "float-in-int-column", _set_cell("interactions", "position", "1.5"),
            ("interactions.csv", "position")),
    Refused("data", "nan-float", _set_cell("items", "price", "nan", row=2), ("items.csv", "price")),
    Refused("data", "inf-float", _set_cell("items", "price", "inf", row=3), ("items.csv", "price")),
    Refused("data", "nan-string", _set_cell("users", "gender", ""), ("users.csv", "gender")),
    Refused("data", "purchase-without-click", _edit_rows("interactions", _purchase_without_click),
            ("interactions.csv", "purchase")),
    Refused("data", "timestamp-2**63", _set_cell("interactions", "timestamp", str(2**63)),
            ("interactions.csv", "timestamp")),
    Refused("data", "timestamp-negative", _set_cell("interactions", "timestamp", "-5"),
            ("interactions.csv", "timestamp")),
    Refused("data", "propensity-zero", _set_cell("interactions", "propensity", "0.0"),
            ("interactions.csv", "propensity")),
    Refused("data", "duplicate-user-id", _edit_rows("users", lambda rows: [*rows, rows[1]]), ("users.csv", "user_id")),
    Refused("data", "unknown-user-id", _edit_rows("interactions", _one_user_id_unknown),
            ("interactions.csv", "user_id")),
    Refused("data", "empty-file", _write_file("users", b""), ("users.csv",)),
    Refused("data", "binary-file", _write_file("items", bytes(range(256)) * 4), ("items.csv",)),
    Refused("data", "header-only", _edit_rows("interactions", lambda rows: rows[:1]), ("interactions.csv",)),
    Refused("data", "header-repeated-as-a-row", _edit_rows("users", lambda rows: [rows[0], rows[1], rows[0], *rows[2:]]),
            ("users.csv", "user_id")),
    Refused("data", "truncated-mid-row", _edit_rows("users", lambda rows: [*rows[:-1], rows[-1][:2]]), ("users.csv",)),
    Refused("data", "missing-file", _remove_file("items"), ("items.csv",), error=FileNotFoundError),
    Refused("data", "directory-instead-of-file", _directory_in_place_of("users"), ("users.csv",),
            error=(SchemaError, IsADirectoryError)),
    Refused("data", "unknown-table-name", lambda tmp: validate_table(_dataset().users, "user"), ("table",)),
    Refused("data", "prepare-single-row-log",
            lambda tmp: prepare(Dataset(_dataset().users, _dataset().items, _dataset().interactions.iloc[:1])),
            ("interactions",)),
    Refused("data", "split-test_fraction-0", _split(0.0), ("test_fraction",)),
    Refused("data", "split-test_fraction-1", _split(1.0), ("test_fraction",)),
    Refused("data", "split-test_fraction-nan", _split(NAN), ("test_fraction",)),
    Refused("data", "split-one-timestamp-for-all", _split(edit=lambda f: f.assign(timestamp=7)), ("timestamp",)),
    Refused("data", "split-no-timestamp-column", _split(edit=lambda f: f.drop(columns="timestamp")), ("timestamp",)),
    Refused("data", "split-test_fraction-string", _split("0.2"), ("test_fraction",)),
    Refused("data", "split-string-timestamps", _split(edit=lambda f: f.assign(timestamp=f["timestamp"].astype(str))),
            ("timestamp",)),
    Refused("data", "split-not-a-frame", _split(edit=lambda f: f["timestamp"].tolist()), ("interactions",)),
    Refused("data", "validate-complex-prices", _validate("items", lambda f: f.assign(price=f["price"] + 1j)), ("price",)),
    Refused("data", "validate-duplicated-column-name",
            _validate("users", lambda f: pd.concat([f, f[["age"]]], axis=1)), ("age",)),
    # by design: a one-row table is a table; the log's size is checked where it matters (prepare)
    Accepted("data", "single-row-users-table", lambda tmp: _read_one_row_table(tmp, "users"),
             lambda frame: len(frame) == 1),
    # by design (documented in validate_table): extra columns, e.g. an analyst's notes, are not the schema's and
    # are left out of the loaded table
    Accepted("data", "extra-column", _edit_rows("users", lambda rows: [[*r, "note"] for r in rows]),
             _loads_like_the_original),
    # by design: columns are found by name, not position
    Accepted("data", "columns-reordered", _edit_rows("users", lambda rows: [r[::-1] for r in rows]),
             _loads_like_the_original),
    # by design: files saved by Excel start with a UTF-8 byte-order mark; pandas drops it
    Accepted("data", "utf8-bom", lambda tmp: _write_file("users", b"\xef\xbb\xbf" + _csv_bytes("users"))(tmp),
             _loads_like_the_original),
    # by design: a deterministic logging policy gives propensity 1 (the interval is (0, 1])
    Accepted("data", "propensity-one", _set_cell("interactions", "propensity", "1.0"),
             lambda loaded: loaded.interactions["propensity"].iloc[0] == 1.0),
    # by design: two interactions are the smallest log with one on each side of the split
    Accepted("data", "split-two-rows", _split(0.5, edit=lambda f: f.iloc[:2]),
             lambda parts: [len(p) for p in parts] == [1, 1]),
]


def _read_one_row_table(tmp: Path, table: str) -> pd.DataFrame:
    path = tmp / f"{table}.csv"
    getattr(_dataset(), table).iloc[:1].to_csv(path, index=False)
    return read_table(path, table)


def _csv_bytes(table: str) -> bytes:
    return getattr(_dataset(), table).to_csv(index=False).encode()


# ============================================================================= checkpoints
CHECKPOINT = "agent.pt"


def _q_agent() -> QLearningAgent:
    agent = QLearningAgent(6, 3, seed=0)
    agent.q[:] = np.arange(18.0).reshape(6, 3) / 7
    agent.episode = 4
    return agent


@functools.lru_cache(maxsize=1)
def _q_checkpoint_bytes() -> bytes:
    buffer = io.BytesIO()
    _q_agent().save(buffer)
    return buffer.getvalue()


def _q_payload(**state_changes: Any) -> dict[str, Any]:
    state = {"q": torch.as_tensor(_q_agent().q), "visits": torch.zeros((6, 3), dtype=torch.int64), "episode": 4}
    state.update(state_changes)
    return {"class": "QLearningAgent", "state": state}


def _load_bytes(content: bytes | Callable[[], bytes], agent: Callable[[], Any] = lambda: QLearningAgent(6, 3)
                ) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        path = tmp / CHECKPOINT
        path.write_bytes(content() if callable(content) else content)
        policy = agent()
        policy.load(path)
        return policy
    return run


def _load_payload(payload: Any | Callable[[], Any], agent: Callable[[], Any] = lambda: QLearningAgent(6, 3)
                  ) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        path = tmp / CHECKPOINT
        torch.save(payload() if callable(payload) else payload, path)
        policy = agent()
        policy.load(path)
        return policy
    return run


def _read_checkpoint_of(payload: Any) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        torch.save(payload, tmp / CHECKPOINT)
        return read_checkpoint(tmp / CHECKPOINT)
    return run


class _RunsAShellCommand:
    """Unpickling this calls os.system: the classic malicious pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.marker}",)


def _malicious(how: str) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        marker, path = tmp / "the-pickle-ran", tmp / CHECKPOINT
        bomb = _RunsAShellCommand(marker)
        if how == "inside-a-torch-checkpoint":
            torch.save({"class": "QLearningAgent", "state": {"q": bomb}}, path)
        else:
            path.write_bytes(pickle.dumps(bomb, protocol=2 if how == "pickle-protocol-2" else pickle.DEFAULT_PROTOCOL))
        try:
            QLearningAgent(6, 3).load(path)
        finally:
            assert not marker.exists(), "loading the checkpoint ran the pickle's shell command"
    return run


def _dqn(n_items: int = 120, hidden: tuple[int, ...] = (8,), seed: int = 0) -> DQNAgent:
    env = ECommerceEnv(n_items=n_items)
    return DQNAgent(env.observation_space, env.action_space, DQNConfig(hidden=hidden), seed=seed)


def _dqn_payload(edit: Callable[[dict[str, Any]], None]) -> Callable[[], dict[str, Any]]:
    def payload() -> dict[str, Any]:
        buffer = io.BytesIO()
        _dqn().save(buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=True)
        edit(loaded["state"])
        return loaded
    return payload


def _set_net_entry(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(state: dict[str, Any]) -> None:
        state["net"][key] = value(state["net"][key]) if callable(value) else value
    return edit


def _dqn_checkpoint_bytes() -> bytes:
    buffer = io.BytesIO()
    _dqn().save(buffer)
    return buffer.getvalue()


def _same_q_agent(agent: QLearningAgent) -> bool:
    reference = _q_agent()
    return bool(np.array_equal(agent.q, reference.q) and agent.episode == reference.episode)


CHECKPOINT_CASES: list[Refused | Accepted] = [
    Refused("checkpoint", "empty-file", _load_bytes(b""), (CHECKPOINT,)),
    Refused("checkpoint", "truncated", _load_bytes(lambda: _q_checkpoint_bytes()[:700]), (CHECKPOINT,)),
    Refused("checkpoint", "json-file", _load_bytes(b'{"class": "QLearningAgent"}'), (CHECKPOINT,)),
    Refused("checkpoint", "numpy-file", _load_bytes(b"\x93NUMPY\x01\x00" + bytes(64)), (CHECKPOINT,)),
    Refused("checkpoint", "payload-without-state", _load_payload({"class": "QLearningAgent"}), (CHECKPOINT,)),
    Refused("checkpoint", "list-instead-of-dict", _load_payload([1, 2, 3]), (CHECKPOINT,)),
    Refused("checkpoint", "class-name-not-a-string", _load_payload({"class": 3, "state": {}}), (CHECKPOINT,)),
    Refused("checkpoint", "another-class", _load_payload({"class": "SarsaAgent", "state": {}}),
            (CHECKPOINT, "SarsaAgent")),
    Refused("checkpoint", "missing-file", lambda tmp: QLearningAgent(6, 3).load(tmp / CHECKPOINT), (CHECKPOINT,),
            error=FileNotFoundError),
    Refused("checkpoint", "read_checkpoint-list", _read_checkpoint_of([{"class": "QLearningAgent"}]), (CHECKPOINT,)),
    Refused("checkpoint", "read_checkpoint-state-not-a-dict", _read_checkpoint_of({"class": "UCB1", "state": [0.5]}),
            (CHECKPOINT,)),
    Refused("checkpoint", "read_checkpoint-missing-file", lambda tmp: read_checkpoint(tmp / CHECKPOINT), (CHECKPOINT,),
            error=FileNotFoundError),
    Refused("checkpoint", "nan-q-table", _load_payload(_q_payload(q=torch.full((6, 3), NAN))), ("q",)),
    Refused("checkpoint", "inf-bandit-values",
            _load_payload({"class": "UCB1", "state": {"counts": torch.ones(4, dtype=torch.int64),
                                                      "values": torch.full((4,), INF, dtype=torch.float64)}},
                          agent=lambda: UCB1(4)), ("values",)),
    Refused("checkpoint", "q-table-wrong-shape", _load_payload(_q_payload(q=torch.zeros(5, 3))), ("q",)),
    Refused("checkpoint", "unexpected-key", _load_payload(_q_payload(extra=1)), ("extra",)),
    Refused("checkpoint", "torch-agent-wrong-layer-shapes", _load_bytes(_dqn_checkpoint_bytes, agent=lambda: _dqn(hidden=(16,))),
            ("encoder.net.0.weight",)),
    Refused("checkpoint", "torch-agent-other-catalogue", _load_bytes(_dqn_checkpoint_bytes, agent=lambda: _dqn(n_items=30)),
            ("n_actions",)),
    Refused("checkpoint", "malicious-pickle-in-torch-checkpoint", _malicious("inside-a-torch-checkpoint"),
            (CHECKPOINT, "safety")),
    Refused("checkpoint", "malicious-pickle-protocol-2", _malicious("pickle-protocol-2"), (CHECKPOINT, "safety")),
    Refused("checkpoint", "malicious-pickle-protocol-default", _malicious("pickle-protocol-default"),
            (CHECKPOINT, "safety")),
    Refused("checkpoint", "text-file", _load_bytes(b"hello world\n"), (CHECKPOINT,)),
    Refused("checkpoint", "csv-file", _load_bytes(b"user_id,age\n1,30\n"), (CHECKPOINT,)),
    Refused("checkpoint", "renamed-state-key-names-the-file",
            _load_payload(lambda: {"class": "QLearningAgent",
                                   "state": {"q": torch.zeros(6, 3), "visxts": torch.zeros(6, 3), "episode": 0}}),
            (CHECKPOINT, "visits")),
    Refused("checkpoint", "torch-agent-nan-weights",
            _load_payload(_dqn_payload(_set_net_entry("encoder.net.0.weight", lambda w: torch.full_like(w, NAN))),
                          agent=_dqn), ("encoder.net.0.weight",)),
    Refused("checkpoint", "torch-agent-net-not-a-dict",
            _load_payload(_dqn_payload(lambda state: state.update(net=[1, 2])), agent=_dqn), ("net",)),
    Refused("checkpoint", "torch-agent-weight-not-a-tensor",
            _load_payload(_dqn_payload(_set_net_entry("encoder.net.0.weight", "abc")), agent=_dqn),
            ("encoder.net.0.weight",)),
    Refused("checkpoint", "q-table-nested-list-with-nan", _load_payload(_q_payload(q=[[NAN, 0.0, 0.0]] * 6)), ("q",)),
    Refused("checkpoint", "q-table-strings", _load_payload(_q_payload(q="abc")), ("q",)),
    Refused("checkpoint", "q-table-bfloat16", _load_payload(_q_payload(q=torch.zeros(6, 3, dtype=torch.bfloat16))),
            ("q",)),
    Refused("checkpoint", "episode-not-a-number", _load_payload(_q_payload(episode="x")), ("episode",)),
    Refused("checkpoint", "episode-negative", _load_payload(_q_payload(episode=-5)), ("episode",)),
    Refused("checkpoint", "visit-counts-negative",
            _load_payload(_q_payload(visits=torch.full((6, 3), -3, dtype=torch.int64))), ("visits",)),
    Refused("checkpoint", "thompson-beta-parameters-negative",
            _load_payload({"class": "BetaBernoulliThompson",
                           "state": {"alpha": torch.full((4,), -1.0, dtype=torch.float64),
                                     "beta": torch.ones(4, dtype=torch.float64)}},
                          agent=lambda: BetaBernoulliThompson(4)), ("alpha",)),
    # by design: the round trip of a real checkpoint
    Accepted("checkpoint", "round-trip", _load_bytes(_q_checkpoint_bytes), _same_q_agent),
    # by design: an integer or nested-list Q table converts losslessly to floats
    Accepted("checkpoint", "q-table-int-tensor",
             _load_payload(_q_payload(q=torch.arange(18).reshape(6, 3))), lambda a: a.q[5, 2] == 17.0),
    Accepted("checkpoint", "q-table-nested-list", _load_payload(_q_payload(q=[[1.0, 2.0, 3.0]] * 6)),
             lambda a: a.q.shape == (6, 3)),
    # by design: the path may be a str as well as a Path
    Accepted("checkpoint", "path-as-str", lambda tmp: _load_from_str_path(tmp), _same_q_agent),
    # by design: a torch agent's checkpoint loads into a fresh agent with other initial weights
    Accepted("checkpoint", "torch-agent-round-trip", _load_bytes(_dqn_checkpoint_bytes, agent=lambda: _dqn(seed=1)),
             lambda a: all(torch.equal(x, y) for x, y in zip(a.net.state_dict().values(), _dqn().net.state_dict().values()))),
]


def _load_from_str_path(tmp: Path) -> QLearningAgent:
    path = tmp / CHECKPOINT
    path.write_bytes(_q_checkpoint_bytes())
    agent = QLearningAgent(6, 3)
    agent.load(str(path))
    return agent


# ============================================================================= evaluation
def _evaluate(**kwargs: Any) -> Callable[[Path], Any]:
    return lambda tmp: evaluate_policy(RandomPolicy(120), ECommerceEnv(horizon=3), **{"n_users": 1, "seeds": [0], **kwargs})


def _compare(**kwargs: Any) -> Callable[[Path], Any]:
    return lambda tmp: compare_policies({"random": RandomPolicy(120)}, ECommerceEnv(horizon=3),
                                        **{"n_users": 1, "seeds": [0], **kwargs})


RANKED = np.array([[3, 2, 1], [0, 1, 2]])
RELEVANT = [{3}, {0}]


def _recommend(k: Any = 3, scores: Any = None, **kwargs: Any) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        env = ECommerceEnv()
        obs, _ = env.reset(seed=0)
        table = np.random.default_rng(0).normal(size=120) if scores is None else scores
        recommender = Recommender(lambda batch: np.tile(table, (len(batch), 1)), 120, env.layout)
        return recommender.recommend(obs, k, **kwargs)
    return run


EVALUATION_CASES: list[Refused | Accepted] = [
    Refused("evaluation", "seeds-empty", _evaluate(seeds=[]), ("seeds",)),
    Refused("evaluation", "seeds-duplicate", _evaluate(seeds=[3, 1, 3]), ("seeds",)),
    Refused("evaluation", "seeds-non-int", _evaluate(seeds=[0.5]), ("seeds",)),
    Refused("evaluation", "seeds-bool", _evaluate(seeds=[True]), ("seeds",)),
    Refused("evaluation", "compare-seeds-duplicate", _compare(seeds=[2, 2]), ("seeds",)),
    Refused("evaluation", "n_users-zero", _evaluate(n_users=0), ("n_users",)),
    Refused("evaluation", "metric-unknown", _compare(metrics=("return", "ndcg")), ("ndcg",)),
    Refused("evaluation", "metrics-empty", _compare(metrics=()), ("metrics",)),
    Refused("evaluation", "ndcg-k-zero", lambda tmp: ndcg_at_k(RANKED, RELEVANT, 0), ("k",)),
    Refused("evaluation", "ndcg-k-negative", lambda tmp: ndcg_at_k(RANKED, RELEVANT, -1), ("k",)),
    Refused("evaluation", "hit-rate-k-zero", lambda tmp: hit_rate_at_k(RANKED, RELEVANT, 0), ("k",)),
    Refused("evaluation", "hit-rate-k-float", lambda tmp: hit_rate_at_k(RANKED, RELEVANT, 2.0), ("k",)),
    Refused("evaluation", "ndcg-k-wider-than-ranking", lambda tmp: ndcg_at_k(RANKED, RELEVANT, 4), ("ranked",)),
    Refused("evaluation", "ndcg-repeated-item", lambda tmp: ndcg_at_k(np.array([[3, 3, 1], [0, 1, 2]]), RELEVANT, 3),
            ("ranked",)),
    Refused("evaluation", "hit-rate-repeated-item",
            lambda tmp: hit_rate_at_k(np.array([[3, 2, 1], [0, 0, 2]]), RELEVANT, 2), ("ranked",)),
    Refused("evaluation", "ndcg-user-without-relevant-items", lambda tmp: ndcg_at_k(RANKED, [set(), {0}], 2),
            ("relevant",)),
    Refused("evaluation", "coverage-negative-id", lambda tmp: catalogue_coverage([[0, 1], [-1]], 5), ("recommended",)),
    Refused("evaluation", "coverage-id-n_items", lambda tmp: catalogue_coverage([[5]], 5), ("recommended",)),
    Refused("evaluation", "coverage-n_items-zero", lambda tmp: catalogue_coverage([[0]], 0), ("n_items",)),
    Refused("evaluation", "recommend-k-above-catalogue", _recommend(k=121), ("k",)),
    Refused("evaluation", "recommend-k-zero", _recommend(k=0), ("k",)),
    Refused("evaluation", "recommend-k-fractional", _recommend(k=2.5), ("k",)),
    Refused("evaluation", "recommend-exclude-negative-id", _recommend(exclude=[[-1]]), ("excluded",)),
    Refused("evaluation", "seeds-an-int", _evaluate(seeds=5), ("seeds",)),
    Refused("evaluation", "seeds-none", _evaluate(seeds=None), ("seeds",)),
    Refused("evaluation", "seeds-negative", _evaluate(seeds=[-1]), ("seeds",)),
    Refused("evaluation", "n_users-fractional", _evaluate(n_users=2.5), ("n_users",)),
    Refused("evaluation", "ndcg-ranked-a-list", lambda tmp: ndcg_at_k([[3, 2, 1]], [{3}], 2), ("ranked",)),
    Refused("evaluation", "ndcg-ranked-floats", lambda tmp: ndcg_at_k(np.array([[3.5, 2.0, 1.0]]), [{3}], 2),
            ("ranked",)),
    Refused("evaluation", "ndcg-no-users", lambda tmp: ndcg_at_k(np.zeros((0, 3), dtype=int), [], 2), ("ranked",)),
    Refused("evaluation", "coverage-float-ids", lambda tmp: catalogue_coverage([[0.5, 1.5]], 5), ("recommended",)),
    Refused("evaluation", "coverage-nan-id", lambda tmp: catalogue_coverage([[NAN]], 5), ("recommended",)),
    Refused("evaluation", "recommend-nan-scores", _recommend(scores=np.full(120, NAN)), ("score_fn",)),
    Refused("evaluation", "recommend-exclude-fractional-ids", _recommend(exclude=[[1.5]]), ("exclude",)),
    Refused("evaluation", "mean_ci-inf", lambda tmp: mean_ci([1.0, INF]), ("values",)),
    # by design: k may be the whole catalogue (a full ranking)
    Accepted("evaluation", "recommend-k-equals-catalogue", _recommend(k=120),
             lambda out: sorted(out.items[0].tolist()) == list(range(120))),
    # by design: numpy integers and arrays of seeds are seeds
    Accepted("evaluation", "seeds-numpy-array", _evaluate(seeds=np.arange(2)), lambda frame: sorted(set(frame["seed"])) == [0, 1]),
    Accepted("evaluation", "ndcg-k-numpy-int", lambda tmp: ndcg_at_k(RANKED, RELEVANT, np.int64(2)), lambda v: v == 1.0),
    # by design: SeedSequence takes any non-negative integer, however large
    Accepted("evaluation", "seed-2**200", _evaluate(seeds=[2**200]), lambda frame: len(frame) == 1),
    # by design: an empty list of recommendations covers nothing
    Accepted("evaluation", "coverage-empty-row", lambda tmp: catalogue_coverage([[0, 1], []], 4), lambda v: v == 0.5),
]


# ============================================================================= the tests
REFUSED = [c for c in (*ENV_CASES, *DATA_CASES, *CHECKPOINT_CASES, *EVALUATION_CASES) if isinstance(c, Refused)]
ACCEPTED = [c for c in (*ENV_CASES, *DATA_CASES, *CHECKPOINT_CASES, *EVALUATION_CASES) if isinstance(c, Accepted)]


def _params(cases: list[Any]) -> list[Any]:
    return [pytest.param(case, id=f"{case.category}-{case.id}",
                         marks=[pytest.mark.xfail(strict=True, reason=case.bug)] if getattr(case, "bug", None) else [])
            for case in cases]


@pytest.mark.parametrize("case", _params(REFUSED))
def test_hostile_input_is_refused_naming_the_culprit(case: Refused, tmp_path: Path) -> None:
    with pytest.raises(case.error) as caught:
        case.run(tmp_path)
    message = str(caught.value)
    missing = [name for name in case.names if not _names(message, name)]
    assert not missing, f"the {type(caught.value).__name__} does not name {missing}: {message}"


@pytest.mark.parametrize("case", _params(ACCEPTED))
def test_odd_but_valid_input_is_accepted_by_design(case: Accepted, tmp_path: Path) -> None:
    assert case.check(case.run(tmp_path))


@pytest.mark.parametrize("make_agent", [
    lambda env: DQNAgent(env.observation_space, env.action_space, DQNConfig(hidden=(8,)), seed=0),
    lambda env: ReinforceAgent(env.observation_space, env.action_space, ReinforceConfig(hidden=(8,)), seed=0),
], ids=["DQN", "REINFORCE"])
def test_loading_a_torch_checkpoint_never_writes_into_the_env_observation_space(make_agent: Any, tmp_path: Path) -> None:
    """MLPEncoder keeps *copies* of the space's low/high: a buffer that aliased ``space.low`` would let
    ``load_state_dict`` write a checkpoint's (here NaN) bounds into the env everyone else uses."""
    env = ECommerceEnv()
    low, high = env.observation_space.low.copy(), env.observation_space.high.copy()
    agent = make_agent(env)
    for name, buffer in agent.net.named_buffers():
        for bound in (env.observation_space.low, env.observation_space.high):
            assert not np.shares_memory(buffer.detach().numpy(), bound), f"{name} is a view of the observation space"
    path = tmp_path / CHECKPOINT
    agent.save(path)
    payload = torch.load(path, weights_only=True)
    lows = [key for key in payload["state"]["net"] if key.endswith("low")]
    assert lows, "the network has no encoder bounds to corrupt"
    for key in lows:
        payload["state"]["net"][key] = torch.full_like(payload["state"]["net"][key], NAN)
    torch.save(payload, path)
    try:
        agent.load(path)
    except ValueError as error:  # the right outcome: NaN weights are refused
        assert "NaN" in str(error) or any(_names(str(error), key) for key in lows), str(error)
    np.testing.assert_array_equal(env.observation_space.low, low)
    np.testing.assert_array_equal(env.observation_space.high, high)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_every_category_keeps_its_cases() -> None:
    """The table cannot quietly shrink: each category keeps at least five cases, and ids are unique."""
    cases = [*REFUSED, *ACCEPTED]
    counts = collections.Counter(case.category for case in cases)
    assert set(counts) == set(CATEGORIES), counts
    small = {category: n for category, n in counts.items() if n < MIN_CASES_PER_CATEGORY}
    assert not small, f"categories with fewer than {MIN_CASES_PER_CATEGORY} cases: {small}"
    ids = collections.Counter(f"{case.category}-{case.id}" for case in cases)
    assert [i for i, n in ids.items() if n > 1] == []
    assert all(case.names for case in REFUSED), "a refused case must name what its message names"
