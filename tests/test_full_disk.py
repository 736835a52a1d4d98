"""A full disk (SQLite's "database or disk is full", made real with max_page_count): the store
thread keeps the aggregates in memory, says so, and writes them once there is room; nothing lost."""

from __future__ import annotations

import logging
import time

from kiosk.app import Runtime
from kiosk.config import parse_config

from tests.helpers import visit


def test_aggregates_survive_a_full_disk(tmp_path, pipeline, caplog):
    cfg = parse_config({"store": {"path": str(tmp_path / "kiosk.db"), "period_s": 60},
                        "camera": {"source": str(tmp_path / "none.avi")}, "mqtt": {"enabled": False}})
    runtime = Runtime(cfg, pipeline, started=time.monotonic(), clock_synced=lambda: True)
    db = runtime.store_db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")  # not one more page: the disk is full
    for i in range(200):
        runtime.chain.aggregator.add(visit(1_800_000_000 + i * 60, zone=f"zone-{i % 7}", content=f"c{i}"))
    runtime._deltas.put(runtime.chain.drain())
    with caplog.at_level(logging.ERROR):
        runtime._write_deltas()
    assert "cannot write aggregates" in caplog.text and "full" in caplog.text
    assert db.execute("SELECT COUNT(*) FROM aggregates").fetchone()[0] == 0
    assert runtime._deltas.qsize() == 1  # kept in memory
    db.execute("PRAGMA max_page_count = 1073741823")  # room again
    runtime._write_deltas()
    assert db.execute("SELECT SUM(visits) FROM aggregates").fetchone()[0] == 200
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.conn.close()
