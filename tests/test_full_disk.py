"""A full disk (SQLite's "database or disk is full", made real with max_page_count): the store
thread keeps the aggregates in memory, says so, and writes them once there is room; nothing lost."""

from __future__ import annotations

import logging
import time

import pytest

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


def test_a_full_disk_is_named_in_the_log_and_the_status_not_hidden_by_a_failed_rollback(tmp_path, pipeline, caplog):
    """SQLite rolls back by itself on 'database or disk is full'; the second ROLLBACK failed with
    'cannot rollback - no transaction is active', which was logged instead of the cause."""
    cfg = parse_config({"store": {"path": str(tmp_path / "kiosk.db"), "period_s": 60},
                        "camera": {"source": str(tmp_path / "none.avi")}, "mqtt": {"enabled": False}})
    runtime = Runtime(cfg, pipeline, started=time.monotonic(), clock_synced=lambda: True)
    db = runtime.store_db
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    for i in range(300):
        runtime.chain.aggregator.add(visit(1_800_000_000 + i * 60, zone=f"zone-{i % 9}", content=f"c{i}"))
    runtime._deltas.put(runtime.chain.drain())
    with caplog.at_level(logging.ERROR):
        runtime._write_deltas()
    assert "database or disk is full" in caplog.text and "no transaction is active" not in caplog.text
    assert runtime.store_problem.startswith("disk_full:")
    db.execute("PRAGMA max_page_count = 1073741823")
    runtime._write_deltas()
    assert runtime.store_problem is None  # cleared once written
    db.conn.close()


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 KiB file system (tmpfs), when this machine lets the tests mount one (root)."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({proc.stderr.strip() or 'not root'}); the page-count test stands in")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_really_full_file_system_reports_its_cause(small_disk):
    """On a real full disk SQLite rolls the transaction back itself: the error is 'database or disk
    is full', not the failed second ROLLBACK, and what was committed before is intact."""
    import sqlite3

    from kiosk.aggregate import Aggregator
    from kiosk.store.aggregates import AggregateStore
    from kiosk.store.db import open_db

    db = open_db(small_disk / "kiosk.db")
    store = AggregateStore(db)
    written = 0
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        for r in range(1000):
            agg = Aggregator(60)
            for i in range(200):
                agg.add(visit(1_800_000_000 + (r * 200 + i) * 60, zone=f"zone-{i % 9}", content=f"c{r}-{i}"))
            store.write(agg.drain())
            written += 200
    assert written > 0 and db.execute("SELECT SUM(visits) FROM aggregates").fetchone()[0] == written
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.conn.close()
