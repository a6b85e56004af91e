"""Means with 95% confidence intervals (Student's t), for the analyst plots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Two-sided 95% critical values of Student's t by degrees of freedom. Between the listed
# values the quantile is interpolated linearly in 1/df, which is accurate to about 1e-3.
_T_975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    11: 2.201,
    12: 2.179,
    13: 2.160,
    14: 2.145,
    15: 2.131,
    16: 2.120,
    17: 2.110,
    18: 2.101,
    19: 2.093,
    20: 2.086,
    21: 2.080,
    22: 2.074,
    23: 2.069,
    24: 2.064,
    25: 2.060,
    26: 2.056,
    27: 2.052,
    28: 2.048,
    29: 2.045,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}
_Z_975 = 1.959964


def t_critical_95(df: int) -> float:
    """The 97.5th percentile of Student's t with df degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError("degrees of freedom must be at least 1")
    if df in _T_975:
        return _T_975[df]
    listed = sorted(_T_975)
    if df > listed[-1]:
        lower_df, lower_t, upper_inv, upper_t = listed[-1], _T_975[listed[-1]], 0.0, _Z_975
    else:
        lower_df = max(d for d in listed if d < df)
        upper_df = min(d for d in listed if d > df)
        lower_t, upper_inv, upper_t = _T_975[lower_df], 1 / upper_df, _T_975[upper_df]
    lower_inv = 1 / lower_df
    share = (1 / df - upper_inv) / (lower_inv - upper_inv)
    return upper_t + share * (lower_t - upper_t)


@dataclass(frozen=True)
class MeanCI:
    """n, mean and the 95% interval; the interval is None with fewer than two values."""

    n: int
    mean: float | None
    low: float | None
    high: float | None


def mean_ci(values: Sequence[float]) -> MeanCI:
    """Mean and t-based 95% confidence interval of the values."""
    n = len(values)
    if n == 0:
        return MeanCI(0, None, None, None)
    mean = math.fsum(values) / n
    if n == 1:
        return MeanCI(1, mean, None, None)
    variance = math.fsum((value - mean) ** 2 for value in values) / (n - 1)
    half = t_critical_95(n - 1) * math.sqrt(variance / n)
    return MeanCI(n, mean, mean - half, mean + half)
