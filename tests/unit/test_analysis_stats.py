"""Means and 95% confidence intervals for the analyst plots."""

from __future__ import annotations

import math
import statistics

import pytest

from pro_app.analysis.stats import mean_ci, t_critical_95


@pytest.mark.parametrize(
    ("df", "expected"),
    # Reference quantiles of Student's t (97.5th percentile), e.g. from R's qt(0.975, df).
    [(1, 12.706), (5, 2.571), (30, 2.042), (35, 2.030), (50, 2.009), (100, 1.984), (1000, 1.962)],
)
def test_t_quantile_matches_reference_values(df: int, expected: float) -> None:
    assert t_critical_95(df) == pytest.approx(expected, abs=2e-3)


def test_t_quantile_refuses_zero_degrees_of_freedom() -> None:
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_critical_95(0)


def test_worked_example() -> None:
    # 50, 60, 70: mean 60, sd 10, se 10/sqrt(3); t(2) = 4.303 -> half-width 24.84.
    result = mean_ci([50.0, 60.0, 70.0])
    assert result.n == 3
    assert result.mean == pytest.approx(60.0)
    half = 4.303 * 10 / math.sqrt(3)
    assert result.low == pytest.approx(60 - half)
    assert result.high == pytest.approx(60 + half)


def test_agrees_with_the_standard_library() -> None:
    values = [12.5, 33.3, 41.7, 58.3, 66.7, 75.0, 91.7, 100.0, 0.0, 25.0, 50.0, 83.3]
    result = mean_ci(values)
    half = t_critical_95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    assert result.mean == pytest.approx(statistics.fmean(values))
    assert (result.low, result.high) == pytest.approx((result.mean - half, result.mean + half))


def test_no_interval_without_two_values() -> None:
    assert mean_ci([]).mean is None
    single = mean_ci([40.0])
    assert (single.n, single.mean, single.low, single.high) == (1, 40.0, None, None)
