"""Load: N patients answer all 51 items at once through gunicorn, on SQLite and PostgreSQL.

Run from the project folder:

    .venv/bin/python bench/load_patients.py [--patients 200] [--workers 2] [--threads 4]
                                            [--postgres URI]

For each database (a temporary SQLite file; PostgreSQL when --postgres URI or
PRO_BENCH_POSTGRES_URI is given: its `public` schema is dropped and created again, before and
after) it enrols N patients through the services, starts `gunicorn wsgi:app` (gthread workers) on
a free port of 127.0.0.1, and lets every patient, all starting together, open the link, press
start, post every page with one answer per item, open the review and submit, as a browser would
(one HTTP client with its own cookies per patient; asyncio and httpx; one connection per
request, as nginx talks to gunicorn by default, so that gunicorn's 2-second keep-alive racing a
stalled load generator is not counted against the app). Then it checks in the
database: answers = N x 51 rows with exactly the values sent, every assessment completed, one
submission audit row each, no 5xx, no "database is locked" (or any traceback) in the server log.

Prints per database: requests, 5xx, transport errors, p50/p95/max latency, throughput, and the
verdict. The fast variant (30 patients) runs in `make test`: tests/reliability.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.app_setup import add_postgres_argument, dispose, emptied_schema, prepared_app
from tests.reliability.cohort import enrol_cohort
from tests.reliability.live_server import live_server
from tests.reliability.load import run_load, verify_load


def bench(name: str, uri: str, folder: Path, args: argparse.Namespace) -> bool:
    """One database: enrol, load, verify, print; True when nothing went wrong."""
    app = prepared_app(uri)
    try:
        patients = enrol_cohort(app, args.patients)
        with live_server(uri, folder, workers=args.workers, threads=args.threads) as server:
            run = run_load(server.url, patients)
            log = server.log()
        problems = verify_load(app, patients, run, log)
    finally:
        dispose(app)
    print(
        f"{name}: {args.patients} patients x 51 items, gunicorn {args.workers} workers x "
        f"{args.threads} threads: {run.figures.line(run.seconds)}"
    )
    for problem in problems:
        print(f"  PROBLEM {problem}")
    if problems:
        print("  server log (last lines):\n    " + "\n    ".join(log.splitlines()[-30:]))
    print(f"  verdict: {'every answer stored exactly once' if not problems else 'FAILED'}")
    return not problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    add_postgres_argument(parser)
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--keep", help="keep the databases and server logs in this folder")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as temporary:
        tmp = args.keep or temporary
        if not args.no_sqlite:
            ok &= bench("sqlite", f"sqlite:///{tmp}/load.sqlite3", Path(tmp) / "sqlite", args)
        if args.postgres:
            with emptied_schema(args.postgres):
                ok &= bench("postgresql", args.postgres, Path(tmp) / "postgresql", args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
