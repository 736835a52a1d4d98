"""Opening the database and applying its ordered schema migrations.

WAL journal with ``synchronous=FULL``: a committed flush survives power loss.
Writes are batched by the caller (one transaction per flush interval, default
10 s), so on power loss at most one flush interval of visits is lost.
Every migration is applied once, in order, in its own transaction, and
recorded in ``schema_migrations``.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from kiosk.store.tx import write_transaction

# Migration 1 as it was first applied, written out: a migration never changes once released (the
# columns follow the histogram edges and emotions of kiosk.config.vocabulary at that time: 8 dwell bins,
# 8 attention bins, 7 emotions twice). Changing the vocabulary needs a new migration; a test checks that
# every column the store writes exists in a freshly migrated database.
AGGREGATES_V1 = """
    CREATE TABLE aggregates (
        period_start INTEGER NOT NULL,
        zone TEXT NOT NULL,
        content TEXT NOT NULL,
        age_band TEXT NOT NULL,
        gender TEXT NOT NULL,
        visits INTEGER NOT NULL DEFAULT 0,
        passers_by INTEGER NOT NULL DEFAULT 0,
        attentive INTEGER NOT NULL DEFAULT 0,
        dwell_sum REAL NOT NULL DEFAULT 0,
        attention_sum REAL NOT NULL DEFAULT 0,
        dwell_h0 INTEGER NOT NULL DEFAULT 0, dwell_h1 INTEGER NOT NULL DEFAULT 0, dwell_h2 INTEGER NOT NULL DEFAULT 0,
        dwell_h3 INTEGER NOT NULL DEFAULT 0, dwell_h4 INTEGER NOT NULL DEFAULT 0, dwell_h5 INTEGER NOT NULL DEFAULT 0,
        dwell_h6 INTEGER NOT NULL DEFAULT 0, dwell_h7 INTEGER NOT NULL DEFAULT 0, attention_h0 INTEGER NOT NULL DEFAULT 0,
        attention_h1 INTEGER NOT NULL DEFAULT 0, attention_h2 INTEGER NOT NULL DEFAULT 0, attention_h3 INTEGER NOT NULL DEFAULT 0,
        attention_h4 INTEGER NOT NULL DEFAULT 0, attention_h5 INTEGER NOT NULL DEFAULT 0, attention_h6 INTEGER NOT NULL DEFAULT 0,
        attention_h7 INTEGER NOT NULL DEFAULT 0, dominant_angry INTEGER NOT NULL DEFAULT 0, dominant_disgust INTEGER NOT NULL DEFAULT 0,
        dominant_fear INTEGER NOT NULL DEFAULT 0, dominant_happy INTEGER NOT NULL DEFAULT 0, dominant_sad INTEGER NOT NULL DEFAULT 0,
        dominant_surprise INTEGER NOT NULL DEFAULT 0, dominant_neutral INTEGER NOT NULL DEFAULT 0, first_angry INTEGER NOT NULL DEFAULT 0,
        first_disgust INTEGER NOT NULL DEFAULT 0, first_fear INTEGER NOT NULL DEFAULT 0, first_happy INTEGER NOT NULL DEFAULT 0,
        first_sad INTEGER NOT NULL DEFAULT 0, first_surprise INTEGER NOT NULL DEFAULT 0, first_neutral INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (period_start, zone, content, age_band, gender)
    ) WITHOUT ROWID
    """


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "aggregates and queue occupancy",
        (
            AGGREGATES_V1,
            """CREATE TABLE occupancy (
            period_start INTEGER NOT NULL,
            zone TEXT NOT NULL,
            samples INTEGER NOT NULL DEFAULT 0,
            total INTEGER NOT NULL DEFAULT 0,
            peak INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (period_start, zone)
        ) WITHOUT ROWID""",
        ),
    ),
    Migration(
        2,
        "outbox of summaries, closed periods, device counters",
        (
            """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY,
            period_start INTEGER NOT NULL,
            payload TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT
        )""",
            "CREATE TABLE closed_periods (period_start INTEGER PRIMARY KEY, seq INTEGER, closed_at REAL NOT NULL) WITHOUT ROWID",
            "CREATE TABLE device_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
            "INSERT INTO device_counters (name, value) VALUES ('next_seq', 1), ('dropped_total', 0)",
        ),
    ),
    Migration(
        3,
        "sent summaries are kept (marked) for republish",
        (
            "ALTER TABLE outbox ADD COLUMN sent_at REAL",
            "CREATE INDEX outbox_unsent ON outbox (sent_at, seq)",
        ),
    ),
    Migration(
        4,
        "coverage: frames analysed and camera changes per period",
        (
            """CREATE TABLE coverage (
            period_start INTEGER PRIMARY KEY,
            frames INTEGER NOT NULL DEFAULT 0,
            analysed_s REAL NOT NULL DEFAULT 0,
            camera_changes INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID""",
        ),
    ),
)


def open_db(path: str | Path, *, migrations: tuple[Migration, ...] = MIGRATIONS) -> sqlite_utils.Database:
    """Open (creating when missing) a kiosk database: WAL, synchronous=FULL, migrated to the latest schema."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    db = sqlite_utils.Database(conn)
    configure(db)
    migrate(db, migrations)
    return db


def configure(db: sqlite_utils.Database, patience_s: float = 30.0) -> None:
    # Switching a new file to WAL takes the file's exclusive lock, and SQLite answers "database is
    # locked" at once, without its busy timeout, when another process is opening it at that moment
    # (the daemon, the publisher and a report starting together): try again for a while.
    deadline = time.monotonic() + patience_s
    delay = 0.01
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(0.5, delay * 2)
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left in free pages
    db.execute("PRAGMA wal_autocheckpoint=1000")  # keep the WAL bounded on SD cards
    db.execute("PRAGMA journal_size_limit=4194304")  # and truncate it back to 4 MiB after a checkpoint


def migrate(db: sqlite_utils.Database, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the migrations newer than the database's version, in order. Returns those applied."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in db.execute("SELECT version FROM schema_migrations").fetchall()}
    versions = [m.version for m in migrations]
    if versions != sorted(versions) or len(set(versions)) != len(versions):
        raise ValueError("migrations must have unique, increasing versions")
    newer = [m for m in migrations if m.version not in done]
    if done and max(done) > max(versions, default=0):
        raise RuntimeError(
            f"database schema version {max(done)} is newer than this kiosk knows ({max(versions)}): "
            "upgrade kiosk, or restore the database that belongs to this version"
        )
    applied = []
    for m in newer:
        with write_transaction(db.conn) as conn:  # the write lock: one process migrates, the others wait
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", [m.version]).fetchone():
                continue  # applied by another process (the publisher, a reader) meanwhile
            for sql in m.statements:
                conn.execute(sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                [m.version, m.name, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")],
            )
        applied.append(m.version)
    return applied


def schema_version(db: sqlite_utils.Database) -> int:
    row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)
