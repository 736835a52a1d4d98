"""SQLite storage: migrations, batched upserts, retention and the k-anonymity reader (real files)."""

from __future__ import annotations

import sqlite3

import pytest

from kiosk.aggregate import Aggregator, period_start
from kiosk.store.aggregates import AggregateStore
from kiosk.store.db import MIGRATIONS, Migration, migrate, open_db, schema_version
from kiosk.store.kanon import read_aggregates, read_occupancy
from tests.helpers import T0, visit


def test_open_creates_wal_full_and_records_migrations(tmp_path):
    db = open_db(tmp_path / "k.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    rows = db.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]
    assert set(db.table_names()) == {
        "schema_migrations",
        "aggregates",
        "occupancy",
        "outbox",
        "closed_periods",
        "device_counters",
        "coverage",
    }
    db.conn.close()
    again = open_db(tmp_path / "k.db")  # re-opening applies nothing twice
    assert again.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)


def test_migrations_apply_in_order_once_and_refuse_a_newer_database(tmp_path):
    extra = MIGRATIONS + (Migration(99, "test column", ("ALTER TABLE occupancy ADD COLUMN note TEXT",)),)
    db = open_db(tmp_path / "k.db", migrations=extra)
    assert schema_version(db) == 99
    assert migrate(db, extra) == []
    with pytest.raises(RuntimeError, match="newer than this kiosk knows"):
        migrate(db, MIGRATIONS)
    with pytest.raises(ValueError, match="increasing"):
        migrate(db, (MIGRATIONS[0], MIGRATIONS[0]))


def test_a_failed_migration_leaves_no_trace(tmp_path):
    bad = MIGRATIONS + (
        Migration(MIGRATIONS[-1].version + 1, "broken", ("CREATE TABLE ok_table (x)", "THIS IS NOT SQL")),
    )
    with pytest.raises(sqlite3.OperationalError):
        open_db(tmp_path / "k.db", migrations=bad)
    db = open_db(tmp_path / "k.db")
    assert schema_version(db) == MIGRATIONS[-1].version and "ok_table" not in db.table_names()


def test_deltas_add_up_across_flushes(tmp_path):
    db = open_db(tmp_path / "k.db")
    store = AggregateStore(db)
    agg = Aggregator(period_s=300)
    for i in range(6):
        agg.add(visit(T0 + 10 + i, dwell=4.0 + i))
    agg.add(visit(T0 + 20, kind="passer_by", dwell=1.0))
    store.write(agg.drain())
    for i in range(4):
        agg.add(visit(T0 + 100 + i, dwell=30.0, emotion="neutral"))
    agg.add_occupancy(T0 + 5, "queue-1", 3)
    agg.add_occupancy(T0 + 6, "queue-1", 1)
    store.write(agg.drain())
    assert agg.drain().empty
    row = db.execute(
        "SELECT visits, passers_by, attentive, dwell_sum, dominant_happy, dominant_neutral, dwell_h0, dwell_h4 "
        "FROM aggregates"
    ).fetchone()
    assert row == (10, 1, 10, sum(4.0 + i for i in range(6)) + 120.0, 6, 4, 1, 4)
    assert read_occupancy(db) == ({"period_start": T0, "zone": "queue-1", "samples": 2, "total": 4, "peak": 3},)


def test_periods_are_aligned_to_utc():
    assert period_start(T0 + 299.9, 300) == T0
    assert period_start(T0 + 300, 300) == T0 + 300
    assert period_start(T0 + 3599, 3600) % 3600 == 0


def test_k_anonymity_suppresses_small_cells_and_says_how_many(tmp_path):
    db = open_db(tmp_path / "k.db")
    agg = Aggregator(300)
    for i in range(5):
        agg.add(visit(T0 + i, gender="female"))
    for i in range(2):
        agg.add(visit(T0 + i, gender="male"))
    for i in range(3):
        agg.add(visit(T0 + i, gender="male", kind="passer_by"))
    AggregateStore(db).write(agg.drain())
    by_gender = read_aggregates(db, k=5, group_by=("zone", "gender"))
    cells = {c["gender"]: c for c in by_gender.cells}
    assert cells["female"]["visits"] == 5 and not cells["female"]["suppressed"]
    assert cells["male"]["visits"] is None and cells["male"]["dwell_sum"] is None  # suppressed, never shown as zero
    assert cells["male"]["passers_by"] is None  # 3 < k as well
    assert cells["male"]["suppressed"] and by_gender.suppressed_cells == 1
    per_zone = read_aggregates(db, k=5, group_by=("zone",))
    assert per_zone.cells[0]["visits"] == 7 and per_zone.suppressed_cells == 1  # 3 passers-by < 5 hidden
    assert read_aggregates(db, k=2, group_by=("zone", "gender")).suppressed_cells == 0
    with pytest.raises(ValueError, match="cannot group by"):
        read_aggregates(db, group_by=("track_id",))


def test_empty_database_reads_as_no_cells(tmp_path):
    db = open_db(tmp_path / "k.db")
    assert read_aggregates(db, group_by=()).cells == ()
    assert read_aggregates(db).total_cells == 0


def test_retention_deletes_old_periods_only(tmp_path):
    db = open_db(tmp_path / "k.db")
    agg = Aggregator(300)
    agg.add(visit(T0 - 100 * 86400))
    agg.add(visit(T0))
    agg.add_occupancy(T0 - 100 * 86400, "q", 1)
    store = AggregateStore(db)
    store.write(agg.drain())
    assert store.apply_retention(90, now=T0) == 2
    assert [r[0] for r in db.execute("SELECT period_start FROM aggregates").fetchall()] == [T0]


def test_processes_opening_a_new_database_at_once_migrate_it_once(tmp_path):
    """The daemon, the publisher and a reader may open a fresh database at the same moment: each
    migration is applied by one of them, inside the write lock, and the others see it done."""
    import subprocess
    import sys

    for round_ in range(3):
        path = tmp_path / f"k{round_}.db"
        code = f"from kiosk.store.db import open_db; open_db({str(path)!r}).conn.close()"
        procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(6)]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 6, "\n\n".join(e[-1500:] for e in errors if e)
        db = open_db(path)
        rows = db.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]
        db.conn.close()


def test_coverage_splits_a_frame_gap_at_the_period_boundary_and_caps_a_stall(tmp_path):
    from kiosk.store.kanon import read_coverage

    agg = Aggregator(10)
    base = 1_800_000_000.0
    agg.add_frame(base + 9.7, 0.0)
    agg.add_frame(base + 10.2, 0.5)  # 0.3 s in the first period, 0.2 s in the second
    agg.add_frame(base + 25.0, 14.8)  # a 14.8 s stall covers 1 s, the one before the frame
    agg.add_camera_change(base + 12.0)
    db = open_db(tmp_path / "d.db")
    AggregateStore(db).write(agg.drain())
    first = read_coverage(db, since=base, until=base + 10)
    second = read_coverage(db, since=base + 10, until=base + 20)
    third = read_coverage(db, since=base + 20, until=base + 30)
    assert read_coverage(db, since=base + 30, until=base + 40) is None  # nothing recorded: not "0 s"
    assert first == {"frames": 1, "analysed_s": 0.3, "camera_changes": 0}
    assert second == {"frames": 1, "analysed_s": 0.2, "camera_changes": 1}
    assert third == {"frames": 1, "analysed_s": 1.0, "camera_changes": 0}


def test_every_column_the_store_writes_exists_after_the_migrations(tmp_path):
    """Migrations are written out and never change; the columns the store writes follow the
    vocabulary (histogram edges, emotions). Editing the vocabulary without a new migration fails here,
    not on a device."""
    from kiosk.store.aggregates import COUNT_COLUMNS, KEY_COLUMNS

    db = open_db(tmp_path / "kiosk.db")
    columns = {row[1] for row in db.execute("PRAGMA table_info(aggregates)").fetchall()}
    assert set(KEY_COLUMNS + COUNT_COLUMNS) <= columns, sorted(set(KEY_COLUMNS + COUNT_COLUMNS) - columns)
    assert columns - set(KEY_COLUMNS + COUNT_COLUMNS) == set()  # and none is left unwritten
