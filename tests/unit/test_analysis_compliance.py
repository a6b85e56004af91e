"""The CONSORT-PRO compliance rules on single assessments (the whole table: tests/web)."""

from __future__ import annotations

from datetime import date

from pro_app.analysis.compliance import (
    AssessmentFacts,
    ComplianceRow,
    Timing,
    compliance_table,
    timing,
)

OPENS, CLOSES = date(2026, 3, 1), date(2026, 3, 29)
AS_OF = date(2026, 6, 1)


def facts(**changes: object) -> AssessmentFacts:
    values: dict[str, object] = {
        "timepoint": "month3",
        "arm": "tae",
        "opens_on": OPENS,
        "closes_on": CLOSES,
        "is_completed": False,
        "completed_on": None,
        "off_study_on": None,
    }
    values.update(changes)
    return AssessmentFacts(**values)  # type: ignore[arg-type]


def counted(*assessments: AssessmentFacts, as_of: date = AS_OF) -> ComplianceRow:
    row = ComplianceRow("month3", "tae")
    for assessment in assessments:
        row.count(assessment, as_of)
    return row


def test_timing_against_the_window() -> None:
    assert timing(OPENS, OPENS, CLOSES) is Timing.IN_WINDOW
    assert timing(CLOSES, OPENS, CLOSES) is Timing.IN_WINDOW
    assert timing(date(2026, 2, 27), OPENS, CLOSES) is Timing.EARLY
    assert timing(date(2026, 3, 30), OPENS, CLOSES) is Timing.LATE


def test_each_kind_of_assessment_lands_in_one_column() -> None:
    row = counted(
        facts(is_completed=True, completed_on=date(2026, 3, 5)),  # on time
        facts(is_completed=True, completed_on=date(2026, 4, 2)),  # late (paper)
        facts(is_completed=True, completed_on=date(2026, 2, 25)),  # early (paper)
        facts(),  # missed
        facts(off_study_on=date(2026, 3, 10)),  # withdrew during the window: not expected
        facts(off_study_on=date(2026, 4, 10)),  # withdrew after the window: still missed
    )
    assert (row.expected, row.received, row.on_time, row.late, row.early) == (5, 3, 1, 1, 1)
    assert (row.missed, row.off_study, row.pending) == (2, 1, 0)
    assert row.rate == 60.0


def test_open_window_is_pending_not_missed() -> None:
    row = counted(facts(), as_of=date(2026, 3, 15))
    assert (row.expected, row.missed, row.pending, row.rate) == (0, 0, 1, None)


def test_window_closing_today_is_still_pending() -> None:
    assert counted(facts(), as_of=CLOSES).pending == 1
    assert counted(facts(), as_of=date(2026, 3, 30)).missed == 1


def test_completed_before_withdrawal_counts_as_received() -> None:
    row = counted(
        facts(is_completed=True, completed_on=date(2026, 3, 2), off_study_on=date(2026, 3, 3))
    )
    assert (row.expected, row.received, row.off_study) == (1, 1, 0)


def test_table_has_each_arm_then_all_arms() -> None:
    rows = compliance_table(
        [facts(), facts(arm="control", is_completed=True, completed_on=OPENS)],
        ["month3"],
        ["tae", "control"],
        AS_OF,
    )
    assert [(r.arm, r.expected, r.received) for r in rows] == [
        ("tae", 1, 0),
        ("control", 1, 1),
        (None, 2, 1),
    ]
