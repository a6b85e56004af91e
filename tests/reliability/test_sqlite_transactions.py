"""SQLite: a writer waits for the lock instead of failing; readers never hold it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import Connection, text

from pro_app.extensions import db

WRITE = text("INSERT INTO lock_probe (code) VALUES (:code)")
READ = text("SELECT count(*) FROM lock_probe")


@pytest.fixture
def sqlite_app(app: Flask, database_uri: str) -> Iterator[Flask]:
    if not database_uri.startswith("sqlite"):
        pytest.skip("SQLite's single write lock; PostgreSQL locks rows")
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(text("CREATE TABLE lock_probe (code TEXT)"))
        yield app


def _connection() -> Connection:
    return db.engine.connect()


def test_write_transactions_begin_immediately(sqlite_app: Flask) -> None:
    with _connection() as connection:
        statements: list[str] = []
        connection.connection.driver_connection.set_trace_callback(statements.append)  # type: ignore[union-attr]
        connection.execute(READ)
        connection.execute(WRITE, {"code": "A"})
        connection.commit()
    assert [s.split()[0] for s in statements] == ["SELECT", "BEGIN", "INSERT", "COMMIT"]
    assert statements[1].split()[:2] == ["BEGIN", "IMMEDIATE"]


def test_a_write_after_a_read_succeeds_although_another_writer_committed_meanwhile(
    sqlite_app: Flask,
) -> None:
    with _connection() as first, _connection() as second:
        first.execute(READ).scalar()
        second.execute(WRITE, {"code": "B"})
        second.commit()
        # A transaction opened by the read would now fail at once ("database is locked").
        first.execute(WRITE, {"code": "A"})
        first.commit()


def test_a_second_writer_waits_for_the_first_instead_of_failing(sqlite_app: Flask) -> None:
    with _connection() as first, _connection() as second:
        first.execute(READ).scalar()
        second.execute(WRITE, {"code": "B"})  # holds the write lock until the timer commits
        commit_later = threading.Timer(0.5, second.commit)
        commit_later.start()
        started = time.monotonic()
        first.execute(WRITE, {"code": "A"})
        first.commit()
        waited = time.monotonic() - started
        commit_later.join()
    assert waited >= 0.4  # it waited for the lock (busy_timeout) rather than failing


def test_an_open_reading_session_does_not_hold_up_writers(sqlite_app: Flask) -> None:
    with _connection() as reader, _connection() as writer:
        reader.execute(READ).scalar()  # like an export between two chunks, transaction open
        started = time.monotonic()
        writer.execute(WRITE, {"code": "W"})
        writer.commit()
        assert time.monotonic() - started < 1.0  # no wait: BEGIN IMMEDIATE for reads would
        reader.rollback()
