"""Many patients answer at once through gunicorn (2 workers): every answer stored exactly once."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from tests.reliability.cohort import enrol_cohort
from tests.reliability.live_server import live_server
from tests.reliability.load import ITEMS_PER_ASSESSMENT, run_load, verify_load

PATIENTS = 30  # the full 200 run in bench/load_patients.py


def test_thirty_patients_answer_everything_at_once(
    app: Flask, database_uri: str, tmp_path: Path
) -> None:
    patients = enrol_cohort(app, PATIENTS)
    with live_server(database_uri, tmp_path / "server", workers=2) as server:
        run = run_load(server.url, patients)
        log = server.log()
    print(f"\n{database_uri.split(':')[0]}: {run.figures.line(run.seconds)}")
    assert verify_load(app, patients, run, log) == []
    assert sum(len(sent) for sent in run.sent.values()) == PATIENTS * ITEMS_PER_ASSESSMENT
