"""Patient page throughput: the questionnaire page and an answer save, against a bare Flask app.

Run from the project folder (needs Debian's `wrk`):

    .venv/bin/python bench/patient_throughput.py [--seconds 10] [--postgres URI] [--profile]

Everything is served the same way: `gunicorn` with 2 gthread workers x 4 threads on 127.0.0.1,
loaded by `wrk` (one thread, 8 concurrent requests: one per server thread) from the same
machine, one connection per request as nginx opens them to gunicorn by default (kept-alive
connections would stay with whichever worker accepted them first, leaving the other idle). In one
run, for each database (a temporary SQLite file; PostgreSQL when --postgres URI or
PRO_BENCH_POSTGRES_URI is given, whose `public` schema is dropped and created again), it
measures, each for --seconds after a 2-second warm-up:

  * hello     GET /hello of bench/hello_app.py: a bare Flask view returning a constant, the
              ceiling of Flask + gunicorn on this machine (measured again before each database);
  * page GET  GET /q/page/1, the first questionnaire page, by 24 patients each with their own
              session cookie, in turn;
  * save POST POST /q/page/1 with the page's five answers and "Continue", the same 24 sessions;
              each patient's posts alternate between two sets of answers, so every post really
              changes stored answers (and writes their audit rows).

and prints requests/s, p50 and p95 latency, and the ratio of each rate to hello's. Targets
(issue 8): the page at least 25 % of hello's rate, the save at least 15 %.

It also counts the SQL statements of one page GET and one save POST (Flask test client, same
database), and with --profile runs 300 of each under pyinstrument and prints where the time
goes. Shared machines are noisy: compare the figures of one run with each other.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from flask import Flask
from flask.testing import FlaskClient

from bench.app_setup import add_postgres_argument, dispose, emptied_schema, prepared_app
from bench.measures import count_statements
from pro_app.extensions import db
from tests.factories import Enrolled, csrf_token, hidden_fields
from tests.reliability.cohort import enrol_cohort
from tests.reliability.live_server import live_server

BENCH_DIR = Path(__file__).resolve().parent
PATIENTS = 24
WORKERS, THREADS = 2, 4
CONNECTIONS = WORKERS * THREADS
WARM_UP_SECONDS = 2
PAGE_TARGET, SAVE_TARGET = 0.25, 0.15
PAGE_PATH = "/q/page/1"
RADIO_NAME = re.compile(r'type="radio" name="([a-z0-9_]+-\d+)"')


@dataclass(frozen=True)
class Rate:
    """What wrk measured for one kind of request."""

    name: str
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    failed: int  # 4xx/5xx answers and socket errors

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def row(self, hello: Rate | None) -> str:
        ratio = f"{self.per_second / hello.per_second:.0%}" if hello else "100%"
        return (
            f"| {self.name} | {self.per_second:,.0f} | {self.p50_ms:.1f} | {self.p95_ms:.1f} | "
            f"{ratio} | {self.failed} |"
        )


@dataclass(frozen=True)
class Session:
    """One patient on page 1: the session cookie and the page's hidden form fields."""

    cookie: str
    hidden: dict[str, str]
    items: tuple[str, ...]

    def save_body(self, value: int) -> str:
        answers = {name: str(value) for name in self.items}
        return urlencode({**self.hidden, **answers, "action": "next"})


def run_wrk(name: str, url: str, lines: list[str], seconds: int) -> Rate:
    """wrk against `url`, sending these prepared requests in turn; warm-up not counted."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as requests_file:
        requests_file.write("\n".join(lines) + "\n")
    script = str(BENCH_DIR / "wrk_rotate.lua")
    base = ["wrk", "-t1", f"-c{CONNECTIONS}", "-s", script]
    try:
        for duration in (WARM_UP_SECONDS, seconds):
            result = subprocess.run(  # noqa: S603 (wrk, with our own arguments)
                [*base, f"-d{duration}s", url, "--", requests_file.name],
                capture_output=True,
                text=True,
                check=True,
            )
    finally:
        os.unlink(requests_file.name)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return Rate(
        name,
        figures["requests"],
        figures["seconds"],
        figures["p50_ms"],
        figures["p95_ms"],
        figures["non_2xx_3xx"] + figures["socket_errors"],
    )


def request_line(method: str, path: str, cookie: str = "", body: str = "") -> str:
    return "\t".join((method, path, cookie, body))


def open_sessions(base_url: str, patients: list[Enrolled]) -> list[Session]:
    """Each patient opens the link, presses start and lands on page 1, as a browser would."""
    sessions = []
    for patient in patients:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            welcome = client.get(patient.path)
            client.post(
                patient.path, data={"csrf_token": csrf_token(welcome.text), "action": "start"}
            )
            page = client.get(PAGE_PATH)
            assert page.status_code == 200, page.status_code
            cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
            items = tuple(dict.fromkeys(RADIO_NAME.findall(page.text)))
            sessions.append(Session(cookie, hidden_fields(page.text), items))
    return sessions


def measure_hello(folder: Path, seconds: int) -> Rate:
    with live_server(
        f"sqlite:///{folder}/unused.sqlite3",
        folder / "hello",
        workers=WORKERS,
        threads=THREADS,
        wsgi_app="bench.hello_app:app",
    ) as server:
        return run_wrk("hello (bare Flask)", server.url, [request_line("GET", "/hello")], seconds)


def measure_app(uri: str, folder: Path, sessions_for: int, seconds: int) -> list[Rate]:
    """Page GET and save POST through gunicorn on this database."""
    app = prepared_app(uri, RATELIMIT_ENABLED=False)
    try:
        patients = enrol_cohort(app, sessions_for, prefix="TP")
        with live_server(uri, folder, workers=WORKERS, threads=THREADS) as server:
            sessions = open_sessions(server.url, patients)
            gets = [request_line("GET", PAGE_PATH, s.cookie) for s in sessions]
            posts = [
                request_line("POST", PAGE_PATH, s.cookie, s.save_body(value))
                for s in sessions
                for value in (1, 2)
            ]
            page = run_wrk("questionnaire page GET", server.url, gets, seconds)
            save = run_wrk("answer save POST", server.url, posts, seconds)
            log = server.log()
        if "Traceback" in log:
            print("  the server logged a traceback:\n" + log[-3000:])
    finally:
        dispose(app)
    return [page, save]


def in_process_session(app: Flask) -> tuple[FlaskClient, str]:
    """A test client on page 1 of a fresh patient, and the body of a save of that page."""
    (patient,) = enrol_cohort(app, 1, prefix="PR")
    client = app.test_client()
    welcome = client.get(patient.path)
    client.post(patient.path, data={"csrf_token": csrf_token(welcome.text), "action": "start"})
    page = client.get(PAGE_PATH).get_data(as_text=True)
    items = tuple(dict.fromkeys(RADIO_NAME.findall(page)))
    return client, Session("", hidden_fields(page), items).save_body(1)


def statements_per_request(uri: str) -> tuple[int, int]:
    """SQL statements of one page GET and one save POST (after one of each to warm up)."""
    app = prepared_app(uri, RATELIMIT_ENABLED=False)
    try:
        client, body = in_process_session(app)
        form = {"content_type": "application/x-www-form-urlencoded", "data": body}
        client.get(PAGE_PATH), client.post(PAGE_PATH, **form)
        with app.app_context():
            engine = db.engine
        with count_statements(engine) as on_get:
            assert client.get(PAGE_PATH).status_code == 200
        with count_statements(engine) as on_post:
            assert client.post(PAGE_PATH, **form).status_code == 302
        return on_get.statements, on_post.statements
    finally:
        dispose(app)


def profile(uri: str, repeats: int = 300) -> None:
    """pyinstrument over `repeats` page GETs and as many save POSTs, in process."""
    from pyinstrument import Profiler

    app = prepared_app(uri, RATELIMIT_ENABLED=False)
    try:
        client, body = in_process_session(app)
        form = {"content_type": "application/x-www-form-urlencoded", "data": body}
        calls: dict[str, Callable[[], object]] = {
            "page GET": lambda: client.get(PAGE_PATH),
            "save POST": lambda: client.post(PAGE_PATH, **form),
        }
        for name, call in calls.items():
            call()
            profiler = Profiler(interval=0.0005)
            started = time.perf_counter()
            with profiler:
                for _ in range(repeats):
                    call()
            per_request = (time.perf_counter() - started) / repeats * 1000
            print(f"\n### profile: {name}, {repeats} requests, {per_request:.2f} ms each\n")
            print(profiler.output_text(unicode=True, color=False, short_mode=True))
    finally:
        dispose(app)


def bench_database(
    name: str, uri: str, folder: Path, args: argparse.Namespace
) -> tuple[list[str], bool]:
    """The table rows of one database (each rate next to a hello measured just before), and
    whether both targets were met."""
    hello = measure_hello(folder, args.seconds)
    page, save = measure_app(uri, folder / name, PATIENTS, args.seconds)
    on_get, on_post = statements_per_request(uri)
    verdict = (
        f"page {page.per_second / hello.per_second:.0%} of hello (target "
        f"{PAGE_TARGET:.0%}), save {save.per_second / hello.per_second:.0%} (target "
        f"{SAVE_TARGET:.0%}); SQL statements: page {on_get}, save {on_post}"
    )
    print(f"{name}: {verdict}", flush=True)
    met = page.per_second >= PAGE_TARGET * hello.per_second
    met &= save.per_second >= SAVE_TARGET * hello.per_second
    rows = [f"| **{name}** | | | | | |", hello.row(None), page.row(hello), save.row(hello)]
    return rows, met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=10)
    add_postgres_argument(parser)
    parser.add_argument("--profile", action="store_true", help="pyinstrument, in process")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    rows: list[str] = []
    missed: list[str] = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        sqlite_uri = f"sqlite:///{folder}/throughput.sqlite3"
        databases = [("SQLite", sqlite_uri)]
        if args.postgres:
            databases.append(("PostgreSQL", args.postgres))
        for name, uri in databases:
            with emptied_schema(uri) if name == "PostgreSQL" else nullcontext():
                table, met = bench_database(name, uri, folder, args)
            rows += table
            missed += [] if met else [name]
        if args.profile:
            profile(f"sqlite:///{folder}/profile.sqlite3")
    print(
        f"\ngunicorn {WORKERS} workers x {THREADS} threads (gthread), wrk 1 thread x "
        f"{CONNECTIONS} connections, {args.seconds} s per figure after a "
        f"{WARM_UP_SECONDS} s warm-up, {PATIENTS} patient sessions\n"
    )
    print("| request | req/s | p50 ms | p95 ms | of hello | failed |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    verdict = f"target missed on {' and '.join(missed)}" if missed else "targets met"
    print(f"\nverdict: {verdict}")


if __name__ == "__main__":
    main()
