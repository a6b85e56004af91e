"""Backup, restore and verify: seconds and sizes for the demo data and a trial of N patients.

Run from the project folder:

    .venv/bin/python bench/backup_restore.py [--patients 1000] [--postgres URI]

For SQLite (temporary files) it loads the demo (`pro-app demo`) and, separately, N patients ×
3 completed assessments of 51 answers with their scores (bench/export_size.py's builder). Each
database is backed up while a writer thread keeps inserting audit rows (it reports how many it
committed during the backup: the app is not stopped), restored into a new file (the restore
includes the manifest check) and verified again. With --postgres URI (a scratch database: its
`public` schema is dropped and created again; a database URI_restore is made beside it) the
same trial is dumped with `pro-app backup --pg-dump`, restored with pg_restore and verified.

Shared machines are noisy: compare the figures of one run with each other.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time as clock
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.app_setup import bench_app
from bench.export_size import build
from pro_app.backup import postgres, sqlite
from pro_app.backup.manifest import compare, manifest_path, one_snapshot
from pro_app.extensions import db
from pro_app.models.types import utcnow
from pro_app.services import demo


def load_demo(database_uri: str) -> None:
    app = bench_app(database_uri)
    with app.app_context():
        db.create_all()
        list(demo.load_demo(utcnow()))  # a generator of printed lines
        db.session.commit()
        db.engine.dispose()


def timed(action: Callable[[], object]) -> tuple[object, float]:
    started = clock.perf_counter()
    result = action()
    return result, clock.perf_counter() - started


class AuditWriter(threading.Thread):
    """Inserts one audit row per transaction, as a busy app would, until stopped."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.commits, self.stop = path, 0, threading.Event()

    def run(self) -> None:
        engine = create_engine(f"sqlite:///{self.path}")
        with engine.connect() as connection:
            while not self.stop.is_set():
                connection.execute(
                    text(
                        "INSERT INTO audit_event (occurred_at, actor_type, action, entity_type)"
                        " VALUES (CURRENT_TIMESTAMP, 'system', 'bench.write', 'bench')"
                    )
                )
                connection.commit()
                self.commits += 1
        engine.dispose()


def sqlite_round(label: str, folder: Path, source: Path) -> None:
    backup, restored = folder / f"{label}.backup", folder / f"{label}.restored"
    writer = AuditWriter(source)
    writer.start()
    while writer.commits < 20:
        clock.sleep(0.01)
    before = writer.commits
    result, seconds = timed(lambda: sqlite.back_up(source, backup, utcnow()))
    during = writer.commits - before
    writer.stop.set()
    writer.join()
    manifest = result.manifest  # type: ignore[attr-defined]
    rows = sum(table["rows"] for table in manifest["tables"].values())
    differences, restore_seconds = timed(
        lambda: sqlite.restore(backup, manifest, restored, force=False)
    )
    assert differences == [], differences
    engine = create_engine(f"sqlite:///{restored}")
    verified, verify_seconds = timed(lambda: _compare(engine, manifest))
    assert verified == [], verified
    print(
        f"{label:<22}{rows:>10,}{backup.stat().st_size / 1e6:>10.1f}{seconds:>10.2f}"
        f"{during:>9}{restore_seconds:>11.2f}{verify_seconds:>10.2f}"
    )


def _compare(engine: object, manifest: dict) -> list[str]:
    with one_snapshot(engine) as connection:  # type: ignore[arg-type]
        return compare(manifest, connection)


def postgres_round(uri: str, patients: int, folder: Path) -> None:
    build(uri, patients)
    url = make_url(uri)
    restore_name = f"{url.database}_restore"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{restore_name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{restore_name}"'))
    dump = folder / "trial.dump"
    engine = create_engine(uri)
    result, seconds = timed(
        lambda: postgres.back_up(engine, dump, utcnow(), force=False, run_pg_dump=True)
    )
    manifest = result.manifest  # type: ignore[attr-defined]
    restore_url = url.set(database=restore_name)
    command = postgres.restore_command(restore_url, dump)
    _, restore_seconds = timed(lambda: subprocess.run(command, check=True))  # noqa: S603
    restored = create_engine(restore_url)
    verified, verify_seconds = timed(lambda: _compare(restored, manifest))
    assert verified == [], verified
    rows = sum(table["rows"] for table in manifest["tables"].values())
    print(
        f"{'PostgreSQL trial':<22}{rows:>10,}{dump.stat().st_size / 1e6:>10.1f}{seconds:>10.2f}"
        f"{'-':>9}{restore_seconds:>11.2f}{verify_seconds:>10.2f}"
    )
    engine.dispose()
    restored.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{restore_name}" WITH (FORCE)'))
    admin.dispose()
    print(f"  manifest: {manifest_path(dump).stat().st_size} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--postgres", default=os.environ.get("PRO_BENCH_POSTGRES_URI"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        print(
            f"{'database':<22}{'rows':>10}{'MB':>10}{'backup s':>10}{'writes':>9}"
            f"{'restore s':>11}{'verify s':>10}"
        )
        demo_file = folder / "demo.sqlite3"
        load_demo(f"sqlite:///{demo_file}")
        sqlite_round("SQLite demo", folder, demo_file)
        trial_file = folder / "trial.sqlite3"
        build(f"sqlite:///{trial_file}", args.patients)
        sqlite_round(f"SQLite {args.patients} patients", folder, trial_file)
        if args.postgres:
            postgres_round(args.postgres, args.patients, folder)
    print("writes = audit rows committed by another connection while the backup ran")


if __name__ == "__main__":
    main()
