"""Time to QoL deterioration: the first worsening from baseline of at least a threshold.

"Worsening" is a fall for functional scales, the global health status and summary scores, and
a rise for symptom scales (SCORING.md). Only scored assessments count; time is days from
randomization, as in a time-to-event analysis. A patient with follow-up but no event is
censored at the last scored assessment; without a baseline score nothing can be said.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    EVENT = "event"
    CENSORED = "censored"
    NO_BASELINE = "no_baseline"


@dataclass(frozen=True)
class Observation:
    """One scored assessment of one scale: its time point, days from randomization, score."""

    timepoint: str
    day: int
    score: float


@dataclass(frozen=True)
class Deterioration:
    """The result for one patient and scale."""

    outcome: Outcome
    baseline: float | None
    timepoint: str | None = None  # of the event, or of the last assessment when censored
    day: int | None = None  # days from randomization to the event or censoring
    score: float | None = None
    follow_up_count: int = 0  # scored assessments after baseline

    @property
    def change(self) -> float | None:
        """Score at the event (or censoring) minus baseline."""
        if self.baseline is None or self.score is None:
            return None
        return self.score - self.baseline

    @property
    def event_flag(self) -> int | None:
        """1 = deteriorated, 0 = censored, None = not evaluable."""
        return {Outcome.EVENT: 1, Outcome.CENSORED: 0}.get(self.outcome)


def is_worse(change: float, threshold: float, *, higher_is_worse: bool) -> bool:
    """Whether a change from baseline is a worsening of at least the threshold."""
    # A tolerance keeps 60.0 - 70.0000000001 from missing a 10-point threshold by rounding.
    worsening = change if higher_is_worse else -change
    return worsening >= threshold - 1e-9


def time_to_deterioration(
    baseline: Observation | None,
    follow_up: Sequence[Observation],
    threshold: float,
    *,
    higher_is_worse: bool,
) -> Deterioration:
    """First follow-up observation worse than baseline by the threshold, in time order."""
    if baseline is None:
        return Deterioration(Outcome.NO_BASELINE, None, follow_up_count=len(follow_up))
    later = sorted(follow_up, key=lambda observation: observation.day)
    for observation in later:
        if is_worse(observation.score - baseline.score, threshold, higher_is_worse=higher_is_worse):
            return Deterioration(
                Outcome.EVENT,
                baseline.score,
                observation.timepoint,
                observation.day,
                observation.score,
                len(later),
            )
    last = later[-1] if later else baseline
    return Deterioration(
        Outcome.CENSORED,
        baseline.score,
        last.timepoint,
        max(last.day, 0),
        last.score,
        len(later),
    )
