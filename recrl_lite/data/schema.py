"""The dataset's schema, and loaders that reject bad data with errors naming file, column and rows.

Introduced in chapter 2. The article's preprocessing read an ``ecommerce_data.csv`` that never
existed; here every table has a declared schema and is checked on load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recrl_lite.envs.ecommerce import AGE_MAX, AGE_MIN, GENDERS, LOCATIONS
from recrl_lite.errors import check_choice, interval, invalid


class SchemaError(ValueError):
    """A table does not match its schema. The message names the file, column and offending rows."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "int", "float" or "str"
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: low itself is not allowed
    allowed: tuple[str, ...] | None = None
    unique: bool = False
    description: str = ""


SCHEMAS: dict[str, tuple[Column, ...]] = {
    "users": (
        Column("user_id", "int", unique=True, description="public user id (not contiguous)"),
        Column("age", "int", AGE_MIN, AGE_MAX, description="years"),
        Column("gender", "str", allowed=GENDERS),
        Column("location", "str", allowed=LOCATIONS),
    ),
    "items": (
        Column("item_id", "int", unique=True, description="public item id; ascending order = env action index"),
        Column("category", "str", description="category name"),
        Column("price", "float", 0.0, None, low_open=True, description="price in currency units"),
        Column("title", "str", description="synthetic product title written from the item's hidden attributes "
                                           "(recrl_lite.data.titles, chapter 6)"),
    ),
    "interactions": (
        Column("user_id", "int", description="references users.user_id"),
        Column("item_id", "int", description="references items.item_id"),
        Column("timestamp", "int", 0, None, description="seconds since the log began"),
        Column("position", "int", 0, None, description="slot in the slate, 0 = top"),
        Column("click", "int", 0, 1, description="1 if the recommendation was clicked"),
        Column("purchase", "int", 0, 1, description="1 if the click led to a purchase"),
        Column("propensity", "float", 0.0, 1.0, low_open=True, description="behaviour policy's probability of this recommendation"),
    ),
}

_MAX_ROWS_SHOWN = 5


def _rows(mask: np.ndarray | pd.Series) -> str:
    rows = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(r) for r in rows[:_MAX_ROWS_SHOWN])
    more = f" and {rows.size - _MAX_ROWS_SHOWN} more" if rows.size > _MAX_ROWS_SHOWN else ""
    return f"rows [{shown}]{more}"


def _shown(values: pd.Series, mask: np.ndarray | None = None) -> list[object]:
    """The first few (offending, where ``mask`` is given) values of a column, for an error message."""
    picked = values if mask is None else values[np.asarray(mask)]
    return picked.iloc[:_MAX_ROWS_SHOWN].tolist()


def validate_table(frame: pd.DataFrame, table: str, source: str | None = None) -> pd.DataFrame:
    """Check ``frame`` against ``SCHEMAS[table]`` and return it with only the schema's columns, in order.

    Raises :class:`SchemaError` for a missing column, a wrong dtype, NaN, a value out of range or not
    allowed, or a duplicated id. Rows are 0-based data rows (the CSV header is not counted).
    """
    check_choice("table", table, sorted(SCHEMAS))
    where = source or f"{table} table"
    schema = SCHEMAS[table]
    # two columns of one name make frame[name] a frame, not a column: which one is meant is unknowable
    duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if duplicated:
        raise invalid(f"{where} columns", list(frame.columns), "distinct column names",
                      why=f"{duplicated} appear more than once", error=SchemaError)
    missing = [c.name for c in schema if c.name not in frame.columns]
    if missing:
        raise invalid(f"{where} columns", list(frame.columns), f"the columns {[c.name for c in schema]}",
                      why=f"missing {missing}", error=SchemaError)
    frame = frame.reset_index(drop=True)
    if len(frame) == 0:
        raise invalid(f"{where} row count", 0, "at least one row",
                      why=f"it has no rows, perhaps only a header; the {table} table needs at least one",
                      error=SchemaError)
    for col in schema:
        values = frame[col.name]
        column = f"{where} column {col.name!r}"
        nan = values.isna().to_numpy()
        if nan.any():
            raise invalid(column, _shown(values, nan), "no missing values", why=f"NaN in {_rows(nan)}",
                          error=SchemaError)
        if col.kind in ("int", "float"):
            numeric = pd.to_numeric(values, errors="coerce")
            bad = numeric.isna().to_numpy()
            if bad.any():
                raise invalid(column, _shown(values, bad), f"{col.kind} values", why=f"not numbers in {_rows(bad)}",
                              error=SchemaError)
            if pd.api.types.is_complex_dtype(numeric):  # a cast to float would drop the imaginary parts
                raise invalid(column, _shown(values), f"{col.kind} values", why=f"found complex dtype {numeric.dtype}",
                              error=SchemaError)
            if col.kind == "int":
                if pd.api.types.is_bool_dtype(values):
                    numeric = values.astype("int64")
                elif not pd.api.types.is_integer_dtype(numeric):
                    frac = (numeric != np.round(numeric)).to_numpy()
                    raise invalid(
                        column, _shown(values, frac if frac.any() else None), "integer values",
                        why=f"found dtype {values.dtype}"
                        + (f"; non-integral values in {_rows(frac)}" if frac.any() else ""),
                        error=SchemaError,
                    )
                elif numeric.dtype == np.uint64:  # pandas reads values of 2**63 and above as uint64
                    big = (numeric > np.iinfo(np.int64).max).to_numpy()
                    raise invalid(column, _shown(numeric, big), "integers within the int64 range",
                                  why=f"above it in {_rows(big)}", error=SchemaError)
                numeric = numeric.astype("int64")
            else:
                numeric = numeric.astype("float64")
                infinite = np.isinf(numeric.to_numpy())
                if infinite.any():
                    raise invalid(column, _shown(numeric, infinite), "finite values",
                                  why=f"infinite in {_rows(infinite)}", error=SchemaError)
            too_low = np.zeros(len(frame), dtype=bool)
            if col.low is not None:
                too_low = (numeric <= col.low if col.low_open else numeric < col.low).to_numpy()
            too_high = (numeric > col.high).to_numpy() if col.high is not None else np.zeros(len(frame), dtype=bool)
            out = too_low | too_high
            if out.any():
                raise invalid(column, _shown(numeric, out), f"values in {interval(col.low, col.high, col.low_open)}",
                              why=f"outside in {_rows(out)}", error=SchemaError)
            frame[col.name] = numeric
        else:
            if not (pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)):
                raise invalid(column, _shown(values), "strings", why=f"found dtype {values.dtype}", error=SchemaError)
            values = values.astype(str)
            if col.allowed is not None:
                bad = (~values.isin(col.allowed)).to_numpy()
                if bad.any():
                    raise invalid(column, _shown(values, bad), f"one of {list(col.allowed)}",
                                  why=f"not allowed in {_rows(bad)}", error=SchemaError)
            frame[col.name] = values
        if col.unique:
            dup = frame[col.name].duplicated(keep=False).to_numpy()
            if dup.any():
                raise invalid(column, _shown(frame[col.name], dup), "unique ids", why=f"{_rows(dup)} repeat ids",
                              error=SchemaError)
    if table == "interactions":
        orphan = ((frame["purchase"] == 1) & (frame["click"] == 0)).to_numpy()
        if orphan.any():
            raise invalid(f"{where} column 'purchase'", _shown(frame["purchase"], orphan), "0 where click is 0",
                          why=f"purchase without a click in {_rows(orphan)}; a purchase follows a click",
                          error=SchemaError)
    return frame[[c.name for c in schema]]


def check_references(interactions: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame, source: str = "interactions") -> None:
    """Every interaction must name a known user and a known item."""
    for column, table, table_name in (("user_id", users, "users"), ("item_id", items, "items")):
        unknown = (~interactions[column].isin(table[column])).to_numpy()
        if unknown.any():
            raise invalid(f"{source} column {column!r}", _shown(interactions[column], unknown),
                          f"ids of the {table_name} table", why=f"unknown ids in {_rows(unknown)}", error=SchemaError)


def read_table(path: str | os.PathLike[str], table: str) -> pd.DataFrame:
    """Read one CSV and validate it against ``SCHEMAS[table]``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (expected the {table!r} table)")
    try:
        # round_trip: pandas before 3.1 reads float64 back up to one ulp off without it
        frame = pd.read_csv(path, float_precision="round_trip")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        why = "the file is empty" if path.stat().st_size == 0 else f"{type(error).__name__}: {error}"
        with path.open("rb") as handle:  # the file's first bytes show what it holds instead
            head = handle.read(16)
        raise invalid(str(path), head, f"a readable CSV file for the {table!r} table", why=why,
                      error=SchemaError) from None
    return validate_table(frame, table, source=str(path))
