"""`pro-app devserver` (what `make run` serves) really serves, with the scheduler beside it."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.smtp_server import free_port
from tests.web.test_cli import PRO_APP
from tests.web.test_scheduler_process import _env


@pytest.mark.skipif(PRO_APP is None, reason="console script not installed")
def test_devserver_serves_and_runs_the_scheduler(tmp_path: Path) -> None:
    env = _env(tmp_path, f"sqlite:///{tmp_path / 'dev.sqlite3'}")
    subprocess.run([PRO_APP, "init-db"], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [PRO_APP, "devserver", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        status = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                    status = reply.status
            except OSError:
                time.sleep(0.3)
        assert status == 200
        time.sleep(1.5)  # at least one scheduler tick
    finally:
        # SIGTERM, as make and process managers stop it: SIGINT would be ignored when the suite
        # itself runs as a background job (CI runs two suites side by side).
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    assert server.returncode == 0
    assert "dispatcher pass" in output
    assert "Development server stopped." in output
