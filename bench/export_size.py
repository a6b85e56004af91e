"""Export time and peak memory for a trial of N patients × 3 time points × 51 items.

Run from the project folder:

    .venv/bin/python bench/export_size.py [--patients 1000] [--postgres URI] [--kinds ...]
    .venv/bin/python bench/export_size.py --sizes 1000,10000 --kinds scores items --formats csv

It builds a database (a temporary SQLite file; with --postgres URI or PRO_BENCH_POSTGRES_URI
also PostgreSQL, whose `public` schema is dropped and created again) holding N patients, each
with three completed assessments of 51 answers (5 % skipped) and their scores, the rows the
services store. Then every export kind is written in every format, each in a fresh Python
process, and the script prints seconds, rows, file size and the process's peak resident
memory (ru_maxrss, imports included) next to the same process's memory just before the
export started. Target (issue 6): the scores CSV of 1,000 patients under 3 s and under 200 MB.
With --sizes, every size is built and exported in turn and one table holds them all, with a
verdict per export: time per row and the export's own memory (peak RSS minus RSS before it) must
not grow faster than the number of patients (issue 8).

Shared machines are noisy: compare the figures of one run with each other.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time as clock
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from bench.app_setup import add_postgres_argument, bench_app, reset_schema
from bench.measures import at_most_linear, growth_exponent, growth_word, markdown_table, peak_rss_mb
from pro_app.extensions import db
from pro_app.instruments import score_instrument, scoring_version
from pro_app.models import Answer, Assessment, Patient, Score, Site
from pro_app.protocol.windows import plan_windows
from pro_app.services.definitions import instrument_registry, trial_schedule

KINDS = ("scores", "scores-wide", "items", "deterioration", "compliance", "codebook")
FORMATS = ("csv", "xlsx", "sav", "dta")
AS_OF = date(2026, 11, 24)


def build(database_uri: str, patients: int) -> None:
    """Create the schema and load the trial in bulk."""
    if database_uri.startswith("postgresql"):
        reset_schema(database_uri)
    app = bench_app(database_uri)
    with app.app_context():
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
            patient_rows: list[dict[str, Any]] = [
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
    app = bench_app(database_uri)
    with app.app_context(), force_locale("it"):
        instrument_registry()
        before = peak_rss_mb()
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
    peak = peak_rss_mb()
    print(f"{seconds:.3f} {counter['rows']} {size} {before:.0f} {peak:.0f}")


@dataclass(frozen=True)
class Result:
    database: str
    patients: int
    kind: str
    fmt: str
    rows: int
    kilobytes: float
    seconds: float
    before_mb: float
    peak_mb: float

    @property
    def own_mb(self) -> float:
        """What the export added to the process's peak memory."""
        return max(0.0, self.peak_mb - self.before_mb)


def run(
    database: str, uri: str, patients: int, kinds: list[str], formats: list[str]
) -> list[Result]:
    results = []
    print(f"\n{database}, {patients:,} patients")
    print(f"{'export':<14}{'format':<7}{'rows':>9}{'size KB':>10}{'seconds':>9}"
          f"{'RSS before MB':>15}{'peak RSS MB':>13}")  # fmt: skip
    for kind in kinds:
        for fmt in formats:
            output = subprocess.run(  # noqa: S603 - our own script, fixed arguments
                [sys.executable, __file__, "--child", uri, kind, fmt],
                check=True, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            seconds, rows, size, before, peak = output[-5:]
            result = Result(database, patients, kind, fmt, int(rows), int(size) / 1024,
                            float(seconds), float(before), float(peak))  # fmt: skip
            results.append(result)
            print(f"{kind:<14}{fmt:<7}{result.rows:>9}{result.kilobytes:>10.0f}{result.seconds:>9.2f}"
                  f"{result.before_mb:>15.0f}{result.peak_mb:>13.0f}")  # fmt: skip
    return results


def target(results: list[Result]) -> None:
    for r in results:
        if (r.kind, r.fmt, r.patients) == ("scores", "csv", 1000):
            ok = r.seconds < 3 and r.peak_mb < 200
            print(f"{r.database} scores CSV of 1,000 patients: {r.seconds:.2f} s, peak "
                  f"{r.peak_mb:.0f} MB (target < 3 s and < 200 MB): "
                  f"{'MET' if ok else 'NOT MET'}")  # fmt: skip


def print_markdown(results: list[Result]) -> None:
    headers = ["database", "export", "format", " patients", " rows", " size KB", " seconds",
               " µs per row", " RSS before MB", " peak RSS MB", " export's own MB"]  # fmt: skip
    rows = [
        [r.database, r.kind, r.fmt, f"{r.patients:,}", f"{r.rows:,}", f"{r.kilobytes:,.0f}",
         f"{r.seconds:.2f}", f"{1e6 * r.seconds / max(r.rows, 1):.1f}", f"{r.before_mb:.0f}",
         f"{r.peak_mb:.0f}", f"{r.own_mb:.0f}"]
        for r in results
    ]  # fmt: skip
    print(markdown_table(headers, rows))


def print_growth(results: list[Result]) -> bool:
    """Per export across sizes: time per row and own memory; True when at most linear."""
    ok = True
    series: dict[tuple[str, str, str], list[Result]] = {}
    for r in results:
        series.setdefault((r.database, r.kind, r.fmt), []).append(r)
    for (database, kind, fmt), runs in series.items():
        if len(runs) < 2:
            continue
        sizes = [r.patients for r in runs]
        time_k = growth_exponent(sizes, [r.seconds for r in runs])
        # Below 1 MB the export added nothing measurable: count it as 1 MB, not as noise.
        memory_k = growth_exponent(sizes, [max(r.own_mb, 1.0) for r in runs])
        ok = ok and at_most_linear(time_k) and at_most_linear(memory_k)
        per_row = " → ".join(f"{1e6 * r.seconds / max(r.rows, 1):.1f}" for r in runs)
        own = " → ".join(f"{r.own_mb:.0f}" for r in runs)
        print(f"{database} {kind} {fmt}: time ~N^{time_k:.2f} ({growth_word(time_k)}), "
              f"µs per row {per_row}; own memory {own} MB ~N^{memory_k:.2f} "
              f"({growth_word(memory_k)})")  # fmt: skip
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--sizes", help="comma-separated patient counts (instead of --patients)")
    add_postgres_argument(parser)
    parser.add_argument("--kinds", nargs="*", default=list(KINDS))
    parser.add_argument("--formats", nargs="*", default=list(FORMATS))
    parser.add_argument("--child", nargs=3, metavar=("URI", "KIND", "FORMAT"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    run_started = clock.perf_counter()
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else [args.patients]
    print(f"Exports of {' and '.join(f'{n:,}' for n in sizes)} patients x 3 time points x 51 "
          f"items (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")  # fmt: skip
    results: list[Result] = []
    for patients in sizes:
        with tempfile.TemporaryDirectory() as folder:
            uri = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
            started = clock.perf_counter()
            build(uri, patients)
            print(f"SQLite database of {patients:,} patients built in "
                  f"{clock.perf_counter() - started:.1f} s")  # fmt: skip
            results += run("SQLite", uri, patients, args.kinds, args.formats)
        if args.postgres:
            started = clock.perf_counter()
            build(args.postgres, patients)
            print(f"PostgreSQL database of {patients:,} patients built in "
                  f"{clock.perf_counter() - started:.1f} s")  # fmt: skip
            try:
                results += run("PostgreSQL", args.postgres, patients, args.kinds, args.formats)
            finally:
                reset_schema(args.postgres)
    print()
    target(results)
    print()
    print_markdown(results)
    wall = f"whole run {clock.perf_counter() - run_started:.0f} s"
    if len(sizes) == 1:
        print(f"\nverdict: one size only, growth not judged (use --sizes 1000,10000); {wall}")
        return
    print()
    verdict = "at most linear" if print_growth(results) else "grow FASTER than linearly"
    print(f"\nverdict: time and the export's own memory {verdict} in patients ({wall})")


if __name__ == "__main__":
    main()
