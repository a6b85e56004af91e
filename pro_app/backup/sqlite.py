"""SQLite backup and restore with the online backup API, verified against the manifest."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine

from pro_app.backup import BackupError, BackupResult
from pro_app.backup.manifest import (
    build_manifest,
    compare,
    file_sha256,
    manifest_path,
    one_snapshot,
    write_manifest,
)
from pro_app.database import SQLITE_BUSY_TIMEOUT_MS


def back_up(source: Path, out: Path, now: datetime, *, force: bool = False) -> BackupResult:
    """Copy a live database to `out` (consistent even while the app writes) with its manifest."""
    started = time.monotonic()
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    if not out.parent.is_dir():
        raise BackupError(f"folder {out.parent} does not exist")
    if not force and (out.exists() or manifest_path(out).exists()):
        raise BackupError(f"{out} or its manifest already exists (use --force to replace them)")
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        _copy(source, temporary)
        with _reading(temporary) as connection:
            manifest = build_manifest(connection, now)
        _finish_file(temporary)
        os.replace(temporary, out)
    finally:
        for leftover in _with_sidecars(temporary):
            leftover.unlink(missing_ok=True)
    size = out.stat().st_size
    manifest["backup"] = {"file": out.name, "bytes": size, "sha256": file_sha256(out)}
    write_manifest(manifest, manifest_path(out))
    return BackupResult(out, size, time.monotonic() - started, manifest)


def restore(backup: Path, manifest: dict[str, Any], target: Path, *, force: bool) -> list[str]:
    """Copy a backup into the target database and return how it differs from the manifest."""
    if not backup.is_file():
        raise BackupError(f"no backup file at {backup}")
    recorded = manifest.get("backup", {}).get("sha256")
    if recorded is None:
        raise BackupError("the manifest records no backup file checksum: it is not from a backup")
    if file_sha256(backup) != recorded:
        raise BackupError(f"{backup} does not match its manifest's checksum: damaged or replaced")
    if not force and not is_empty(target):
        raise BackupError(f"{target} already holds data (use --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    read_only = backup.resolve().as_uri() + "?mode=ro"  # a backup is never written to
    with contextlib.closing(sqlite3.connect(read_only, uri=True)) as source:
        _check_integrity(source, backup)
        with contextlib.closing(_connect(target)) as destination:
            source.backup(destination)
            destination.execute("PRAGMA journal_mode = WAL")
    with _reading(target) as connection:
        return compare(manifest, connection)


def is_empty(path: Path) -> bool:
    """No file, or no row in any table (a schema alone counts as empty)."""
    if not path.is_file() or path.stat().st_size == 0:
        return True
    with contextlib.closing(_connect(path)) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
            )
        ]
        return not any(
            connection.execute(f'SELECT EXISTS (SELECT 1 FROM "{name}")').fetchone()[0]  # noqa: S608  (names from sqlite_master)
            for name in tables
        )


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[Connection]:
    """One snapshot of the file, through an engine of its own that is closed afterwards."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with one_snapshot(engine) as connection:
            yield connection
    finally:
        engine.dispose()


def _copy(source: Path, destination: Path) -> None:
    with (
        contextlib.closing(_connect(source)) as live,
        contextlib.closing(sqlite3.connect(destination)) as copy,
    ):
        # One step (pages=-1) reads one snapshot; in WAL mode the app's writers carry on meanwhile.
        # A stepped backup would restart whenever the app wrote, and might never finish.
        live.backup(copy, pages=-1)


def _finish_file(path: Path) -> None:
    """Make the copy one self-contained file and prove it is sound before it takes its name."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        # Rollback-journal mode: the file is whole without a -wal beside it (archives, copies).
        connection.execute("PRAGMA journal_mode = DELETE")
        _check_integrity(connection, path)
    with path.open("rb") as stream:
        os.fsync(stream.fileno())


def _check_integrity(connection: sqlite3.Connection, path: Path) -> None:
    problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupError(f"{path} failed SQLite's integrity check: {'; '.join(problems[:5])}")


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)


def _with_sidecars(path: Path) -> list[Path]:
    return [path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]
