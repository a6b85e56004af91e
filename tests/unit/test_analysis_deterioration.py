"""Time to deterioration: worked examples per scale kind (SCORING.md, "Clinical interpretation")."""

from __future__ import annotations

from pro_app.analysis.deterioration import (
    Observation,
    Outcome,
    is_worse,
    time_to_deterioration,
)

BASE = Observation("baseline", 2, 66.67)


def test_functional_scale_falls_by_exactly_the_threshold() -> None:
    # PF2 66.67 -> 58.33 (-8.3, not yet) -> 56.67 (-10.0: deterioration at month 6).
    result = time_to_deterioration(
        BASE,
        [Observation("month3", 92, 58.33), Observation("month6", 185, 56.67)],
        10,
        higher_is_worse=False,
    )
    assert result.outcome is Outcome.EVENT
    assert (result.timepoint, result.day, result.event_flag) == ("month6", 185, 1)
    assert round(result.change or 0, 2) == -10.0


def test_functional_scale_improving_is_censored_at_last_assessment() -> None:
    result = time_to_deterioration(
        BASE,
        [Observation("month3", 90, 80.0), Observation("month6", 181, 73.33)],
        10,
        higher_is_worse=False,
    )
    assert (result.outcome, result.event_flag) == (Outcome.CENSORED, 0)
    assert (result.timepoint, result.day, result.follow_up_count) == ("month6", 181, 2)


def test_symptom_scale_rises() -> None:
    # Fatigue 22.22 -> 33.33 (+11.1): worse for a symptom scale; a fall would be an improvement.
    baseline = Observation("baseline", 0, 22.22)
    worse = time_to_deterioration(
        baseline, [Observation("month3", 95, 33.33)], 10, higher_is_worse=True
    )
    assert (worse.outcome, worse.day) == (Outcome.EVENT, 95)
    better = time_to_deterioration(
        baseline, [Observation("month3", 95, 0.0)], 10, higher_is_worse=True
    )
    assert better.outcome is Outcome.CENSORED


def test_global_health_status_first_event_wins() -> None:
    # QL2 (higher is better): 75 -> 58.33 at month 3 (-16.7) -> 50 at month 6: event at month 3.
    result = time_to_deterioration(
        Observation("baseline", 1, 75.0),
        [Observation("month6", 183, 50.0), Observation("month3", 91, 58.33)],  # any order
        10,
        higher_is_worse=False,
    )
    assert (result.outcome, result.timepoint, result.day) == (Outcome.EVENT, "month3", 91)


def test_without_baseline_nothing_can_be_said() -> None:
    result = time_to_deterioration(
        None, [Observation("month3", 91, 10.0)], 10, higher_is_worse=False
    )
    assert result.outcome is Outcome.NO_BASELINE
    assert (result.event_flag, result.day, result.baseline, result.change) == (
        None,
        None,
        None,
        None,
    )
    assert result.follow_up_count == 1


def test_baseline_only_is_censored_at_baseline() -> None:
    result = time_to_deterioration(BASE, [], 10, higher_is_worse=False)
    assert (result.outcome, result.day, result.follow_up_count) == (Outcome.CENSORED, 2, 0)


def test_threshold_is_a_setting() -> None:
    assert not is_worse(-9.99, 10, higher_is_worse=False)
    assert is_worse(-5.0, 5, higher_is_worse=False)
    # Floating-point noise must not hide a change of exactly the threshold.
    assert is_worse(60.0 - 70.00000000001, 10, higher_is_worse=False)
