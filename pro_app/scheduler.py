"""The scheduler process: one APScheduler job that runs the dispatcher pass every minute.

Only the holder of the database lease sends; a second process waits until the lease expires,
so starting two schedulers (or one per web worker by mistake) never sends twice. Never started
from create_app().
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask, current_app
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from pro_app.extensions import db
from pro_app.models import SchedulerLease
from pro_app.models.types import utcnow
from pro_app.services.dispatch import dispatch_due_messages

log = logging.getLogger(__name__)

LEASE_NAME = "dispatcher"
LEASE_DURATION = timedelta(minutes=3)  # the default of SCHEDULER_LEASE_SECONDS


def lease_duration() -> timedelta:
    """How long a lease holds without renewal (SCHEDULER_LEASE_SECONDS)."""
    seconds = current_app.config.get("SCHEDULER_LEASE_SECONDS", LEASE_DURATION.total_seconds())
    return timedelta(seconds=float(seconds))


def holder_id() -> str:
    """Who holds the lease: host and process, for the admin's eyes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def acquire_lease(holder: str, now: datetime) -> bool:
    """Take or renew the dispatcher lease; False while another live process holds it."""
    # One conditional UPDATE decides atomically on SQLite and PostgreSQL alike.
    taken = db.session.execute(  # type: ignore[attr-defined]
        update(SchedulerLease)
        .where(
            SchedulerLease.name == LEASE_NAME,
            (SchedulerLease.holder == holder) | (SchedulerLease.expires_at <= now),
        )
        .values(holder=holder, expires_at=now + lease_duration())
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken:
        db.session.commit()
        return True
    if db.session.get(SchedulerLease, LEASE_NAME) is not None:
        db.session.rollback()
        return False
    db.session.add(
        SchedulerLease(name=LEASE_NAME, holder=holder, expires_at=now + lease_duration())
    )
    try:
        db.session.commit()
    except IntegrityError:  # another process created it first
        db.session.rollback()
        return False
    return True


def release_lease(holder: str, now: datetime) -> None:
    """Let another process take over at once (on a clean shutdown)."""
    lease = db.session.get(SchedulerLease, LEASE_NAME)
    if lease is not None and lease.holder == holder:
        lease.expires_at = now
        db.session.commit()


def run_pass_if_leader(app: Flask, holder: str) -> str | None:
    """One tick: the dispatcher pass if this process holds the lease; its summary line."""
    with app.app_context():
        now = utcnow()
        if not acquire_lease(holder, now):
            log.info("dispatcher lease held by another process; waiting")
            return None
        summary = dispatch_due_messages(now).line()
        lease = db.session.get(SchedulerLease, LEASE_NAME)
        if lease is not None and lease.holder == holder:
            lease.last_run_at, lease.last_summary = now, summary[:500]
            db.session.commit()
        return summary  # the pass logged its own "dispatch.pass" line


def build_scheduler(app: Flask, *, blocking: bool) -> BaseScheduler:
    """APScheduler with one interval job: coalesced, one instance, nothing pickled per patient."""
    holder = holder_id()
    scheduler: BaseScheduler = BlockingScheduler() if blocking else BackgroundScheduler()
    interval = int(app.config["SCHEDULER_INTERVAL_SECONDS"])
    scheduler.add_job(
        run_pass_if_leader,
        "interval",
        seconds=interval,
        args=(app, holder),
        id=LEASE_NAME,
        coalesce=True,
        max_instances=1,
        next_run_time=datetime.now().astimezone(),
        misfire_grace_time=interval,
    )
    return scheduler
