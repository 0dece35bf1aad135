"""The one error style (recrl_lite.errors) and a check that the whole package uses it."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from recrl_lite import errors
from recrl_lite.data.schema import SchemaError

PACKAGE = Path(errors.__file__).resolve().parent


def test_invalid_names_the_argument_the_value_and_what_was_expected() -> None:
    error = errors.invalid("k", 121, "an int in [1, 120]", why="k cannot exceed the catalogue")
    assert isinstance(error, ValueError) and not isinstance(error, TypeError)
    assert str(error) == "invalid k 121: expected an int in [1, 120] (k cannot exceed the catalogue)"
    assert str(errors.invalid("mode", "x", "'a' or 'b'")) == "invalid mode 'x': expected 'a' or 'b'"
    schema = errors.invalid("items.csv column 'price'", float("inf"), "finite values", error=SchemaError)
    assert isinstance(schema, SchemaError) and str(schema).startswith("invalid items.csv column 'price' inf:")


def test_invalid_type_adds_the_type() -> None:
    error = errors.invalid_type("seed", "3", "an int")
    assert isinstance(error, TypeError)
    assert str(error) == "invalid seed '3' (type str): expected an int"


def test_invalid_fields_reports_every_problem() -> None:
    error = errors.invalid_fields("Config", ["a=1; expected an int in [2, 3]", "b=nan; expected a finite number"])
    assert str(error) == "invalid Config: a=1; expected an int in [2, 3]; b=nan; expected a finite number"


def test_describe_keeps_messages_short() -> None:
    assert errors.describe(np.zeros((1000, 3))) == "ndarray(shape=(1000, 3), dtype=float64)"
    assert errors.describe(np.array([1, 2])) == "ndarray([1, 2], dtype=int64)"
    assert errors.describe(torch.ones(2)) == "Tensor([1.0, 1.0], dtype=torch.float32)"
    assert errors.describe(torch.ones(50, 2)).startswith("Tensor(shape=(50, 2)")
    long = errors.describe(list(range(1000)))
    assert len(long) == errors.MAX_VALUE_CHARS and long.endswith(" ...") and long.startswith("[0, 1, 2")
    assert errors.describe(np.float64(0.5)) == repr(np.float64(0.5))
    assert errors.describe("abc") == "'abc'"


def test_interval_notation() -> None:
    assert errors.interval(1, 120) == "[1, 120]"
    assert errors.interval(0, None, low_open=True) == "(0, inf)"
    assert errors.interval(None, 1.5, high_open=True) == "(-inf, 1.5)"


def test_check_int() -> None:
    assert errors.check_int("n", np.int64(3), 1, 5) == 3 and isinstance(errors.check_int("n", np.int64(3)), int)
    with pytest.raises(TypeError, match=r"invalid n True \(type bool\): expected an int in \[1, 5\]"):
        errors.check_int("n", True, 1, 5)
    with pytest.raises(TypeError, match=r"invalid n 2.0 \(type float\)"):
        errors.check_int("n", 2.0, 1, 5)
    with pytest.raises(ValueError, match=r"invalid n 6: expected an int in \[1, 5\]"):
        errors.check_int("n", 6, 1, 5)
    with pytest.raises(ValueError, match=r"invalid n 0: expected an int in \[1, inf\)"):
        errors.check_int("n", 0, low=1)
    assert errors.check_int("n", -7) == -7


def test_check_number() -> None:
    assert errors.check_number("p", 1, 0.0, 1.0) == 1.0
    for bad in (float("nan"), float("inf"), -0.1):
        with pytest.raises(ValueError, match=r"invalid p .*: expected a finite number in \[0, 1\]"):
            errors.check_number("p", bad, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"expected a finite number in \(0, inf\)"):
        errors.check_number("t", 0.0, 0.0, low_open=True)
    with pytest.raises(ValueError):
        errors.check_number("t", 1.0, None, 1.0, high_open=True)
    with pytest.raises(TypeError, match=r"invalid p '1' \(type str\)"):
        errors.check_number("p", "1")
    with pytest.raises(TypeError):
        errors.check_number("p", False)


def test_check_choice() -> None:
    assert errors.check_choice("kind", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"invalid kind 'c': expected one of 'a', 'b'"):
        errors.check_choice("kind", "c", ("a", "b"))
    with pytest.raises(ValueError, match=r"invalid kind \[1\]"):
        errors.check_choice("kind", [1], {"a", "b"})


def test_check_finite() -> None:
    assert errors.check_finite("x", [1.0, 2.0]).tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match=r"invalid x .*: expected finite values \(2 NaN or inf entries\)"):
        errors.check_finite("x", [np.nan, 1.0, np.inf])
    with pytest.raises(TypeError, match=r"expected an array of real numbers"):
        errors.check_finite("x", ["a"])


def test_check_columns() -> None:
    errors.check_columns("users table", ["user_id", "age"], ["age"])
    with pytest.raises(ValueError, match=r"invalid users table columns \['user_id'\]: expected the columns "
                                         r"\['user_id', 'age'\] \(missing \['age'\]\)"):
        errors.check_columns("users table", ["user_id"], ["user_id", "age"])


# The exceptions a bad input raises. Their messages must come from recrl_lite.errors.
CHECKED = {"ValueError", "TypeError", "SchemaError"}


def _raises_built_by_hand(path: Path) -> list[str]:
    """``line raise Name(...)`` for each ValueError/TypeError/SchemaError built in place in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in CHECKED:
                found.append(f"{node.lineno} raise {name}(...)")
    return found


def test_every_value_and_type_error_of_the_package_uses_the_one_style() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{site}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "errors.py"
        for site in _raises_built_by_hand(path)
    ]
    assert not offenders, (
        "build these errors with recrl_lite.errors (invalid, invalid_type, invalid_fields or a check_*):\n"
        + "\n".join(offenders)
    )


def test_the_style_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import x\ndef f(v):\n    raise ValueError(f'bad {v}')\n\ndef g(v):\n    raise x.SchemaError('no')\n")
    good = tmp_path / "good.py"
    good.write_text("from recrl_lite.errors import invalid\ndef f(v):\n    raise invalid('v', v, 'an int')\n")
    assert _raises_built_by_hand(bad) == ["3 raise ValueError(...)", "6 raise SchemaError(...)"]
    assert _raises_built_by_hand(good) == []


def test_describe_shows_tables_by_shape() -> None:
    import pandas as pd

    assert errors.describe(pd.DataFrame({"a": [1]})) == "DataFrame(shape=(1, 1))"
    assert errors.describe(pd.Series([1.5, 2.0])) == "Series([1.5, 2.0], dtype=float64)"


def test_invalid_file_leads_with_what_the_file_should_be() -> None:
    error = errors.invalid_file("/tmp/a.pt", "a recrl_lite checkpoint", "the file is empty")
    assert isinstance(error, ValueError)
    assert str(error) == "not a recrl_lite checkpoint: /tmp/a.pt (the file is empty)"
    assert isinstance(errors.invalid_file("x.csv", "a CSV table", "binary", error=SchemaError), SchemaError)


def test_check_number_refuses_an_int_beyond_the_float_range() -> None:
    assert not errors.is_finite_real(10**400) and errors.is_finite_real(3)
    with pytest.raises(ValueError, match=r"invalid x 1000.*: expected a finite number"):
        errors.check_number("x", 10**400)
