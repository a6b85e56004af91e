"""Running the load generators' event loops off the main thread.

Playwright's sync API (the browser tests' session-wide Chromium) keeps an event loop running in
the main thread for the rest of the run, so asyncio.run() there would refuse to start.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def in_thread(function: Callable[[], T]) -> T:
    """function() in a fresh thread (no event loop there); its result or its exception."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result()


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run(make()) in a fresh thread."""
    import asyncio

    return in_thread(lambda: asyncio.run(make()))
