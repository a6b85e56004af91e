"""A real gunicorn server on a free port of 127.0.0.1, against the database a test prepared."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import TEST_SECRET_KEY
from tests.smtp_server import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Boot, respawn and shutdown are slow on a loaded 2-CPU machine; the polls return early.
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


def server_env(database_uri: str, folder: Path, **settings: str) -> dict[str, str]:
    """The PRO_* environment of a server or CLI process sharing the test's database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRO_")}
    env.update(
        {
            "PRO_ENV": "development",
            "PRO_SECRET_KEY": TEST_SECRET_KEY,
            "PRO_SQLALCHEMY_DATABASE_URI": database_uri,
            "PRO_BASE_URL": "http://127.0.0.1",
            "PRO_MAIL_BACKEND": "file",
            "PRO_SMS_BACKEND": "file",
            "PRO_MAIL_FILE_DIR": str(folder / "outbox"),
            "PRO_SMS_FILE_DIR": str(folder / "outbox"),
            # Every simulated patient comes from 127.0.0.1; real ones each have an address.
            "PRO_PATIENT_LINK_RATE_LIMIT": "100000 per minute",
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
    )
    return env


@dataclass
class LiveServer:
    """A running gunicorn master; `url` has no trailing slash."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def worker_pids(self) -> list[int]:
        """The master's current worker processes (Linux /proc)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def log(self) -> str:
        """Everything gunicorn and the app wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_workers(
        self, count: int, exclude: frozenset[int] = frozenset(), timeout: float = START_TIMEOUT
    ) -> list[int]:
        """Poll until `count` workers (none of `exclude`) run and the server answers again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = set(self.worker_pids())
            if len(pids) >= count and not pids & exclude and _answers(self.url):
                return sorted(pids)
            time.sleep(0.2)
        raise AssertionError(f"workers did not come back:\n{self.log()[-3000:]}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def live_server(
    database_uri: str,
    folder: Path,
    *,
    workers: int = 2,
    threads: int = 4,
    settings: Mapping[str, str] | None = None,
    gunicorn_config: Path | None = None,
    wsgi_app: str = "wsgi:app",
) -> Iterator[LiveServer]:
    """Run `gunicorn wsgi:app` (gthread workers) until the block ends, then stop it.

    `wsgi_app` serves another application the same way (the benchmarks' bare Flask app).
    """
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(database_uri, folder, PRO_BASE_URL=url, **(settings or {}))
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        "gthread",
        "--timeout",
        "120",
        "--graceful-timeout",
        "10",
        "--no-control-socket",  # its default path in $HOME is shared by every gunicorn
        "--chdir",
        str(PROJECT_ROOT),
    ]
    if gunicorn_config is not None:
        command += ["--config", str(gunicorn_config)]
    log_path = folder / "gunicorn.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*command, wsgi_app], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = LiveServer(url, process, log_path)
    try:
        _wait_until_ready(server, workers)
        yield server
    finally:
        stop_process(process)


def _wait_until_ready(server: LiveServer, workers: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"gunicorn exited at start:\n{server.log()[-3000:]}")
        if _answers(server.url) and len(server.worker_pids()) >= workers:
            return
        time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer in time:\n{server.log()[-3000:]}")


def stop_process(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then wait (SIGKILL only if it hangs); the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
    return process.returncode
