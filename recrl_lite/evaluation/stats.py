"""Confidence intervals used wherever the book compares policies (chapter 1 onwards)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from recrl_lite.errors import invalid

# Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def t_quantile_975(df: int) -> float:
    """t_{0.975} with ``df`` degrees of freedom (normal 1.96 beyond 30, where t is within 2%)."""
    if df < 1:
        raise invalid("df", df, "an int in [1, inf)", why="degrees of freedom")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mean_ci(values: Iterable[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% t-interval. One value gives a half-width of NaN."""
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise invalid("values", x, "at least one value")
    if not np.isfinite(x).all():  # inf would give (inf, nan): no interval at all
        raise invalid("values", x, "finite values", why=f"{int((~np.isfinite(x)).sum())} NaN or inf entries")
    if x.size == 1:
        return float(x[0]), math.nan
    half = t_quantile_975(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return float(x.mean()), half


def intervals_disjoint(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when two (mean, half-width) intervals do not overlap."""
    return abs(a[0] - b[0]) > a[1] + b[1]


def paired_difference_ci(a: Iterable[float], b: Iterable[float]) -> tuple[float, float]:
    """Mean and 95% t-interval half-width of the paired differences ``a - b``.

    The book's paired test: two agents evaluated on the same seeds (the same training seeds and
    the same held-out users), one value per seed each. "A beats B" is then ``mean - half > 0``.
    Pairing removes what the seeds share (how hard that seed's users are), so it detects smaller
    differences than two separate intervals do.
    """
    x, y = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    if x.shape != y.shape:
        raise invalid("b", y, f"as many values as a ({x.shape[0]})", why="the values are paired, one per seed")
    return mean_ci(x - y)
