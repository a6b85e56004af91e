"""/healthz: the database decides 200 or 503; the scheduler's state is said but changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from pro_app import create_app
from pro_app.extensions import db
from pro_app.models import SchedulerLease
from pro_app.models.types import utcnow
from pro_app.scheduler import LEASE_NAME
from pro_app.services.metrics import DISPATCHER_LEASE, SchedulerState, scheduler_state
from tests import factories
from tests.conftest import make_config

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def app_config(database_uri: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    return make_config(database_uri, **getattr(request, "param", {}))


def _lease(app: Flask, last_run_at: datetime | None) -> None:
    with app.app_context():
        db.session.add(
            SchedulerLease(
                name=LEASE_NAME,
                holder="host:1",
                expires_at=utcnow() + timedelta(minutes=3),
                last_run_at=last_run_at,
                last_summary="opened 0, missed 0, claimed 0, sent 0",
            )
        )
        db.session.commit()


def test_the_metrics_service_reads_the_schedulers_own_lease() -> None:
    assert DISPATCHER_LEASE == LEASE_NAME


def test_no_pass_yet_is_never(app: Flask) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "scheduler": "never"}


def test_a_lease_without_a_finished_pass_is_never(app: Flask) -> None:
    _lease(app, None)
    assert app.test_client().get("/healthz").get_json()["scheduler"] == "never"


def test_a_recent_pass_is_ok(app: Flask) -> None:
    _lease(app, utcnow() - timedelta(seconds=100))  # interval 60 s: late after 180 s
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "scheduler": "ok"}


def test_an_old_pass_is_late_and_the_status_stays_200(app: Flask) -> None:
    _lease(app, utcnow() - timedelta(seconds=200))
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "scheduler": "late"}


@pytest.mark.parametrize(
    "app_config",
    [{"SCHEDULER_INTERVAL_SECONDS": 600}],
    indirect=True,
)
def test_late_follows_the_configured_interval(app: Flask) -> None:
    _lease(app, utcnow() - timedelta(seconds=200))
    assert app.test_client().get("/healthz").get_json()["scheduler"] == "ok"


def test_a_database_without_tables_is_up_but_the_scheduler_unknown(tmp_path: Path) -> None:
    empty = create_app(make_config(f"sqlite:///{tmp_path / 'empty.sqlite3'}"))
    try:
        response = empty.test_client().get("/healthz")
        assert response.status_code == 200
        assert response.get_json() == {"status": "ok", "database": "ok", "scheduler": "unknown"}
    finally:
        with empty.app_context():
            db.engine.dispose()


def test_nothing_about_the_trial_is_said(app: Flask) -> None:
    for n in range(3):
        factories.enrol(app, f"MI01-{n:04d}")
    body = app.test_client().get("/healthz").get_json()
    assert set(body) == {"status", "database", "scheduler"}
    assert all(isinstance(value, str) and not value.isdigit() for value in body.values())


@pytest.mark.parametrize(
    ("seconds_ago", "state"),
    [(None, "never"), (0, "ok"), (180, "ok"), (181, "late"), (86400, "late")],
)
def test_scheduler_state_boundaries(seconds_ago: int | None, state: str) -> None:
    last = None if seconds_ago is None else NOW - timedelta(seconds=seconds_ago)
    assert scheduler_state(last, NOW, 60) == SchedulerState(state)
