"""PostgreSQL: pg_dump/pg_restore commands, and a dump taken on the manifest's own snapshot."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pro_app.backup import BackupError, BackupResult
from pro_app.backup.manifest import (
    build_manifest,
    file_sha256,
    manifest_path,
    one_snapshot,
    write_manifest,
)


def libpq_url(url: URL) -> str:
    """The database URL as pg_dump and psql take it, without the password (never on a command)."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def dump_command(url: URL, out: Path, snapshot: str | None = None) -> list[str]:
    """pg_dump in custom format, without ownership (restorable under any role)."""
    command = ["pg_dump", "--format=custom", "--no-owner", f"--file={out}"]
    if snapshot:
        command.append(f"--snapshot={snapshot}")
    return [*command, libpq_url(url)]


def restore_command(url: URL, backup: Path) -> list[str]:
    """pg_restore replacing what the target database holds, without ownership."""
    return ["pg_restore", "--clean", "--if-exists", "--no-owner", "-d", libpq_url(url), str(backup)]


def instructions(url: URL, out: Path, *, dumped: bool) -> list[str]:
    """The exact commands to back up (unless done already), restore and verify by hand."""
    lines = []
    if not dumped:
        lines += [
            "Back up (custom format; the password comes from PGPASSWORD or ~/.pgpass):",
            "  " + shlex.join(dump_command(url, out)),
        ]
    return [
        *lines,
        "Restore into an empty or scratch database (stop the app and the scheduler first):",
        "  " + shlex.join(restore_command(url, out)),
        "Then check the restored data against the manifest:",
        "  " + shlex.join(["pro-app", "backup", "verify", str(manifest_path(out))]),
    ]


def back_up(
    engine: Engine, out: Path, now: datetime, *, force: bool, run_pg_dump: bool
) -> BackupResult:
    """Write the manifest of the live database; with run_pg_dump, also the dump of that instant."""
    started = time.monotonic()
    manifest_file = manifest_path(out)
    if not out.parent.is_dir():
        raise BackupError(f"folder {out.parent} does not exist")
    if not force and (manifest_file.exists() or (run_pg_dump and out.exists())):
        raise BackupError(f"{out} or its manifest already exists (use --force to replace them)")
    if run_pg_dump and shutil.which("pg_dump") is None:
        raise BackupError("pg_dump is not installed (Debian: apt-get install postgresql-client)")
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    dump: _Dump | None = None
    try:
        with one_snapshot(engine) as connection:
            if run_pg_dump:
                # pg_dump reads the very snapshot the manifest is computed from, so the manifest
                # describes the dump exactly even while patients keep answering.
                snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
                dump = _Dump.start(dump_command(engine.url, temporary, str(snapshot)), engine.url)
            manifest = build_manifest(connection, now)
            if dump is not None:
                dump.wait()  # the snapshot lives only as long as this transaction
        if run_pg_dump:
            os.replace(temporary, out)
    finally:
        if dump is not None:
            dump.stop()
        temporary.unlink(missing_ok=True)
    size = None
    if run_pg_dump:
        size = out.stat().st_size
        manifest["backup"] = {"file": out.name, "bytes": size, "sha256": file_sha256(out)}
    write_manifest(manifest, manifest_file)
    return BackupResult(out, size, time.monotonic() - started, manifest)


@dataclass
class _Dump:
    """A running pg_dump; its error output goes to a file (a pipe could fill up and stall it)."""

    process: subprocess.Popen[bytes]
    errors: IO[bytes]

    @classmethod
    def start(cls, command: list[str], url: URL) -> _Dump:
        environment = dict(os.environ)
        if url.password:
            environment["PGPASSWORD"] = str(url.password)
        errors = tempfile.TemporaryFile()  # noqa: SIM115  (stop() closes it, after the dump)
        # S603: the program is fixed and every argument is built here, none from a request.
        process = subprocess.Popen(command, env=environment, stderr=errors)  # noqa: S603
        return cls(process, errors)

    def wait(self) -> None:
        if self.process.wait() != 0:
            self.errors.seek(0)
            message = self.errors.read().decode(errors="replace").strip()
            raise BackupError(f"pg_dump failed (exit {self.process.returncode}): {message}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.errors.close()
