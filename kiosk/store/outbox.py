"""The durable queue of summaries (store-and-forward).

A closed period's summary is built and written to the outbox in the same
transaction that marks the period closed, under a ``seq`` taken from a
persisted counter: seqs are strictly increasing and never reused, even after
rows are deleted. The publisher deletes a row only when the broker
acknowledges it with a success reason code. The outbox is bounded: when full,
the oldest summaries are dropped and counted; every summary carries the
cumulative count of summaries dropped so far (taken after making room for
itself), so the newest summary's count equals the number of earlier seqs that
will never arrive, even when a summary that carried an older count is dropped
in turn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    period_start: int
    payload: str
    attempts: int


class Outbox:
    def __init__(self, db: sqlite_utils.Database, max_rows: int = 20_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.db = db
        self.max_rows = max_rows
        self.max_bytes = max_bytes

    def _counter(self, name: str) -> int:
        return int(self.db.execute("SELECT value FROM device_counters WHERE name = ?", [name]).fetchone()[0])

    def close_period(self, period_start: int, build: Callable[[int, int], dict]) -> int | None:
        """Close a period once: ``build(seq, dropped_total)`` makes its summary, which is queued in
        the same transaction. Returns the seq, or None when the period was already closed."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM closed_periods WHERE period_start = ?", [period_start]).fetchone():
                conn.execute("ROLLBACK")
                return None
            self._enforce_bounds(conn, room_for=1)  # so the new summary's count includes what makes room for it
            seq = self._counter("next_seq")
            dropped = self._counter("dropped_total")
            payload = json.dumps(build(seq, dropped), separators=(",", ":"), sort_keys=True)
            conn.execute(
                "INSERT INTO outbox (seq, period_start, payload, bytes, created_at) VALUES (?, ?, ?, ?, ?)",
                [seq, period_start, payload, len(payload.encode()), time.time()],
            )
            conn.execute("INSERT INTO closed_periods (period_start, seq, closed_at) VALUES (?, ?, ?)",
                         [period_start, seq, time.time()])
            conn.execute("UPDATE device_counters SET value = ? WHERE name = 'next_seq'", [seq + 1])
            self._enforce_bounds(conn)  # the byte bound (rarely reached; counted in the next summary)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return seq

    def _enforce_bounds(self, conn, room_for: int = 0) -> None:
        """Drop the oldest rows until the outbox holds at most max_rows - room_for rows and max_bytes."""
        rows, size = conn.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM outbox").fetchone()
        limit = self.max_rows - room_for
        drop = 0
        if rows > limit or size > self.max_bytes:
            for seq, nbytes in conn.execute("SELECT seq, bytes FROM outbox ORDER BY seq").fetchall():
                if rows <= limit and size <= self.max_bytes:
                    break
                conn.execute("DELETE FROM outbox WHERE seq = ?", [seq])
                rows, size, drop = rows - 1, size - nbytes, drop + 1
        if drop:
            conn.execute("UPDATE device_counters SET value = value + ? WHERE name = 'dropped_total'", [drop])

    def pending(self, limit: int = 100, after: int = 0) -> list[OutboxRow]:
        """Queued summaries in seq order."""
        rows = self.db.execute(
            "SELECT seq, period_start, payload, attempts FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", [after, limit]
        ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def acknowledged(self, seqs: list[int]) -> None:
        """The broker accepted them (a success reason code): they leave the outbox, in one transaction."""
        if not seqs:
            return
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("DELETE FROM outbox WHERE seq = ?", [[s] for s in seqs])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def failed(self, seq: int, error: str) -> None:
        """The broker refused it (a failure reason code) or it timed out: it stays, with the reason."""
        self.db.conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?", [error[:200], seq])

    def backlog(self) -> tuple[int, int]:
        """(rows, bytes) waiting."""
        rows, size = self.db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM outbox").fetchone()
        return int(rows), int(size)

    def dropped_total(self) -> int:
        return self._counter("dropped_total")

    def is_closed(self, period_start: int) -> bool:
        return self.db.execute("SELECT 1 FROM closed_periods WHERE period_start = ?", [period_start]).fetchone() is not None
