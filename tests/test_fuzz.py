"""Fuzzing the inputs a reader hands the library (issue 11): configs, CSV files, checkpoint bytes.

Each property says what *any* input must give: a working object, or a ``ValueError`` /
``TypeError`` (``SchemaError`` is a ``ValueError``) naming the field or file; never another
exception class, never a silently wrong result. Messages are matched only on the names they must
contain, so the properties hold while the messages are reworded (``recrl_lite/errors.py``).

``derandomize=True`` replays the same examples on every run, so CI is reproducible and a property
marked ``xfail(strict=True, reason="BUG: ...")`` fails the same way until the bug is fixed. Those
skip shrinking (it would run on every test run while the bug stands).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from recrl_lite.agents import QLearningAgent
from recrl_lite.agents.dqn import DQNAgent, DQNConfig
from recrl_lite.data import SCHEMAS, Dataset, generate_dataset, load_dataset, validate_table
from recrl_lite.envs import ECommerceConfig, ECommerceEnv
from recrl_lite.envs.ecommerce import _CONFIG_RULES  # each field's kind, as tests/test_env.py reads it

torch.set_num_threads(1)

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
# for the xfail properties: stop at the first failure instead of shrinking it on every run


# ============================================================================= configs
CONFIG_FIELDS = [f.name for f in dataclasses.fields(ECommerceConfig)]
SPECIAL_FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1e-300, 0.999_999_999])
ORDINARY_FLOATS = st.one_of(st.floats(min_value=-10.0, max_value=10.0), SPECIAL_FLOATS)
# Values of every kind a typo or a wrong variable gives: NaN/inf, out-of-range and boundary ints,
# strings, None, bools, tuples (of NaN too) and tuples of ints (item_categories).
HOSTILE_VALUES = st.one_of(
    st.integers(min_value=-3, max_value=130),
    st.sampled_from([0, 1, 2, 1_000, 1_024, 90_000, 90_001, 100_000, 100_001, 10**9, 2**63, -(2**63)]),
    ORDINARY_FLOATS,
    st.text(max_size=6),
    st.sampled_from(["click", "revenue", "50", "nan"]),
    st.none(),
    st.booleans(),
    st.tuples(ORDINARY_FLOATS, ORDINARY_FLOATS),
    st.lists(st.integers(-1, 12), max_size=4).map(tuple),
)
# Finite floats of any size for the float fields: no finite value may crash the env.
FLOAT_FIELDS = tuple(name for name, rule in _CONFIG_RULES.items() if rule[0] == "float")
HUGE_FINITE_FLOATS = st.floats(min_value=1e3, max_value=1e300) | st.floats(min_value=-1e300, max_value=-1e3)
# Above this magnitude a float field belongs to the huge-float property (where a bug stands), not the first.
ORDINARY_FLOAT_BOUND = 10.0
# An int beyond the float range, e.g. a typo of exponent (10**400): Python can hold it, floats cannot.
INTS_BEYOND_FLOAT = st.integers(min_value=2**1024, max_value=2**1100)
# keeps one example's catalogue small enough for a shared test machine (not a limit of the library)
MAX_CATALOGUE_FLOATS = 4_000_000


def _check_config_overrides(overrides: dict[str, Any]) -> None:
    """Build a config from ``overrides``: it is refused naming a field, or the env runs on it."""
    try:
        config = ECommerceConfig(**overrides)
    except (ValueError, TypeError) as error:
        event("refused")
        message = str(error)
        assert any(name in message for name in overrides), f"no overridden field is named in: {message}"
        return
    event("constructed")
    if config.n_items * config.embedding_dim > MAX_CATALOGUE_FLOATS:
        return
    env = ECommerceEnv(config)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs), (overrides, obs)
    env.action_space.seed(0)
    obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs), (overrides, obs)
    assert isinstance(reward, float) and math.isfinite(reward), reward
    assert isinstance(terminated, bool) and isinstance(truncated, bool)


CONFIG_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ECommerceConfig)}


def _plausible(name: str) -> st.SearchStrategy[Any]:
    """Values near the field's default (mostly valid), so that hostile values also meet working configs."""
    default = CONFIG_DEFAULTS[name]
    if name == "reward":
        return st.sampled_from(["click", "revenue"])
    if name == "item_categories":
        return st.none() | st.lists(st.integers(0, 9), min_size=1, max_size=4, unique=True).map(tuple)
    if name in ("item_seed", "catalogue_seed"):
        return st.integers(0, 2**32)
    if isinstance(default, tuple):
        return st.tuples(st.floats(0.0, 2.0), st.floats(0.0, 2.0)).map(lambda pair: tuple(sorted(pair)))
    if isinstance(default, int):
        return st.integers(max(1, default // 2), 2 * default + 10)
    low, high = sorted((0.5 * default, 1.5 * default))
    return st.floats(low, high)


def _is_huge_float(name: str, value: Any) -> bool:
    real = isinstance(value, (int, float)) and not isinstance(value, bool)
    return name in FLOAT_FIELDS and real and math.isfinite(value) and abs(value) > ORDINARY_FLOAT_BOUND


def _overrides(values: st.SearchStrategy[Any], fields: tuple[str, ...] = tuple(CONFIG_FIELDS), max_size: int = 3,
               plausible: bool = True, huge_floats: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """1..max_size random ``fields``, each set to one of ``values`` (or, if ``plausible``, to a value
    near its default); ``huge_floats=False`` leaves float fields at most ORDINARY_FLOAT_BOUND in size."""
    def value_of(name: str) -> st.SearchStrategy[tuple[str, Any]]:
        hostile = values if huge_floats else values.filter(lambda value: not _is_huge_float(name, value))
        return st.tuples(st.just(name), st.one_of(hostile, _plausible(name)) if plausible else hostile)
    return st.lists(st.sampled_from(fields).flatmap(value_of), min_size=1, max_size=max_size).map(dict)


@FUZZ
@given(overrides=_overrides(HOSTILE_VALUES, huge_floats=False))
def test_a_random_config_is_refused_naming_the_field_or_runs(overrides: dict[str, Any]) -> None:
    _check_config_overrides(overrides)


@FUZZ
@given(overrides=_overrides(HUGE_FINITE_FLOATS, fields=FLOAT_FIELDS, max_size=2, plausible=False))
def test_a_config_of_huge_finite_floats_is_refused_naming_the_field_or_runs(overrides: dict[str, Any]) -> None:
    _check_config_overrides(overrides)


@FUZZ
@given(overrides=_overrides(INTS_BEYOND_FLOAT, max_size=2, plausible=False))
def test_an_int_beyond_the_float_range_is_refused_naming_the_field_or_runs(overrides: dict[str, Any]) -> None:
    _check_config_overrides(overrides)


# ============================================================================= CSV files
TABLES = tuple(SCHEMAS)
NUMERIC_COLUMNS = {table: {c.name for c in columns if c.kind != "str"} for table, columns in SCHEMAS.items()}
NAN_SPELLINGS = ["", "nan", "NaN", "NA", "null", "N/A"]  # all read as NaN by pandas
INF_SPELLINGS = ["inf", "-inf", "1e999", "-1e999"]
CORRUPTIONS = ("drop_column", "strings", "nan", "inf", "truncate", "empty", "binary", "duplicate_header")


@functools.lru_cache(maxsize=1)
def _dataset() -> Dataset:
    return generate_dataset(n_users=12, seed=2)


def _rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode())))


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def _corrupt(original: bytes, table: str, kind: str, data: st.DataObject) -> tuple[bytes, bool]:
    """(corrupted bytes, whether the corruption always makes the table invalid)."""
    rows = _rows(original)
    header, n_rows = rows[0], len(rows) - 1
    column = data.draw(st.integers(0, len(header) - 1), label="column")
    row = 1 + data.draw(st.integers(0, n_rows - 1), label="row")
    if kind == "drop_column":
        return _csv([r[:column] + r[column + 1:] for r in rows]), True
    if kind == "strings":  # the column's dtype becomes text in some rows; a text that parses may stay valid
        text = data.draw(st.text(max_size=12), label="text")
        for r in data.draw(st.lists(st.integers(1, n_rows), min_size=1, max_size=n_rows), label="rows"):
            rows[r][column] = text
        return _csv(rows), False
    if kind == "nan":
        rows[row][column] = data.draw(st.sampled_from(NAN_SPELLINGS), label="nan")
        return _csv(rows), True
    if kind == "inf":
        rows[row][column] = data.draw(st.sampled_from(INF_SPELLINGS), label="inf")
        return _csv(rows), header[column] in NUMERIC_COLUMNS[table]  # "inf" is a fine title
    if kind == "truncate":
        return original[:data.draw(st.integers(0, len(original) - 1), label="cut")], False
    if kind == "empty":
        return b"", True
    if kind == "binary":
        return data.draw(st.binary(min_size=1, max_size=300), label="bytes"), True
    assert kind == "duplicate_header"
    return _csv([*rows[:row], header, *rows[row:]]), True


@pytest.mark.parametrize("kind", CORRUPTIONS)
@settings(FUZZ, max_examples=20)
@given(table=st.sampled_from(TABLES), data=st.data())
def test_a_corrupted_csv_is_refused_naming_the_file_or_loads_valid_tables(kind: str, table: str, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _dataset().to_csv(directory)
        path = directory / f"{table}.csv"
        corrupted, always_invalid = _corrupt(path.read_bytes(), table, kind, data)
        event(f"{table}.csv")
        path.write_bytes(corrupted)
        try:
            loaded = load_dataset(directory)
        except ValueError as error:  # SchemaError is a ValueError; any other class fails the test
            message = str(error)
            # rows cut from users/items leave interactions that reference them: that file is named
            dangling = table != "interactions" and "interactions.csv" in message and f"{table[:-1]}_id" in message
            assert path.name in message or dangling, message
            return
    assert not always_invalid, f"a {kind} corruption of {table}.csv loaded"
    for name in TABLES:
        validated = validate_table(getattr(loaded, name), name)
        assert len(validated) == len(getattr(loaded, name)) > 0


# ============================================================================= checkpoint bytes
MUTATIONS = ("truncate", "insert", "flip")


@functools.lru_cache(maxsize=1)
def _q_learning() -> QLearningAgent:
    agent = QLearningAgent(6, 3, seed=0)
    agent.q[:] = np.arange(18.0).reshape(6, 3) / 7
    agent.visits[:] = np.arange(18).reshape(6, 3)
    agent.episode = 4
    return agent


@functools.lru_cache(maxsize=2)
def _dqn(seed: int) -> DQNAgent:
    env = ECommerceEnv()
    return DQNAgent(env.observation_space, env.action_space, DQNConfig(hidden=(8,)), seed=seed)


def _same_q_learning(agent: QLearningAgent) -> bool:
    ref = _q_learning()
    return bool(np.array_equal(agent.q, ref.q) and np.array_equal(agent.visits, ref.visits) and agent.episode == ref.episode)


def _same_dqn(agent: DQNAgent) -> bool:
    ref = _dqn(0).net.state_dict()
    return all(torch.equal(value, ref[key]) for key, value in agent.net.state_dict().items())


AGENTS = {
    # name: (the saved agent, a fresh agent to load into, equality with the saved one)
    "tabular": (_q_learning, lambda: QLearningAgent(6, 3), _same_q_learning),
    "torch": (lambda: _dqn(0), lambda: _dqn(1), _same_dqn),
}


@functools.lru_cache(maxsize=2)
def _checkpoint_bytes(agent: str) -> bytes:
    buffer = io.BytesIO()
    AGENTS[agent][0]().save(buffer)
    return buffer.getvalue()


def _mutate(original: bytes, mutation: str, data: st.DataObject) -> bytes:
    if mutation == "truncate":
        return original[:data.draw(st.integers(0, len(original) - 1), label="cut")]
    if mutation == "insert":
        at = data.draw(st.integers(0, len(original)), label="at")
        return original[:at] + data.draw(st.binary(min_size=1, max_size=16), label="bytes") + original[at:]
    assert mutation == "flip"
    corrupted = bytearray(original)
    for at in data.draw(st.lists(st.integers(0, len(original) - 1), min_size=1, max_size=3), label="at"):
        corrupted[at] ^= data.draw(st.integers(1, 255), label="mask")
    return bytes(corrupted)


def _check_corrupted_checkpoint(agent: str, mutation: str, data: st.DataObject) -> None:
    """Loading corrupted bytes raises a ValueError naming the file, or loads exactly the saved policy."""
    _, fresh, same = AGENTS[agent]
    corrupted = _mutate(_checkpoint_bytes(agent), mutation, data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "agent.pt"
        path.write_bytes(corrupted)
        policy = fresh()
        try:
            policy.load(path)
        except ValueError as error:  # "not a recrl_lite checkpoint: <path>" or "refused ... for safety"
            assert str(path) in str(error), str(error)
            return
    assert mutation != "truncate", "a truncated checkpoint loaded"
    assert same(policy), f"a {mutation} of the checkpoint loaded a different policy"


@pytest.mark.parametrize("agent", list(AGENTS))
@FUZZ
@given(data=st.data())
def test_a_truncated_checkpoint_is_refused_naming_the_file(agent: str, data: st.DataObject) -> None:
    _check_corrupted_checkpoint(agent, "truncate", data)


@pytest.mark.parametrize("agent", list(AGENTS))
@FUZZ
@given(data=st.data())
def test_inserted_bytes_are_refused_naming_the_file_or_harmless(agent: str, data: st.DataObject) -> None:
    _check_corrupted_checkpoint(agent, "insert", data)


@pytest.mark.parametrize("agent", list(AGENTS))
@FUZZ
@given(data=st.data())
def test_flipped_bytes_are_refused_naming_the_file_or_harmless(agent: str, data: st.DataObject) -> None:
    _check_corrupted_checkpoint(agent, "flip", data)
