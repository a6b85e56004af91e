"""Two `pro-app scheduler` processes: the second sends nothing while the first holds the lease."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.web.test_cli import PRO_APP


def _env(tmp_path: Path, database_uri: str) -> dict[str, str]:
    return {
        **os.environ,
        "PRO_ENV": "development",
        "PRO_SECRET_KEY": TEST_SECRET_KEY,
        "PRO_SQLALCHEMY_DATABASE_URI": database_uri,
        "PRO_MAIL_BACKEND": "file",
        "PRO_MAIL_FILE_DIR": str(tmp_path / "outbox"),
        "PRO_SCHEDULER_INTERVAL_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }


def _midday_zone() -> tuple[str, str]:
    """A fixed-offset zone where it is around noon now, and today's date there.

    Messages are never sent in quiet hours; the test is about which process sends, not when.
    """
    now = datetime.now(UTC)
    offset = (12 - now.hour + 12) % 24 - 12  # UTC offset in hours, -12..+11
    zone = f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"  # Etc/GMT signs are inverted
    return zone, now.astimezone(ZoneInfo(zone)).date().isoformat()


def _enrol(env: dict[str, str], code: str) -> None:
    zone, today = _midday_zone()
    subprocess.run(
        [
            PRO_APP,
            "enroll",
            "--study-code",
            code,
            "--site",
            "MI01",
            "--arm",
            "tae",
            "--randomized-on",
            today,
            "--timezone",
            zone,
            "--email",
            f"{code.lower()}@example.org",
        ],
        env=env,
        check=True,
        capture_output=True,
    )


def _wait_for_files(folder: Path, count: int, timeout: float = 20) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(folder.glob("*.eml")) if folder.exists() else []
        if len(files) >= count:
            return files
        time.sleep(0.2)
    return sorted(folder.glob("*.eml")) if folder.exists() else []


@pytest.mark.skipif(PRO_APP is None, reason="console script not installed")
def test_second_scheduler_waits_then_takes_over(tmp_path: Path, database_uri: str) -> None:
    if database_uri.startswith("postgresql"):
        pytest.skip("the app fixture's PostgreSQL schema is shared; this test owns its database")
    env = _env(tmp_path, f"sqlite:///{tmp_path / 'scheduler.sqlite3'}")
    subprocess.run([PRO_APP, "init-db"], env=env, check=True, capture_output=True)
    subprocess.run(
        [PRO_APP, "site", "add", "MI01", "Milano"], env=env, check=True, capture_output=True
    )
    for n in range(3):
        _enrol(env, f"MI01-{n:04d}")
    outbox = tmp_path / "outbox"
    first = subprocess.Popen(
        [PRO_APP, "scheduler"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    second = None
    try:
        assert len(_wait_for_files(outbox, 3)) == 3
        second = subprocess.Popen(
            [PRO_APP, "scheduler"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(4)  # several ticks of both processes
        assert len(_wait_for_files(outbox, 3)) == 3  # nothing sent twice
        assert "Scheduler stopped." in _stop(first)
        _enrol(env, "MI01-0100")  # due now: only the second process can send it
        assert len(_wait_for_files(outbox, 4)) == 4
        time.sleep(2)
        assert len(sorted(outbox.glob("*.eml"))) == 4
    finally:
        outputs = [_stop(process) for process in (first, second)]
    assert "lease held by another process" in outputs[1]


def _stop(process: subprocess.Popen[str] | None) -> str:
    """Stop a scheduler process (if still running) and return everything it printed."""
    if process is None:
        return ""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=15)[0] or ""
