"""Backup manifests: row counts and order-independent checksums of the trial's key tables."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect, select, text

from pro_app.extensions import db

FORMAT = 1
ALGORITHM = "sha256-rowsum"  # sum modulo 2**256 of the SHA-256 of each row's canonical JSON
CHUNK_ROWS = 5000

# The columns whose values a restore must bring back unchanged, per table. Listed explicitly
# (and copied into each manifest) so that a column added later does not make old manifests
# unverifiable; the verifier reads the manifest's own list.
STABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "patient": (
        "id",
        "study_code",
        "site_id",
        "arm",
        "randomized_on",
        "enrolled_at",
        "language",
        "timezone",
        "status",
        "is_reminders_paused",
        "withdrawn_on",
        "died_on",
    ),
    "assessment": (
        "id",
        "patient_id",
        "timepoint",
        "target_on",
        "window_opens_on",
        "window_closes_on",
        "status",
        "started_at",
        "completed_at",
        "mode",
        "entered_by_id",
        "paper_completed_on",
    ),
    "answer": ("assessment_id", "instrument", "item", "value"),
    "answer_correction": (
        "id",
        "assessment_id",
        "instrument",
        "item",
        "original_value",
        "new_value",
        "reason",
        "corrected_by_id",
        "corrected_at",
    ),
    "score": ("assessment_id", "instrument", "scale", "value", "items_answered"),
    "message": (
        "id",
        "patient_id",
        "assessment_id",
        "kind",
        "channel",
        "dedupe_key",
        "status",
        "attempts",
        "scheduled_for",
        "sent_at",
    ),
    "audit_event": (
        "id",
        "occurred_at",
        "actor_type",
        "actor_id",
        "action",
        "entity_type",
        "entity_id",
        "site_id",
        "before",
        "after",
        "reason",
    ),
}


@dataclass(frozen=True)
class TableDigest:
    rows: int
    digest: str


def canonical(value: Any) -> Any:
    """A JSON-ready form of a column value that is the same whichever database returned it."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | Decimal):
        # Doubles agree across databases; the rounding absorbs a last-bit difference anyway.
        return repr(round(float(value), 9))
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    raise TypeError(f"no canonical form for {type(value).__name__}")


def row_hash(row: Iterable[Any]) -> int:
    """The SHA-256 of one row's canonical JSON, as an integer."""
    encoded = json.dumps(
        [canonical(value) for value in row], sort_keys=True, separators=(",", ":")
    ).encode()
    return int.from_bytes(hashlib.sha256(encoded).digest(), "big")


def digest_rows(rows: Iterable[Iterable[Any]]) -> TableDigest:
    """Count and checksum rows in any order: addition modulo 2**256 does not care about order."""
    count, total = 0, 0
    for row in rows:
        count += 1
        total = (total + row_hash(row)) % (1 << 256)
    return TableDigest(count, f"{total:064x}")


def table_digest(connection: Connection, table_name: str, columns: Iterable[str]) -> TableDigest:
    """Stream one table's rows in chunks (a server-side cursor on PostgreSQL) and digest them."""
    table = db.metadata.tables[table_name]
    # The model's column types turn each database's storage into the same Python values
    # (aware UTC datetimes, dates, booleans, parsed JSON).
    statement = select(*(table.c[name] for name in columns))
    result = connection.execution_options(yield_per=CHUNK_ROWS).execute(statement)
    return digest_rows(row for chunk in result.partitions() for row in chunk)


@contextlib.contextmanager
def one_snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction on one snapshot, so that every table is read at the same instant."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield connection
            connection.rollback()
        return
    with engine.connect() as connection:
        # pysqlite starts no transaction for SELECTs: without one each table could see a later
        # write than the previous one.
        connection.exec_driver_sql("BEGIN")
        yield connection
        connection.rollback()


def schema_revision(connection: Connection) -> str | None:
    """The Alembic revision of the schema, or None for a schema made by create_all."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def build_manifest(connection: Connection, now: datetime) -> dict[str, Any]:
    """The manifest of the database behind this connection (read within its transaction)."""
    tables: dict[str, Any] = {}
    for name, columns in STABLE_COLUMNS.items():
        found = table_digest(connection, name, columns)
        tables[name] = {
            "columns": list(columns),
            "rows": found.rows,
            "digest": found.digest,
        }
    return {
        "format": FORMAT,
        "algorithm": ALGORITHM,
        "created_at": now.astimezone(UTC).isoformat(),
        "app_version": _app_version(),
        "database": {
            "dialect": connection.dialect.name,
            "schema_revision": schema_revision(connection),
        },
        "tables": tables,
    }


def compare(manifest: Mapping[str, Any], connection: Connection) -> list[str]:
    """What differs between the manifest and the database behind the connection (empty: same)."""
    if manifest.get("format") != FORMAT or manifest.get("algorithm") != ALGORITHM:
        return [f"unknown manifest format {manifest.get('format')!r}/{manifest.get('algorithm')!r}"]
    differences = []
    revision = manifest["database"].get("schema_revision")
    current = schema_revision(connection)
    if revision and current and revision != current:
        differences.append(f"schema revision: manifest {revision}, database {current}")
    inspector = inspect(connection)
    for name, expected in manifest["tables"].items():
        if not inspector.has_table(name):
            differences.append(f"{name}: table missing")
            continue
        present = {column["name"] for column in inspector.get_columns(name)}
        missing = [column for column in expected["columns"] if column not in present]
        if missing:
            differences.append(f"{name}: columns missing: {', '.join(missing)}")
            continue
        found = table_digest(connection, name, expected["columns"])
        if found.rows != expected["rows"]:
            differences.append(f"{name}: {expected['rows']} rows in manifest, {found.rows} now")
        if found.digest != expected["digest"]:
            differences.append(f"{name}: checksum differs (rows changed, added or removed)")
    return differences


def manifest_path(backup_path: Path) -> Path:
    """Where the manifest of a backup lives: next to it, PATH.manifest.json."""
    return backup_path.with_name(backup_path.name + ".manifest.json")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(manifest: Mapping[str, Any], path: Path) -> None:
    """Write the manifest under a temporary name, then rename it into place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def read_manifest(path: Path) -> dict[str, Any]:
    """A manifest written by write_manifest; ValueError when it is not one."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read manifest {path}: {error}") from None
    if not isinstance(manifest, dict) or "tables" not in manifest:
        raise ValueError(f"{path} is not a backup manifest")
    return manifest


def _app_version() -> str:
    try:
        return metadata.version("pro-app")
    except metadata.PackageNotFoundError:
        return "unknown"
