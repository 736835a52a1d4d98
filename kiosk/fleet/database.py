"""The central collector's database: summaries keyed by (device, seq), the last status of each
device, and the gaps in each device's seqs. SQLite (a file path) for one store or a small fleet,
PostgreSQL (``postgresql://...``, needs psycopg: ``pip install 'kiosk[collect]'``) for fleets that
outgrow one file; the same schema and the same idempotent inserts on both.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kiosk.store.kanon import period_filter

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS summaries (device_id TEXT NOT NULL, store_id TEXT NOT NULL, seq BIGINT NOT NULL, "
    "period_start TEXT NOT NULL, payload TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL, "
    "PRIMARY KEY (device_id, seq))",
    "CREATE INDEX IF NOT EXISTS summaries_period ON summaries (period_start)",
    "CREATE TABLE IF NOT EXISTS status (device_id TEXT PRIMARY KEY, store_id TEXT, state TEXT, payload TEXT, "
    "received_at DOUBLE PRECISION)",
)


@dataclass(frozen=True)
class Gap:
    device_id: str
    missing: tuple[int, ...]


def is_postgres(target: str | Path) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


class CollectorStore:
    """Thread-safe (one lock); a repeated (device, seq) is ignored and counted as a duplicate."""

    def __init__(self, target: str | Path) -> None:
        self.target = str(target)
        self.postgres = is_postgres(target)
        if self.postgres:
            try:
                import psycopg
            except ImportError:
                raise RuntimeError("a postgresql:// database needs psycopg: pip install 'kiosk[collect]'") from None
            self.conn = psycopg.connect(self.target, autocommit=True)
            self._mark = "%s"
        else:
            self.conn = sqlite3.connect(self.target, check_same_thread=False, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self._mark = "?"
        self.lock = threading.Lock()
        self.duplicates = 0
        self.invalid = 0
        for sql in SCHEMA:
            self._run(sql)

    def _run(self, sql: str, params: list | tuple = ()):
        with self.lock:
            return self.conn.execute(sql.replace("?", self._mark), params)

    def _rows(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        with self.lock:
            return list(self.conn.execute(sql.replace("?", self._mark), params).fetchall())

    def add_summary(self, msg: dict) -> bool:
        cur = self._run(
            "INSERT INTO summaries (device_id, store_id, seq, period_start, payload, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, seq) DO NOTHING",
            [msg["device_id"], msg["store_id"], msg["seq"], msg["period_start"], json.dumps(msg), time.time()],
        )
        if cur.rowcount == 0:
            self.duplicates += 1
        return cur.rowcount == 1

    def set_status(self, msg: dict) -> None:
        self._run(
            "INSERT INTO status (device_id, store_id, state, payload, received_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET store_id = excluded.store_id, state = excluded.state, "
            "payload = excluded.payload, received_at = excluded.received_at",
            [msg["device_id"], msg["store_id"], msg["state"], json.dumps(msg), time.time()],
        )

    def seqs(self, device_id: str) -> list[int]:
        return [
            int(r[0]) for r in self._rows("SELECT seq FROM summaries WHERE device_id = ? ORDER BY seq", [device_id])
        ]

    def devices(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT DISTINCT device_id FROM summaries ORDER BY device_id")]

    def gaps(self, devices: list[str] | None = None) -> list[Gap]:
        out = []
        for device in devices if devices is not None else self.devices():
            have = self.seqs(device)
            if not have:
                continue
            missing = sorted(set(range(have[0], have[-1] + 1)) - set(have))
            out.append(Gap(device, tuple(missing)))
        return out

    def status_of(self, device_id: str) -> str | None:
        rows = self._rows("SELECT state FROM status WHERE device_id = ?", [device_id])
        return rows[0][0] if rows else None

    def payload(self, device_id: str, seq: int) -> dict | None:
        rows = self._rows("SELECT payload FROM summaries WHERE device_id = ? AND seq = ?", [device_id, seq])
        return json.loads(rows[0][0]) if rows else None

    def summaries(
        self,
        *,
        device_id: str | None = None,
        store_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[dict]:
        """Stored summaries (period_start in [since, until), ISO 8601 UTC), oldest first."""
        where, params = period_filter(since, until)
        for column, value in (("device_id", device_id), ("store_id", store_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT payload FROM summaries" + (" WHERE " + " AND ".join(where) if where else "")
        return [json.loads(r[0]) for r in self._rows(sql + " ORDER BY period_start, device_id", params)]

    def close(self) -> None:
        with self.lock:
            self.conn.close()
