"""`pro-app backup --out PATH`, `pro-app backup verify MANIFEST`, `pro-app restore --from PATH`."""

from __future__ import annotations

import shlex
import sqlite3
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from pro_app.backup import BackupError, BackupResult, postgres, sqlite
from pro_app.backup.manifest import compare, manifest_path, one_snapshot, read_manifest
from pro_app.extensions import db
from pro_app.models.types import utcnow

FILE_PATH = click.Path(dir_okay=False, path_type=Path)
# What a backup or restore can meet besides its own checks: a full disk, a locked or unreadable
# file, a database without the app's schema.
FAILURES = (BackupError, OSError, sqlite3.Error, SQLAlchemyError)


@click.group("backup", invoke_without_command=True)
@click.option("--out", "out_path", type=FILE_PATH, help="Backup file to write.")
@click.option("--force", is_flag=True, help="Replace an existing backup and manifest.")
@click.option(
    "--pg-dump", "run_pg_dump", is_flag=True, help="PostgreSQL: run pg_dump now, not just say how."
)
@click.pass_context
@with_appcontext
def backup_command(
    context: click.Context, out_path: Path | None, force: bool, run_pg_dump: bool
) -> None:
    """Back up the database to --out, with PATH.manifest.json (counts and checksums)."""
    if context.invoked_subcommand is not None:
        return
    if out_path is None:
        raise click.UsageError("give --out PATH (or: pro-app backup verify MANIFEST)")
    engine = db.engine
    try:
        if engine.dialect.name == "sqlite":
            result = sqlite.back_up(_sqlite_file(engine), out_path, utcnow(), force=force)
        else:
            result = postgres.back_up(
                engine, out_path, utcnow(), force=force, run_pg_dump=run_pg_dump
            )
    except FAILURES as error:
        raise click.ClickException(_first_line(error)) from None
    _report_backup(result)
    if engine.dialect.name == "postgresql":
        for line in postgres.instructions(engine.url, out_path, dumped=result.bytes is not None):
            click.echo(line)


@backup_command.command("verify")
@click.argument("manifest_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def verify_command(manifest_file: Path) -> None:
    """Compare a manifest with the current database; exit 1 listing every difference."""
    manifest = _read(manifest_file)
    try:
        with one_snapshot(db.engine) as connection:
            differences = compare(manifest, connection)
    except SQLAlchemyError as error:
        raise click.ClickException(_first_line(error)) from None
    _report_comparison(manifest, differences, manifest_file)


@click.command("restore")
@click.option("--from", "backup_path", required=True, type=FILE_PATH, help="Backup file.")
@click.option("--manifest", "manifest_file", type=FILE_PATH, help="Default: PATH.manifest.json.")
@click.option("--force", is_flag=True, help="Replace a database that already holds data.")
@with_appcontext
def restore_command(backup_path: Path, manifest_file: Path | None, force: bool) -> None:
    """SQLite: restore a backup into the configured database and verify it (stop the app first)."""
    engine = db.engine
    manifest_file = manifest_file or manifest_path(backup_path)
    if engine.dialect.name != "sqlite":
        raise click.ClickException(
            "restore copies SQLite files; for PostgreSQL stop the app and run:\n  "
            + shlex.join(postgres.restore_command(engine.url, backup_path))
            + "\n  "
            + shlex.join(["pro-app", "backup", "verify", str(manifest_file)])
        )
    manifest = _read(manifest_file)
    target = _sqlite_file(engine)
    engine.dispose()  # the app's own pooled connections must not sit on the file being replaced
    try:
        differences = sqlite.restore(backup_path, manifest, target, force=force)
    except FAILURES as error:
        raise click.ClickException(_first_line(error)) from None
    click.echo(f"Restored {backup_path} into {target}.")
    _report_comparison(manifest, differences, manifest_file)


def _sqlite_file(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise click.ClickException("the database is not a SQLite file: nothing to back up")
    return Path(database)


def _first_line(error: Exception) -> str:
    """The error without SQLAlchemy's statement and background link."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _read(manifest_file: Path) -> dict[str, Any]:
    try:
        return read_manifest(manifest_file)
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def _report_backup(result: BackupResult) -> None:
    if result.bytes is not None:
        click.echo(f"Backup: {result.path}")
        click.echo(
            f"Size: {result.bytes / 1e6:.1f} MB ({result.bytes:,} bytes) in {result.seconds:.2f} s"
        )
    click.echo(f"Manifest: {manifest_path(result.path)}")
    click.echo(f"  {'table':<18} {'rows':>10}  checksum")
    for name, table in result.manifest["tables"].items():
        click.echo(f"  {name:<18} {table['rows']:>10,}  {table['digest'][:16]}")


def _report_comparison(manifest: dict[str, Any], differences: list[str], source: Path) -> None:
    if differences:
        for difference in differences:
            click.echo(f"- {difference}", err=True)
        raise click.ClickException(f"{len(differences)} difference(s) from {source}")
    rows = sum(table["rows"] for table in manifest["tables"].values())
    click.echo(f"Verified: {len(manifest['tables'])} tables, {rows:,} rows match {source}.")
