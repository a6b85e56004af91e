"""Export time and peak memory for a trial of N patients × 3 time points × 51 items.

Run from the project folder:

    .venv/bin/python bench/export_size.py [--patients 1000] [--postgres URI] [--kinds ...]

It builds a database (a temporary SQLite file; with --postgres URI or PRO_BENCH_POSTGRES_URI
also PostgreSQL, whose `public` schema is dropped and created again) holding N patients, each
with three completed assessments of 51 answers (5 % skipped) and their scores, the rows the
services store. Then every export kind is written in every format, each in a fresh Python
process, and the script prints seconds, rows, file size and the process's peak resident
memory (ru_maxrss, imports included) next to the same process's memory just before the
export started. Target (issue 6): the scores CSV of 1,000 patients under 3 s and under 200 MB.

Shared machines are noisy: compare the figures of one run with each other.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time as clock
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text

from pro_app import create_app
from pro_app.extensions import db
from pro_app.instruments import score_instrument, scoring_version
from pro_app.models import Answer, Assessment, Patient, Score, Site
from pro_app.protocol.windows import plan_windows
from pro_app.services.definitions import instrument_registry, trial_schedule

KINDS = ("scores", "scores-wide", "items", "deterioration", "compliance", "codebook")
FORMATS = ("csv", "xlsx", "sav", "dta")
AS_OF = date(2026, 11, 24)


def make_config(database_uri: str) -> dict[str, Any]:
    return {
        "ENV": "development",
        "TESTING": True,
        "SECRET_KEY": "bench-secret-key-" + "x" * 32,
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "BASE_URL": "https://pro.example.test",
        "MAIL_BACKEND": "memory",
        "SMS_BACKEND": "memory",
        "MAIL_SENDER": "Bench <bench@pro.example.test>",
    }


def build(database_uri: str, patients: int) -> None:
    """Create the schema and load the trial in bulk."""
    app = create_app(make_config(database_uri))
    with app.app_context():
        if database_uri.startswith("postgresql"):
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        db.create_all()
        site = Site(code="BENCH", name="Bench site")
        db.session.add(site)
        db.session.flush()
        registry, schedule = instrument_registry(), trial_schedule()
        rng = random.Random(6)
        tz = "Europe/Rome"
        first_day = date(2025, 1, 1)
        for start in range(0, patients, 500):
            batch = range(start, min(start + 500, patients))
            patient_rows = [
                {
                    "study_code": f"B-{index:06d}",
                    "site_id": site.id,
                    "arm": ("tae", "control")[index % 2],
                    "randomized_on": first_day + timedelta(days=index % 300),
                    "enrolled_at": datetime(2025, 1, 1, tzinfo=UTC),
                    "language": "it",
                    "timezone": tz,
                    "status": "active",
                    "is_reminders_paused": False,
                }
                for index in batch
            ]
            ids = db.session.scalars(insert(Patient).returning(Patient.id), patient_rows).all()
            assessment_rows, plans = [], []
            for patient_id, row in zip(ids, patient_rows, strict=True):
                windows = plan_windows(schedule, row["randomized_on"], row["randomized_on"])
                for window in windows:
                    done = datetime.combine(window.target_on, datetime.min.time(), UTC)
                    assessment_rows.append(
                        {
                            "patient_id": patient_id,
                            "timepoint": window.timepoint,
                            "target_on": window.target_on,
                            "window_opens_on": window.opens_on,
                            "window_closes_on": window.closes_on,
                            "status": "completed",
                            "started_at": done + timedelta(hours=9),
                            "completed_at": done + timedelta(hours=10),
                            "mode": "web",
                            "text_packs": {"qlq_c30": "demo 2026.1", "qlq_gi_net21": "demo 2026.1"},
                        }
                    )
                    plans.append(window.timepoint)
            assessment_ids = db.session.scalars(
                insert(Assessment).returning(Assessment.id), assessment_rows
            ).all()
            answers, scores = [], []
            for assessment_id, timepoint in zip(assessment_ids, plans, strict=True):
                for code in schedule.timepoint(timepoint).instruments:
                    instrument = registry.get(code)
                    given: dict[int, int | None] = {}
                    for item in instrument.items:
                        scale = item.response_scale
                        value = None if rng.random() < 0.05 else rng.randint(scale.min, scale.max)
                        given[item.number] = value
                        answers.append(
                            {"assessment_id": assessment_id, "instrument": code,
                             "item": item.number, "value": value,
                             "answered_at": datetime(2025, 1, 1, tzinfo=UTC)}
                        )  # fmt: skip
                    version = scoring_version(instrument)
                    for scale_code, result in score_instrument(instrument, given).items():
                        scores.append(
                            {"assessment_id": assessment_id, "instrument": code,
                             "scale": scale_code, "value": result.value,
                             "items_answered": result.items_answered,
                             "items_in_scale": result.items_in_scale,
                             "scoring_version": version,
                             "computed_at": datetime(2025, 1, 1, tzinfo=UTC)}
                        )  # fmt: skip
            db.session.execute(insert(Answer), answers)
            db.session.execute(insert(Score), scores)
        db.session.commit()
        db.engine.dispose()


def child(database_uri: str, kind: str, fmt: str) -> None:
    """One export in this process; prints seconds, rows, bytes, memory before and at peak."""
    from flask_babel import force_locale

    from pro_app.exports.registry import build_dataset
    from pro_app.exports.source import ExportFilter
    from pro_app.exports.writers import write_export

    if fmt in ("sav", "dta"):
        import pandas  # noqa: F401  (imported before measuring: part of the baseline)
        import pyreadstat  # noqa: F401
    app = create_app(make_config(database_uri))
    with app.app_context(), force_locale("it"):
        instrument_registry()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        counter = {"rows": 0}
        dataset = build_dataset(kind, None, ExportFilter(), AS_OF)

        def counted(rows: Any) -> Any:
            for row in rows:
                counter["rows"] += 1
                yield row

        dataset = type(dataset)(
            dataset.kind, dataset.variables, counted(dataset.rows), dataset.note
        )
        with tempfile.TemporaryFile() as out:
            started = clock.perf_counter()
            write_export(dataset, fmt, out)
            seconds = clock.perf_counter() - started
            size = out.tell()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{seconds:.3f} {counter['rows']} {size} {before:.0f} {peak:.0f}")


def run(label: str, database_uri: str, kinds: tuple[str, ...]) -> list[tuple[Any, ...]]:
    results = []
    print(f"\n{label}")
    print(f"{'export':<14}{'format':<7}{'rows':>9}{'size KB':>10}{'seconds':>9}"
          f"{'RSS before MB':>15}{'peak RSS MB':>13}")  # fmt: skip
    for kind in kinds:
        for fmt in FORMATS:
            output = subprocess.run(  # noqa: S603 - our own script, fixed arguments
                [sys.executable, __file__, "--child", database_uri, kind, fmt],
                check=True, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            seconds, rows, size, before, peak = output[-5:]
            results.append((kind, fmt, float(seconds), float(peak)))
            print(f"{kind:<14}{fmt:<7}{int(rows):>9}{int(size) / 1024:>10.0f}"
                  f"{float(seconds):>9.2f}{float(before):>15.0f}{float(peak):>13.0f}")  # fmt: skip
    return results


def verdict(results: list[tuple[Any, ...]]) -> None:
    for kind, fmt, seconds, peak in results:
        if (kind, fmt) == ("scores", "csv"):
            ok = seconds < 3 and peak < 200
            print(f"\nscores CSV: {seconds:.2f} s, peak {peak:.0f} MB "
                  f"(target < 3 s and < 200 MB): {'MET' if ok else 'NOT MET'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--postgres", default=os.environ.get("PRO_BENCH_POSTGRES_URI", ""))
    parser.add_argument("--kinds", nargs="*", default=list(KINDS))
    parser.add_argument("--child", nargs=3, metavar=("URI", "KIND", "FORMAT"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(f"Exports of {args.patients} patients x 3 time points x 51 items "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        started = clock.perf_counter()
        build(uri, args.patients)
        print(f"SQLite database built in {clock.perf_counter() - started:.1f} s")
        verdict(run("SQLite", uri, tuple(args.kinds)))
    if args.postgres:
        build(args.postgres, args.patients)
        try:
            verdict(run("PostgreSQL", args.postgres, tuple(args.kinds)))
        finally:
            engine_app = create_app(make_config(args.postgres))
            with engine_app.app_context(), db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))


if __name__ == "__main__":
    main()
