"""One style for every error the library raises on bad input.

A message names **what** is wrong (the argument, field, column or file), the **bad value**, and
what was **expected**, optionally followed by **why** it matters::

    invalid k 121: expected an int in [1, 120] (k cannot exceed the catalogue)

This is the style the simulator's action errors set (``invalid action 7 (type int): expected one
integer item id in [0, 5]``). Every ``ValueError`` and ``TypeError`` raised by ``recrl_lite`` is built
here (a test walks the package's source to keep it so). Values are shown briefly: an array by its
shape and dtype, a long repr cut to :data:`MAX_VALUE_CHARS` characters, so a message never dumps
a whole dataset.

A file that cannot be what it should be reads ``not a recrl_lite checkpoint: PATH (the file is
empty)`` (:func:`invalid_file`); several bad fields of one config are reported at once
(:func:`invalid_fields`). The checkers (:func:`check_int`, :func:`check_number`, :func:`check_choice`, :func:`check_finite`,
:func:`check_columns`) cover the checks that recur; each returns the value it accepted.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "MAX_VALUE_CHARS",
    "describe",
    "interval",
    "invalid",
    "invalid_type",
    "invalid_fields",
    "invalid_file",
    "check_int",
    "check_number",
    "is_finite_real",
    "check_choice",
    "check_finite",
    "check_columns",
]

MAX_VALUE_CHARS = 80

E = TypeVar("E", bound=Exception)


def describe(value: Any) -> str:
    """A short repr of ``value`` for an error message (arrays and tensors by shape and dtype)."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and len(shape) > 0:  # arrays, tensors, Series, DataFrames (not scalars)
        kind, dtype = type(value).__name__, getattr(value, "dtype", None)
        if dtype is not None and int(np.prod(shape)) <= 6:
            try:
                values = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value).tolist()
            except Exception:  # an exotic array type: its shape is enough  # noqa: BLE001
                values = None
            if values is not None:
                return f"{kind}({values!r}, dtype={dtype})"
        return f"{kind}(shape={tuple(shape)}" + ("" if dtype is None else f", dtype={dtype}") + ")"
    text = repr(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 4] + " ..."
    return text


def interval(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    """The interval notation of a range: ``[1, 120]``, ``(0, inf)``; None is an open infinite end."""
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    return f"{left}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{right}"


def invalid(name: str, value: Any, expected: str, *, why: str | None = None, error: type[E] = ValueError) -> E:  # type: ignore[assignment]
    """The exception for a bad ``value`` of ``name``: ``invalid NAME VALUE: expected EXPECTED (WHY)``.

    ``raise invalid("k", k, f"an int in [1, {n}]")``. ``error`` is the class (ValueError by
    default; TypeError when the value has the wrong type, or a subclass such as ``SchemaError``).
    """
    message = f"invalid {name} {describe(value)}: expected {expected}"
    if why:
        message += f" ({why})"
    return error(message)


def invalid_type(name: str, value: Any, expected: str, *, why: str | None = None) -> TypeError:
    """A TypeError in the same style, with the value's type: ``invalid NAME VALUE (type T): expected ...``."""
    message = f"invalid {name} {describe(value)} (type {type(value).__name__}): expected {expected}"
    if why:
        message += f" ({why})"
    return TypeError(message)


def invalid_fields(owner: str, problems: Iterable[str]) -> ValueError:
    """One error for several bad fields of ``owner``: ``invalid OWNER: a=1; expected ...; b=...``.

    Each problem reads ``field=value; expected ...`` (a config reports all its bad fields at once).
    """
    return ValueError(f"invalid {owner}: " + "; ".join(problems))


def invalid_file(path: Any, expected: str, why: str, *, error: type[E] = ValueError) -> E:  # type: ignore[assignment]
    """A file that is not what it should be: ``not EXPECTED: PATH (WHY)``.

    ``raise invalid_file(path, "a recrl_lite checkpoint", "the file is empty")``: the file is the bad
    value, so the message leads with what it should have been.
    """
    return error(f"not {expected}: {path} ({why})")


def is_finite_real(value: Any) -> bool:
    """True for a real number (not a bool) that is finite as a float; an int beyond the float range
    (10**400) is not: ``math.isfinite`` would raise OverflowError converting it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) in [low, high]; else a clear error."""
    expected = f"an int in {interval(low, high)}" if low is not None or high is not None else "an int"
    if not _is_int(value):
        raise invalid_type(name, value, expected)
    if (low is not None and value < low) or (high is not None and value > high):
        raise invalid(name, value, expected)
    return int(value)


def check_number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float if it is a finite real number (not a bool) in the given interval."""
    expected = f"a finite number in {interval(low, high, low_open, high_open)}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise invalid_type(name, value, expected)
    if not is_finite_real(value):
        raise invalid(name, value, expected)
    v = float(value)
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        raise invalid(name, value, expected)
    return v


T = TypeVar("T")


def check_choice(name: str, value: T, choices: Collection[Any]) -> T:
    """``value`` if it is one of ``choices``; else an error listing them."""
    try:
        ok = value in choices
    except TypeError:  # an unhashable value tested against a set
        ok = False
    if not ok:
        raise invalid(name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_finite(name: str, values: Any) -> np.ndarray:
    """``values`` as a numpy array if every entry is finite; else an error counting the bad entries."""
    arr = np.asarray(values)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise invalid_type(name, values, "an array of real numbers")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise invalid(name, values, "finite values", why=f"{int(bad.sum())} NaN or inf entries")
    return arr


def check_columns(name: str, columns: Iterable[Any], required: Iterable[str]) -> None:
    """Raise unless every name in ``required`` is among ``columns`` (of the table ``name``)."""
    found, needed = list(columns), list(required)
    missing = [c for c in needed if c not in found]
    if missing:
        raise invalid(f"{name} columns", found, f"the columns {needed}", why=f"missing {missing}")
