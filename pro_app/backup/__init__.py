"""Backups: SQLite online copies, pg_dump for PostgreSQL, manifests that prove a restore."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


class BackupError(RuntimeError):
    """A backup or restore that cannot be made; the message says what to do."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int | None  # None: nothing written but the manifest (PostgreSQL without --pg-dump)
    seconds: float
    manifest: dict[str, Any]
