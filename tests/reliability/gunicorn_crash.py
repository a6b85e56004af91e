"""gunicorn settings for test_worker_crash: a worker SIGKILLs itself in the middle of a page save.

The test writes a number N into PRO_TEST_CRASH_DIR/armed. The first worker that, after N answer
INSERTs, executes the first answer INSERT of a transaction takes the file (an atomic rename to
killed-<pid>) and sends itself SIGKILL at once: the page's transaction is open with one item
written and nothing committed. Its other threads die wherever they are. Only the test's server
loads this file.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any


def post_worker_init(worker: Any) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    folder = Path(os.environ["PRO_TEST_CRASH_DIR"])
    lock = threading.Lock()
    inserts = 0

    @event.listens_for(Engine, "commit")
    @event.listens_for(Engine, "rollback")
    def transaction_over(conn: Any) -> None:
        conn.info.pop("answer_inserts", None)

    @event.listens_for(Engine, "after_cursor_execute")
    def die_inside_a_page_save(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal inserts
        if not statement.startswith("INSERT INTO answer "):
            return
        first_of_page = not conn.info.get("answer_inserts")
        conn.info["answer_inserts"] = conn.info.get("answer_inserts", 0) + 1
        with lock:
            inserts += 1
            count = inserts
        armed = folder / "armed"
        try:
            threshold = int(armed.read_text() or "1")
        except (FileNotFoundError, ValueError):
            return
        if count < threshold or not first_of_page:
            return
        try:
            armed.rename(folder / f"killed-{os.getpid()}")
        except FileNotFoundError:
            return  # the other worker took it first
        os.kill(os.getpid(), signal.SIGKILL)
