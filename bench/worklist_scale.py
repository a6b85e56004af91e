"""The nurses' worklist page at one site of 500 and 5,000 patients: time, memory, SQL, bytes.

Run from the project folder:

    .venv/bin/python bench/worklist_scale.py [--sizes 500,5000] [--postgres URI] [--repeats 5]

For each size it builds the synthetic trial of bench/synthetic_trial.py at ONE site: patients due
today, open, overdue, missed, completed and withdrawn, with their invitations and reminders sent,
cancelled or pending, and 1 sent message in 40 turned into a delivery failure. The database is a
temporary SQLite file and, with --postgres URI or PRO_BENCH_POSTGRES_URI, also a PostgreSQL
database `bench_worklist` created on that server for the run and dropped afterwards (the
database named in the URI is only connected to). Then a fresh process signs in through the form
as a nurse of the site and requests the worklist through the Flask test client, its clock set
to synthetic_trial.NOW: every section (tab), a later page of two of them, a time point filter
and a search.

Per page: median wall time of --repeats requests, the peak Python memory of one request
(tracemalloc), SQL statements per request (a before_cursor_execute listener), rows shown, rows
in the section and response bytes; per process: RSS after signing in, after every page, and
its peak (VmHWM).

Verdict: the statements of each page are the same at every size (constant per page), and time
and memory grow at most linearly (size^k, k ≤ 1.2 allowing for a shared machine's noise); a
paginated page should do better than linear. Compare the figures of one run with each other.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time as clock
import tracemalloc
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import update

from bench.app_setup import bench_app, scratch_database
from bench.measures import (
    at_most_linear,
    count_statements,
    current_rss_mb,
    growth_exponent,
    growth_word,
    markdown_table,
    peak_rss_mb,
    short,
)
from bench.synthetic_trial import NOW, ROME, load_trial
from pro_app.extensions import db
from pro_app.models import Message, MessageStatus
from tests import factories

SIZES = (500, 5_000)
NURSE = "nurse@bench.example.org"
FAILED_EVERY = 40  # one sent message in 40 is turned into a delivery failure
PAGES = (
    ("open (default)", ""),
    ("due today", "state=due_today"),
    ("overdue", "state=overdue"),
    ("missed", "state=missed"),
    ("completed", "state=completed"),
    ("not done", "state=not_done"),
    ("not yet open", "state=upcoming"),
    ("failed messages", "state=failed"),
    ("all", "state=all"),
    ("all, page 10", "state=all&page=10"),
    ("open, page 2", "state=open&page=2"),
    ("all, month 3", "state=all&timepoint=month3"),
    ("all, search 0001", "state=all&q=0001"),
)
ROW = re.compile(r'<th scope="row"')
SECTION_ROWS = re.compile(r'role="status">(\d+)')


# --------------------------------------------------------------------------- building


def build(uri: str, patients: int) -> float:
    """The trial at one site, some failed messages, and the nurse's account; seconds taken."""
    started = clock.perf_counter()
    app = bench_app(uri)
    try:
        with app.app_context():
            grace = timedelta(minutes=app.config["PATIENT_SUBMIT_GRACE_MINUTES"])
            load_trial(patients, grace)
            db.session.execute(
                update(Message)
                .where(Message.status == MessageStatus.SENT, Message.id % FAILED_EVERY == 0)
                .values(
                    status=MessageStatus.FAILED,
                    attempts=3,
                    last_error="SMTP 550 5.1.1 mailbox unavailable",
                    sent_at=None,
                    provider_id=None,
                )
            )
            db.session.commit()
        factories.staff_user(app, NURSE, "nurse", "BENCH", language="it")
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return clock.perf_counter() - started


# --------------------------------------------------------------------------- measuring


def child(uri: str, repeats: int) -> None:
    """In a fresh process: sign in, request every page; print the figures as one JSON line."""
    app = bench_app(uri)
    client = app.test_client()
    if factories.sign_in(client, NURSE).status_code != 302:
        raise SystemExit("The nurse could not sign in.")
    with app.app_context():
        engine = db.engine
    figures: dict[str, Any] = {"pages": {}, "rss_before_mb": current_rss_mb()}
    with mock.patch("pro_app.staff.worklist.utcnow", return_value=NOW):
        for label, arguments in PAGES:
            url = f"/staff/worklist?{arguments}" if arguments else "/staff/worklist"
            client.get(url)  # warm-up: compiled queries, templates, translations
            times = []
            for _ in range(repeats):
                started = clock.perf_counter()
                response = client.get(url)
                times.append(clock.perf_counter() - started)
            with count_statements(engine) as counted:
                client.get(url)
            tracemalloc.start()
            client.get(url)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}")
            html = response.get_data(as_text=True)
            table = html[html.find('<table class="worklist"') :]
            table = table[: table.find("</table>")]
            section = SECTION_ROWS.search(html)
            figures["pages"][label] = {
                "ms": 1000 * statistics.median(times),
                "statements": counted.statements,
                "peak_mb": peak / 2**20,
                "rows": len(ROW.findall(table)),
                "section_rows": int(section.group(1)) if section else 0,
                "kb": len(response.data) / 1024,
            }
    figures["rss_after_mb"] = current_rss_mb()
    figures["rss_peak_mb"] = peak_rss_mb()
    print(json.dumps(figures))


def measure(uri: str, repeats: int) -> dict[str, Any]:
    output = subprocess.run(  # noqa: S603 - this script, fixed arguments
        [sys.executable, __file__, "--child", uri, "--repeats", str(repeats)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    figures: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return figures


@dataclass
class Run:
    database: str
    patients: int
    build_seconds: float
    figures: dict[str, Any]


# --------------------------------------------------------------------------- reporting


def joined(values: list[float], spec: str) -> str:
    return " / ".join(format(value, spec) for value in values)


def report(database: str, runs: list[Run]) -> tuple[bool, bool]:
    """Print one database's table and verdict lines; (statements constant, at most linear)."""
    sizes = [run.patients for run in runs]
    print(f"\n{database}, one site, {' / '.join(f'{n:,}' for n in sizes)} patients "
          f"(build {' / '.join(f'{run.build_seconds:.0f}' for run in runs)} s)\n")  # fmt: skip
    rows, constant, linear, exponents = [], True, True, []
    for label, _ in PAGES:
        pages = [run.figures["pages"][label] for run in runs]
        statements = [page["statements"] for page in pages]
        time_k = growth_exponent(sizes, [page["ms"] for page in pages])
        memory_k = growth_exponent(sizes, [page["peak_mb"] for page in pages])
        constant = constant and len(set(statements)) == 1
        linear = linear and at_most_linear(time_k) and at_most_linear(memory_k)
        exponents.append(time_k)
        rows.append(
            [label, joined([page["rows"] for page in pages], "d"),
             joined([page["section_rows"] for page in pages], ","),
             joined(statements, "d"), joined([page["ms"] for page in pages], ".0f"),
             f"N^{time_k:.2f} {growth_word(time_k)}",
             joined([page["peak_mb"] for page in pages], ".2f"),
             f"N^{memory_k:.2f} {growth_word(memory_k)}",
             joined([page["kb"] for page in pages], ".0f")]
        )  # fmt: skip
    headers = ["page", " rows shown", " rows in section", " SQL statements", " median ms",
               " time growth", " request peak MB", " memory growth", " response KB"]  # fmt: skip
    print(markdown_table(headers, rows))
    rss = " / ".join(
        f"{run.figures['rss_before_mb']:.0f} → {run.figures['rss_after_mb']:.0f} "
        f"(peak {run.figures['rss_peak_mb']:.0f})"
        for run in runs
    )
    print(f"\nProcess RSS, MB, after sign-in → after every page (peak, imports and sign-in's "
          f"password hashing included): {rss}")  # fmt: skip
    worst = max(exponents)
    print(f"{database}: SQL statements per page "
          f"{'the same at every size (constant)' if constant else 'DIFFER between sizes'}; "
          f"slowest-growing page time ~N^{worst:.2f} ({growth_word(worst)})")  # fmt: skip
    return constant, linear


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="patients at the site")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PRO_BENCH_POSTGRES_URI", ""),
        help="a PostgreSQL server URI: the bench creates and drops its own bench_worklist there",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed requests per page")
    parser.add_argument("--child", metavar="URI", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeats)
        return
    run_started = clock.perf_counter()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"Worklist page as a nurse sees it, clock at {NOW.astimezone(ROME):%Y-%m-%d %H:%M %Z} "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")  # fmt: skip
    verdicts = []
    for database in ["sqlite"] + (["postgresql"] if args.postgres else []):
        runs = []
        for patients in sizes:
            with tempfile.TemporaryDirectory() as folder:
                if database == "sqlite":
                    uri = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
                    built = build(uri, patients)
                    runs.append(Run(database, patients, built, measure(uri, args.repeats)))
                    continue
                with scratch_database(args.postgres, "bench_worklist") as uri:
                    built = build(uri, patients)
                    runs.append(Run(database, patients, built, measure(uri, args.repeats)))
            print(f"[{database} {short(patients)}: done]", file=sys.stderr, flush=True)
        verdicts.append(report(database, runs))
    constant = all(c for c, _ in verdicts)
    linear = all(lin for _, lin in verdicts)
    print(f"\nverdict: SQL statements per page {'constant' if constant else 'NOT constant'}; "
          f"time and memory {'at most linear' if linear else 'grow FASTER than linearly'} in "
          f"patients (whole run {clock.perf_counter() - run_started:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
