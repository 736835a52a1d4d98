"""The store thread (``kiosk.store.worker``, run here without any model): a full disk (SQLite's
"database or disk is full", made real with max_page_count) keeps the aggregates in memory, says so,
and writes them once there is room; nothing lost."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from kiosk.aggregate import Aggregator, Deltas
from kiosk.periods import PeriodCloser
from kiosk.store.db import open_db
from kiosk.store.outbox import Outbox
from kiosk.store.worker import StoreWorker
from tests.helpers import context, visit, wait_for


def _store_worker(path: Path) -> StoreWorker:
    """The daemon's store thread on its own: a real SQLite file, no model, camera or broker."""
    db = open_db(path)
    closer = PeriodCloser(db, Outbox(db), context(60), grace_s=0.0, clock_synced=lambda: True)
    return StoreWorker(db, closer, path=path, period_s=60, retention_days=90, clock_jump_s=2.0)


def _deltas(n: int, zones: int, start: float = 1_800_000_000) -> Deltas:
    agg = Aggregator(60)
    for i in range(n):
        agg.add(visit(start + i * 60 + 30, zone=f"zone-{i % zones}", content=f"c{i}"))
    return agg.drain()


def test_aggregates_survive_a_full_disk(tmp_path, caplog):
    worker = _store_worker(tmp_path / "kiosk.db")
    db = worker.db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")  # not one more page: the disk is full
    worker.submit(_deltas(200, 7))
    with caplog.at_level(logging.ERROR):
        worker.write_pending()
    assert "cannot write aggregates" in caplog.text and "full" in caplog.text
    assert db.execute("SELECT COUNT(*) FROM aggregates").fetchone()[0] == 0
    assert worker.waiting == 1  # kept in memory
    db.execute("PRAGMA max_page_count = 1073741823")  # room again
    worker.write_pending()
    assert db.execute("SELECT SUM(visits) FROM aggregates").fetchone()[0] == 200
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.conn.close()


def test_a_full_disk_is_named_in_the_log_and_the_status_not_hidden_by_a_failed_rollback(tmp_path, caplog):
    """SQLite rolls back by itself on 'database or disk is full'; the second ROLLBACK failed with
    'cannot rollback - no transaction is active', which was logged instead of the cause."""
    worker = _store_worker(tmp_path / "kiosk.db")
    db = worker.db
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    worker.submit(_deltas(300, 9))
    with caplog.at_level(logging.ERROR):
        worker.write_pending()
    assert "database or disk is full" in caplog.text and "no transaction is active" not in caplog.text
    assert worker.problem.startswith("disk_full:")
    db.execute("PRAGMA max_page_count = 1073741823")
    worker.write_pending()
    assert worker.problem is None  # cleared once written
    db.conn.close()


def test_the_store_thread_closes_each_period_once_with_its_data_and_stops_cleanly(tmp_path):
    """The loop as the daemon runs it: deltas handed over while it runs are written, every period
    that is over is closed into the outbox with its visits, the last pass at stop closes the rest."""
    import threading

    worker = _store_worker(tmp_path / "kiosk.db")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="kiosk-store")
    worker.interval_s = 0.05
    thread.start()
    try:
        worker.submit(_deltas(30, 3, start=(time.time() // 60 - 40) * 60))  # 30 one-minute periods, over
        assert wait_for(lambda: worker.closer.outbox.backlog()[0] == 30, 20)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive() and worker.problem is None
    rows = worker.db.execute("SELECT seq, period_start FROM outbox ORDER BY seq").fetchall()
    assert [seq for seq, _ in rows] == list(range(1, 31))
    assert [p for _, p in rows] == sorted(p for _, p in rows)
    worker.db.conn.close()


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 KiB file system (tmpfs), when this machine lets the tests mount one (root)."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here ({proc.stderr.strip() or 'not root'}); the page-count test stands in"
        )
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
