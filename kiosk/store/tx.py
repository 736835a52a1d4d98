"""One way to write: a transaction that takes the write lock at once and always ends."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; on any error a rollback, and the error itself is raised.

    SQLite rolls back by itself after some errors (a full disk: "database or disk is full"); a
    second ROLLBACK would then fail with "cannot rollback - no transaction is active" and hide
    the cause, so it is issued only while a transaction is still open, and its own failure is
    never the one reported."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise
