"""The durable queue of summaries (store-and-forward).

A closed period's summary is built and written to the outbox in the same
transaction that marks the period closed, under a ``seq`` taken from a
persisted counter: seqs are strictly increasing and never reused, even after
rows are deleted. The publisher marks a row sent only when the broker
acknowledges it with a success reason code; sent rows stay for
``keep_sent_s`` so the ``republish`` command can resend them, and are the
first to go when space runs short (that loses nothing: they were delivered).
The outbox is bounded: when full of unsent rows, the oldest unsent summaries
are dropped and counted; every summary carries the
cumulative count of summaries dropped so far (taken after making room for
itself), so the newest summary's count equals the number of earlier seqs that
will never arrive, even when a summary that carried an older count is dropped
in turn.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from kiosk.store.tx import write_transaction


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    period_start: int
    payload: str
    attempts: int


class Outbox:
    def __init__(
        self,
        db: sqlite_utils.Database,
        max_rows: int = 20_000,
        max_bytes: int = 64 * 1024 * 1024,
        keep_sent_s: float = 7 * 86400,
    ) -> None:
        self.db = db
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.keep_sent_s = keep_sent_s

    def _counter(self, name: str) -> int:
        return int(self.db.execute("SELECT value FROM device_counters WHERE name = ?", [name]).fetchone()[0])

    def close_period(self, period_start: int, build: Callable[[int, int], dict[str, Any]]) -> int | None:
        """Close a period once: ``build(seq, dropped_total)`` makes its summary, which is queued in
        the same transaction. Returns the seq, or None when the period was already closed."""
        with write_transaction(self.db.conn) as conn:
            if conn.execute("SELECT 1 FROM closed_periods WHERE period_start = ?", [period_start]).fetchone():
                return None  # closed already (nothing was written)
            self._enforce_bounds(conn, room_for=1)  # so the new summary's count includes what makes room for it
            seq = self._counter("next_seq")
            dropped = self._counter("dropped_total")
            payload = json.dumps(build(seq, dropped), separators=(",", ":"), sort_keys=True)
            conn.execute(
                "INSERT INTO outbox (seq, period_start, payload, bytes, created_at) VALUES (?, ?, ?, ?, ?)",
                [seq, period_start, payload, len(payload.encode()), time.time()],
            )
            conn.execute(
                "INSERT INTO closed_periods (period_start, seq, closed_at) VALUES (?, ?, ?)",
                [period_start, seq, time.time()],
            )
            conn.execute("UPDATE device_counters SET value = ? WHERE name = 'next_seq'", [seq + 1])
            self._enforce_bounds(conn)  # the byte bound (rarely reached; counted in the next summary)
        return seq

    def _enforce_bounds(self, conn: sqlite3.Connection, room_for: int = 0) -> None:
        """Make the outbox hold at most max_rows - room_for rows and max_bytes: first sent rows
        past their keeping time, then any sent rows, then the oldest unsent ones (counted as dropped)."""
        conn.execute("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?", [time.time() - self.keep_sent_s])
        rows, size = conn.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM outbox").fetchone()
        limit = self.max_rows - room_for
        drop = 0
        if rows > limit or size > self.max_bytes:
            order = "SELECT seq, bytes, sent_at IS NULL FROM outbox ORDER BY sent_at IS NULL, seq"
            for seq, nbytes, unsent in conn.execute(order).fetchall():
                if rows <= limit and size <= self.max_bytes:
                    break
                conn.execute("DELETE FROM outbox WHERE seq = ?", [seq])
                rows, size, drop = rows - 1, size - nbytes, drop + unsent
        if drop:
            conn.execute("UPDATE device_counters SET value = value + ? WHERE name = 'dropped_total'", [drop])

    def pending(self, limit: int = 100, after: int = 0) -> list[OutboxRow]:
        """Summaries not yet acknowledged, in seq order."""
        rows = self.db.execute(
            "SELECT seq, period_start, payload, attempts FROM outbox WHERE sent_at IS NULL AND seq > ? "
            "ORDER BY seq LIMIT ?",
            [after, limit],
        ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def acknowledged(self, seqs: list[int]) -> None:
        """The broker accepted them (a success reason code): marked sent, in one transaction."""
        if not seqs:
            return
        conn = self.db.conn
        now = time.time()
        with write_transaction(conn):
            conn.executemany("UPDATE outbox SET sent_at = ?, last_error = NULL WHERE seq = ?", [[now, s] for s in seqs])

    def failed(self, seq: int, error: str) -> None:
        """The broker refused it (a failure reason code) or it timed out: it stays, with the reason."""
        self.db.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?", [error[:200], seq]
        )

    def backlog(self) -> tuple[int, int]:
        """(rows, bytes) waiting to be sent."""
        rows, size = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM outbox WHERE sent_at IS NULL"
        ).fetchone()
        return int(rows), int(size)

    def republish(self, from_seq: int) -> int:
        """Queue again the sent summaries from ``from_seq`` on that are still kept; returns how many."""
        return self.db.conn.execute(
            "UPDATE outbox SET sent_at = NULL WHERE seq >= ? AND sent_at IS NOT NULL", [from_seq]
        ).rowcount

    def seq_range(self) -> tuple[int | None, int | None]:
        """(oldest, newest) seq still in the outbox, sent or not."""
        lo, hi = self.db.execute("SELECT MIN(seq), MAX(seq) FROM outbox").fetchone()
        return lo, hi

    def dropped_total(self) -> int:
        return self._counter("dropped_total")

    def close(self) -> None:
        """Close its database connection (the outbox is not used after this)."""
        self.db.conn.close()

    def is_closed(self, period_start: int) -> bool:
        return (
            self.db.execute("SELECT 1 FROM closed_periods WHERE period_start = ?", [period_start]).fetchone()
            is not None
        )
