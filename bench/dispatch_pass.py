"""Cost of ONE dispatcher pass (`dispatch_due_messages`) as the trial grows: time, SQL, memory.

Run from the project folder:

    .venv/bin/python bench/dispatch_pass.py [--postgres URI] [--sizes 10000,100000] [--large]

For N = 1,000 and 10,000 enrolled patients (100,000 with --large) it builds a database on SQLite
(a temporary file) and, when --postgres URI or PRO_BENCH_POSTGRES_URI is given, on PostgreSQL
(that database's `public` schema is dropped and created again, before and after; the test
suite's `test` database is refused), then measures one pass at a fixed instant and prints:
messages due, sent, seconds, SQL statements, commits and the pass's peak Python memory
(tracemalloc), the same as a Markdown table, and how time and memory grow with N (issue 8:
at most linearly). --sizes 10000,100000 takes about 2 minutes on SQLite, 5 more on PostgreSQL.

Target: the statement count is constant in N. Every due message costs its own statements (the
dispatcher records each result at once), so a pass with ~3 % of patients due must grow with N;
what must not grow is the cost of the patients who are not due. Each database is therefore
measured twice at the same instant:
  * "all due": every message that is due, as a real pass would find it;
  * "K due":   the same pass with only the first K of those messages due (the same K messages
               for every N: patients are generated from per-patient seeds, so 1k is a prefix
               of 10k). Its statement count must be identical for every N.
The verdict compares the "K due" counts, and the statements per extra due message
((all - K) statements / (all - K) messages) across N.

The data: the synthetic trial of bench/synthetic_trial.py (patients randomized 1-200 days before the
measured instant, their history played up to the last pass at 23:55 the evening before). The
measured pass runs at 10:05 local time: it opens the windows that opened at midnight, marks
missed those that closed, and sends the invitations and reminders of 10:00 (memory mail and SMS
backends, no network). Answers and scores of completed assessments are not created: the
dispatcher never reads them.

Each pass is run twice from the same state (the rows it touches are saved and put back): once
for the time, once under tracemalloc for the memory peak and the statements' origins. Shared
machines are noisy: compare figures of one run with each other, not with another run's.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import tempfile
import time as clock
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask import Flask
from sqlalchemy import or_, update

from bench.app_setup import bench_app, reset_schema
from bench.measures import (
    at_most_linear,
    count_statements,
    growth_exponent,
    growth_word,
    markdown_table,
    short,
)
from bench.synthetic_trial import NOW, ROME, load_trial
from pro_app.extensions import db
from pro_app.models import (
    Assessment,
    AssessmentStatus,
    AuditEvent,
    Message,
    MessageStatus,
    PatientLink,
)
from pro_app.models.assessment import ANSWERABLE_STATUSES
from pro_app.services import assessment_states, dispatch
from pro_app.services.senders import senders

SIZES = (1_000, 10_000)
LARGE_SIZE = 100_000
FIXED_DUE = 20  # the "K due" pass

# --------------------------------------------------------------------------- measuring


@dataclass
class PassResult:
    label: str
    due: int
    opened: int = 0
    missed: int = 0
    sent: int = 0
    cancelled: int = 0
    seconds: float = 0.0
    statements: int = 0
    commits: int = 0
    peak_mb: float = 0.0
    shapes: Counter[tuple[str, str]] = field(default_factory=Counter)
    state_updates: int = 0  # chunked UPDATEs of assessment states (UPDATE_CHUNK rows each)


@dataclass
class Saved:
    """The rows a pass at NOW can change, as they were before it."""

    messages: list[dict[str, Any]]
    assessments: list[dict[str, Any]]
    links: int
    audit: int


MESSAGE_STATE = (
    "id",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "provider_id",
    "sent_at",
)


def save_state(now: datetime) -> Saved:
    due = db.session.execute(
        db.select(*(getattr(Message, c) for c in MESSAGE_STATE))
        .where(
            Message.status.in_([MessageStatus.PENDING, MessageStatus.SENDING]),
            Message.next_attempt_at <= now,
        )
        .order_by(Message.id)
    )
    soon = (now + timedelta(days=1)).date()
    candidates = db.session.execute(
        db.select(Assessment.id, Assessment.status).where(
            or_(
                (Assessment.status == AssessmentStatus.SCHEDULED)
                & (Assessment.window_opens_on <= soon),
                Assessment.status.in_(ANSWERABLE_STATUSES) & (Assessment.window_closes_on < soon),
            )
        )
    )
    saved = Saved(
        messages=[dict(row._mapping) for row in due],
        assessments=[dict(row._mapping) for row in candidates],
        links=db.session.scalar(db.select(db.func.count(PatientLink.id))) or 0,
        audit=db.session.scalar(db.select(db.func.count(AuditEvent.id))) or 0,
    )
    db.session.commit()
    return saved


def restore_state(saved: Saved, only_due: int | None = None) -> None:
    """Put back what a pass changed; with only_due, leave only the first messages due."""
    links = db.session.scalar(db.select(db.func.count(PatientLink.id)))
    audit = db.session.scalar(db.select(db.func.count(AuditEvent.id)))
    if (links, audit) != (saved.links, saved.audit):
        raise SystemExit(
            "The pass issued links or audit events: it cannot be repeated from a saved state."
        )
    messages = [dict(row) for row in saved.messages]
    if only_due is not None:
        for row in messages[only_due:]:
            row["next_attempt_at"] = NOW + timedelta(days=1)  # not due in this pass
    if messages:
        db.session.execute(update(Message), messages)
    if saved.assessments:
        db.session.execute(update(Assessment), saved.assessments)
    db.session.commit()


def run_pass(app: Flask, label: str, due: int, memory: bool) -> PassResult:
    """One dispatch_due_messages(NOW) in a fresh app context, counted and timed."""
    result = PassResult(label, due)
    with app.app_context():
        channel_senders = senders()
        channel_senders.email.sent.clear()  # type: ignore[attr-defined]
        channel_senders.sms.sent.clear()  # type: ignore[attr-defined]
        db.session.remove()
        gc.collect()
        with count_statements(db.engine, origins=memory) as counted:
            if memory:
                tracemalloc.start()
            started = clock.perf_counter()
            summary = dispatch.dispatch_due_messages(NOW)
            result.seconds = clock.perf_counter() - started
            if memory:
                result.peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
        db.session.remove()
    result.statements, result.commits = counted.statements, counted.commits
    result.shapes = counted.shapes
    result.opened, result.missed = summary.opened, summary.missed
    result.sent, result.cancelled = summary.sent, summary.cancelled
    chunk = assessment_states.UPDATE_CHUNK
    result.state_updates = math.ceil(result.opened / chunk) + math.ceil(result.missed / chunk)
    return result


def measure(app: Flask, saved: Saved, label: str, only_due: int | None) -> PassResult:
    """Time the pass, then repeat it from the same state under tracemalloc for the memory."""
    due = len(saved.messages) if only_due is None else min(only_due, len(saved.messages))
    results = []
    for memory in (False, True):
        with app.app_context():
            restore_state(saved, only_due)
        results.append(run_pass(app, label, due, memory))
    timed, traced = results
    if (timed.statements, timed.sent) != (traced.statements, traced.sent):
        raise SystemExit(f"{label}: the repeated pass differs ({timed} / {traced})")
    timed.peak_mb, timed.shapes = traced.peak_mb, traced.shapes
    with app.app_context():
        restore_state(saved)
    return timed


@dataclass
class Measured:
    database: str
    patients: int
    setup_seconds: float
    all_due: PassResult
    fixed: PassResult


def bench_database(name: str, uri: str, patients: int, reset_postgres: bool) -> Measured:
    if reset_postgres:
        reset_schema(uri)
    app = bench_app(uri)
    try:
        started = clock.perf_counter()
        with app.app_context():
            grace = timedelta(minutes=app.config["PATIENT_SUBMIT_GRACE_MINUTES"])
            load_trial(patients, grace)
            saved = save_state(NOW)
        setup = clock.perf_counter() - started
        all_due = measure(app, saved, "all due", None)
        fixed = measure(app, saved, f"{FIXED_DUE} due", FIXED_DUE)
        return Measured(name, patients, setup, all_due, fixed)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --------------------------------------------------------------------------- reporting


def print_table(results: list[Measured]) -> None:
    header = (
        f"{'database':<10} {'patients':>8} {'pass':<8} {'opened':>6} {'missed':>6} {'due':>5} "
        f"{'sent':>5} {'seconds':>8} {'statements':>10} {'per due':>7} {'commits':>7} "
        f"{'peak MB':>7}"
    )
    print(header)
    print("-" * len(header))
    for m in results:
        for r in (m.all_due, m.fixed):
            per_due = f"{r.statements / r.due:.1f}" if r.due else "-"
            print(
                f"{m.database:<10} {m.patients:>8,} {r.label:<8} {r.opened:>6} {r.missed:>6} "
                f"{r.due:>5} {r.sent:>5} {r.seconds:>8.3f} {r.statements:>10} {per_due:>7} "
                f"{r.commits:>7} {r.peak_mb:>7.1f}"
            )


def print_verdict(database: str, results: list[Measured]) -> bool:
    """Print the verdict lines of one database; True when the count is constant in N."""
    rows = [m for m in results if m.database == database]
    if len(rows) < 2:
        return True
    fixed = ", ".join(f"{short(m.patients)}={m.fixed.statements}" for m in rows)
    # Chunked state UPDATEs (one per UPDATE_CHUNK assessments changing state) grow by design.
    baseline = rows[0].fixed.statements - rows[0].fixed.state_updates
    constant = all(m.fixed.statements - m.fixed.state_updates == baseline for m in rows)
    chunks_differ = len({m.fixed.state_updates for m in rows}) > 1
    verdict = "constant" if constant else "GROWS"
    if any(m.all_due.due < FIXED_DUE for m in rows):
        verdict += f" (not comparable: a size has fewer than {FIXED_DUE} messages due)"
    if constant and chunks_differ:
        verdict += " (apart from one state UPDATE per 500 assessments, by design)"
    print(f"{database}: statements per pass with {FIXED_DUE} due: {fixed} → {verdict}")
    marginal = []
    for m in rows:
        extra = m.all_due.due - m.fixed.due
        value = (m.all_due.statements - m.fixed.statements) / extra if extra else float("nan")
        marginal.append(f"{short(m.patients)}={value:.2f}")
    alls = ", ".join(
        f"{short(m.patients)}={m.all_due.statements} ({m.all_due.due} due)" for m in rows
    )
    print(f"{database}: statements per pass with all due: {alls}")
    print(f"{database}: statements per extra due message: {', '.join(marginal)}")
    if not constant:
        first, last = rows[0].fixed.shapes, rows[-1].fixed.shapes
        print(
            f"{database}: statements that grow from {short(rows[0].patients)} "
            f"to {short(rows[-1].patients)}:"
        )
        for key in sorted(set(first) | set(last), key=lambda k: first[k] - last[k]):
            if last[key] != first[key]:
                print(f"    {first[key]:>6} → {last[key]:>6}  {key[1]}  [{key[0]}]")
    return constant


def print_markdown(results: list[Measured]) -> None:
    """The figures as a Markdown table, for docs/performance.md."""
    rows = []
    for m in results:
        for r in (m.all_due, m.fixed):
            per_due = f"{1000 * r.seconds / r.due:.1f}" if r.due else "-"
            rows.append(
                [m.database, f"{m.patients:,}", f"{m.setup_seconds:.0f}", r.label, r.opened,
                 r.missed, r.due, r.sent, f"{r.seconds:.2f}", per_due, r.statements, r.commits,
                 f"{r.peak_mb:.1f}"]
            )  # fmt: skip
    headers = ["database", " patients", " build s", "pass", " opened", " missed", " due", " sent",
               " seconds", " ms per due", " statements", " commits", " peak MB"]  # fmt: skip
    print(markdown_table(headers, rows))


def print_growth(database: str, results: list[Measured]) -> bool:
    """Time and memory against N: True when nothing grows faster than linearly."""
    rows = [m for m in results if m.database == database]
    if len(rows) < 2:
        return True
    sizes = [m.patients for m in rows]
    figures = {
        f"time, {FIXED_DUE} due": [m.fixed.seconds for m in rows],
        "time, all due": [m.all_due.seconds for m in rows],
        "time per due message": [m.all_due.seconds / max(m.all_due.due, 1) for m in rows],
        f"peak memory, {FIXED_DUE} due": [m.fixed.peak_mb for m in rows],
        "peak memory, all due": [m.all_due.peak_mb for m in rows],
    }
    ok = True
    for name, values in figures.items():
        exponent = growth_exponent(sizes, values)
        ok = ok and at_most_linear(exponent)
        span = " → ".join(f"{v:.3g}" for v in values)
        print(f"{database}: {name}: {span} ~ N^{exponent:.2f} ({growth_word(exponent)})")
    return ok


def print_origins(m: Measured) -> None:
    """Where the statements of the largest all-due pass come from, most frequent first."""
    r = m.all_due
    print(
        f"\n{m.database}, {m.patients:,} patients, all due ({r.due} messages): statements by origin"
    )
    for (origin, shape), count in r.shapes.most_common(14):
        per = f"{count / r.due:.2f}/msg" if r.due else ""
        print(f"  {count:>6} {per:>9}  {shape:<52} {origin}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PRO_BENCH_POSTGRES_URI", ""),
        help="PostgreSQL URI (its public schema is dropped!); default $PRO_BENCH_POSTGRES_URI",
    )
    parser.add_argument("--large", action="store_true", help=f"also {LARGE_SIZE:,} patients")
    parser.add_argument("--sizes", help="comma-separated patient counts instead of 1000,10000")
    args = parser.parse_args()
    run_started = clock.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(SIZES)
    if args.large:
        sizes.append(LARGE_SIZE)

    results: list[Measured] = []
    databases = ["sqlite"] + (["postgresql"] if args.postgres else [])
    try:
        for database in databases:
            for patients in sizes:
                with tempfile.TemporaryDirectory() as tmp:
                    uri = (
                        args.postgres
                        if database == "postgresql"
                        else f"sqlite:///{tmp}/bench.sqlite3"
                    )
                    m = bench_database(
                        database, uri, patients, reset_postgres=database == "postgresql"
                    )
                print(
                    f"[{database} {patients:,} patients: setup {m.setup_seconds:.1f} s]",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(m)
    finally:
        if args.postgres:
            reset_schema(args.postgres)  # leave the schema empty, as found

    print(
        f"\nOne dispatcher pass at {NOW.astimezone(ROME):%Y-%m-%d %H:%M %Z}; "
        f"'{FIXED_DUE} due' = same pass with only the first {FIXED_DUE} due messages\n"
    )
    print_table(results)
    print()
    print_markdown(results)
    print()
    ok = all([print_verdict(database, results) for database in databases])
    linear = all([print_growth(database, results) for database in databases])
    for database in databases:
        print_origins(max((m for m in results if m.database == database), key=lambda m: m.patients))
    print(
        f"\nverdict: statement count {'constant' if ok else 'GROWS'} in N; time and memory "
        f"{'at most linear' if linear else 'grow FASTER than linearly'} in N "
        f"(whole run {clock.perf_counter() - run_started:.0f} s)"
    )


if __name__ == "__main__":
    main()
