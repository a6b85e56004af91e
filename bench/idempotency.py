"""Idempotency: 1,000 page saves and submissions, each sent 3 times at once, stored exactly once.

Run from the project folder:

    .venv/bin/python bench/idempotency.py [--operations 1000] [--copies 3] [--postgres URI]

For each database (a temporary SQLite file; PostgreSQL when --postgres URI or
PRO_BENCH_POSTGRES_URI is given: its `public` schema is dropped and created again, before and
after) it enrols enough patients for the operations (13 each: 12 pages and the submission),
starts gunicorn (2 workers x 4 threads) and lets all patients go through the questionnaire at
once, every page post and the final submission sent `--copies` times at the same moment (same
cookies, same form key, as a double tap or a browser retry would). Then it checks: every copy
answered alike (302 to the same place), answers = patients x 51 rows with the values sent, every
assessment completed, one submission audit row and one set of 26 scores per assessment, no 5xx,
no traceback in the server log. The fast variant (60 operations) runs in `make test`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.app_setup import add_postgres_argument, dispose, emptied_schema, prepared_app
from tests.reliability.cohort import audit_counts, enrol_cohort
from tests.reliability.live_server import live_server
from tests.reliability.replay import patients_for, run_replays, verify_replays


def bench(name: str, uri: str, folder: Path, args: argparse.Namespace) -> bool:
    """One database: enrol, replay, verify, print; True when everything was stored once."""
    app = prepared_app(uri)
    try:
        patients = enrol_cohort(app, patients_for(args.operations), prefix="RP")
        with live_server(uri, folder, workers=args.workers, threads=args.threads) as server:
            run = run_replays(server.url, patients, copies=args.copies)
            log = server.log()
        problems = verify_replays(app, patients, run, log)
        saves = sum(audit_counts(app, "answers.save").values())
    finally:
        dispose(app)
    print(
        f"{name}: {run.operations} operations x {args.copies} copies ({len(patients)} patients): "
        f"{run.figures.line(run.seconds)}"
    )
    print(f"  replies: {dict(run.replies)}; answers.save audit rows: {saves}")
    for problem in problems:
        print(f"  PROBLEM {problem}")
    print(f"  verdict: {'every result stored exactly once' if not problems else 'FAILED'}")
    return not problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--operations", type=int, default=1000)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    add_postgres_argument(parser)
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_sqlite:
            ok &= bench("sqlite", f"sqlite:///{tmp}/replay.sqlite3", Path(tmp) / "sqlite", args)
        if args.postgres:
            with emptied_schema(args.postgres):
                ok &= bench("postgresql", args.postgres, Path(tmp) / "postgresql", args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
