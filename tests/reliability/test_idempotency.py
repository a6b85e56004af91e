"""Saves and submissions replayed 3 times at the same moment are stored exactly once."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from tests.reliability.cohort import audit_counts, enrol_cohort
from tests.reliability.live_server import live_server
from tests.reliability.replay import patients_for, run_replays, verify_replays

OPERATIONS = 60  # the full 1,000 run in bench/idempotency.py


def test_every_save_and_submission_replayed_three_times_is_stored_once(
    app: Flask, database_uri: str, tmp_path: Path
) -> None:
    patients = enrol_cohort(app, patients_for(OPERATIONS), prefix="RP")
    with live_server(database_uri, tmp_path / "server", workers=2) as server:
        run = run_replays(server.url, patients, copies=3)
        log = server.log()
    print(f"\n{run.operations} operations x 3: {run.figures.line(run.seconds)}")
    assert run.operations >= OPERATIONS
    assert verify_replays(app, patients, run, log) == []
    # Every copy was answered as the first was (302 to the same place), none refused.
    assert run.replies == {"302": run.operations}
    # The audit trail shows each save request it received (values are the same each time).
    page_saves = run.operations - len(patients)
    assert page_saves <= sum(audit_counts(app, "answers.save").values()) <= 3 * page_saves
