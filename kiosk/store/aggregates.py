"""Writing aggregate deltas (one transaction per flush) and enforcing retention."""

from __future__ import annotations

import time

import sqlite_utils

from kiosk.aggregate import Deltas
from kiosk.config.vocabulary import ATTENTION_BINS, DWELL_BINS, EMOTIONS
from kiosk.store.tx import write_transaction

KEY_COLUMNS = ("period_start", "zone", "content", "age_band", "gender")
COUNT_COLUMNS = (
    ("visits", "passers_by", "attentive", "dwell_sum", "attention_sum")
    + tuple(f"dwell_h{i}" for i in range(len(DWELL_BINS)))
    + tuple(f"attention_h{i}" for i in range(len(ATTENTION_BINS)))
    + tuple(f"dominant_{e}" for e in EMOTIONS)
    + tuple(f"first_{e}" for e in EMOTIONS)
)

_UPSERT = (
    f"INSERT INTO aggregates ({', '.join(KEY_COLUMNS + COUNT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (len(KEY_COLUMNS) + len(COUNT_COLUMNS)))}) "
    f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in COUNT_COLUMNS)
)
_UPSERT_OCC = (
    "INSERT INTO occupancy (period_start, zone, samples, total, peak) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (period_start, zone) DO UPDATE SET samples = samples + excluded.samples, "
    "total = total + excluded.total, peak = MAX(peak, excluded.peak)"
)
_UPSERT_COV = (
    "INSERT INTO coverage (period_start, frames, analysed_s, camera_changes) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (period_start) DO UPDATE SET frames = frames + excluded.frames, "
    "analysed_s = analysed_s + excluded.analysed_s, camera_changes = camera_changes + excluded.camera_changes"
)


class AggregateStore:
    """Adds drained deltas to the stored counters. The connection is injected."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def write(self, deltas: Deltas) -> int:
        """Add the deltas in one transaction; returns the number of cells touched."""
        if deltas.empty:
            return 0
        rows = []
        for key, c in deltas.cells.items():
            rows.append(
                list(key)
                + [c.visits, c.passers_by, c.attentive, c.dwell_sum, c.attention_sum]
                + c.dwell_hist
                + c.attention_hist
                + c.dominant
                + c.first_reaction
            )
        occ = [[p, z, o.samples, o.total, o.peak] for (p, z), o in deltas.occupancy.items()]
        cov = [[p, c.frames, c.analysed_s, c.camera_changes] for p, c in deltas.coverage.items()]
        with write_transaction(self.db.conn) as conn:
            conn.executemany(_UPSERT, rows)
            conn.executemany(_UPSERT_OCC, occ)
            conn.executemany(_UPSERT_COV, cov)
        return len(rows) + len(occ) + len(cov)

    def apply_retention(self, retention_days: float, now: float | None = None) -> int:
        """Delete periods that started more than ``retention_days`` ago; returns rows deleted."""
        cutoff = (time.time() if now is None else now) - retention_days * 86400
        with write_transaction(self.db.conn) as conn:
            n = conn.execute("DELETE FROM aggregates WHERE period_start < ?", [cutoff]).rowcount
            n += conn.execute("DELETE FROM occupancy WHERE period_start < ?", [cutoff]).rowcount
            n += conn.execute("DELETE FROM coverage WHERE period_start < ?", [cutoff]).rowcount
        return n
