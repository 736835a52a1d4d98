"""What reaches the disk, and what a wall-clock jump does."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

import pytest

from kiosk.aggregate import Aggregator, period_start
from kiosk.camera.sources import video_frames
from kiosk.config import parse_config
from kiosk.store.aggregates import AggregateStore
from kiosk.store.db import open_db
from kiosk.store.kanon import read_aggregates
from kiosk.testing.attack import attack_summaries
from kiosk.wiring import VisitChain, open_pipeline
from tests.conftest import data_path

T0 = 1_800_000_000.0
IMAGE_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF8": "GIF",
    b"BM": None,
    b"RIFF": "RIFF/WebP",
}


def test_database_and_wal_after_a_run_hold_no_image_blob_or_per_visit_data(tmp_path):
    clip = data_path("videos", "face-demographics-walking-and-pause.mp4")
    db_path = tmp_path / "kiosk.db"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("visits:\n  min_dwell_s: 1.0\nstore:\n  flush_interval_s: 1.0\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kiosk.cli",
            "analyze",
            "--visits",
            "--config",
            str(cfg),
            "--db",
            str(db_path),
            "--start",
            "2027-01-15T10:00:00Z",
            str(clip),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    visits = [json.loads(line)["visit"] for line in proc.stdout.splitlines() if line.startswith('{"visit"')]
    assert len(visits) == 3
    # the closing summary is the payload a device would publish (seq 0: it was not queued), k-suppressed
    from kiosk.fleet.collector import load_validator

    last = json.loads(proc.stdout.splitlines()[-1])
    summary = {**last["summary"], "seq": 1}
    load_validator("summary.v2.json").validate(summary)
    assert attack_summaries([summary]) == []
    assert summary["period_start"] == "2027-01-15T10:00:00Z" and last["frames"] > 0
    assert summary["coverage"]["frames"] == last["frames"] and summary["coverage"]["analysed_s"] > 0
    assert all(z["visits"] is None for z in summary["zones"])  # 3 visits < k = 5: hidden
    files = [p for p in tmp_path.iterdir() if p.name.startswith("kiosk.db")]
    assert db_path in files
    for path in files:  # the database, its -wal and -shm
        raw = path.read_bytes()
        for magic, name in IMAGE_SIGNATURES.items():
            if name:
                assert magic not in raw, f"{name} signature in {path.name}"
        assert b"JFIF" not in raw and b"Exif" not in raw and b"IHDR" not in raw
    db = open_db(db_path)
    assert set(db.table_names()) == {
        "schema_migrations",
        "aggregates",
        "occupancy",
        "outbox",
        "closed_periods",
        "device_counters",
        "coverage",
    }
    for table in db.table_names():
        if table == "outbox":  # k-suppressed summaries (JSON, validated by the MQTT tests); none are closed here
            assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
            continue
        for column in db[table].columns:
            assert not re.search(r"track|box|embed|image|crop|face|person|visit_id", column.name), (table, column.name)
            kinds = db.execute(f"SELECT DISTINCT typeof({column.name}) FROM {table}").fetchall()
            assert ("blob",) not in kinds, (table, column.name)
            longest = db.execute(f"SELECT MAX(LENGTH(CAST({column.name} AS TEXT))) FROM {table}").fetchone()[0] or 0
            assert longest < 100, (table, column.name, longest)
    # counters only: one row per (period, zone, content, age band, gender), aligned periods, no timestamps of visits
    rows = db.execute("SELECT period_start, visits, passers_by FROM aggregates").fetchall()
    assert all(p % 300 == 0 for p, _, _ in rows)
    assert sum(v + pb for _, v, pb in rows) == 3
    assert len(rows) <= 3
    starts = {v["start"] for v in visits}
    text = "".join(str(r) for r in db.execute("SELECT * FROM aggregates").fetchall())
    assert not any(s in text for s in starts)


@pytest.mark.parametrize("jump", [3600.0, -3600.0])
def test_a_wall_clock_jump_neither_loses_nor_duplicates(tmp_path, jump):
    """Durations come from the monotonic clock; a jump of the wall clock in the middle of a
    visit changes nothing but the period the visit lands in, and each visit is counted once."""
    clip = data_path("videos", "face-demographics-walking-and-pause.mp4")
    cfg = parse_config({"visits": {"min_dwell_s": 1.0}, "store": {"period_s": 300}})
    runs = {}
    with open_pipeline(cfg.vision) as pipeline:
        for name, offset in (("steady", 0.0), ("jumped", jump)):
            chain = VisitChain(cfg, pipeline)
            visits = []
            for _, t, frame in video_frames(str(clip)):
                wall = T0 + 299.0 + t + (offset if t >= 1.0 else 0.0)  # starts 1 s before a period boundary
                visits += chain.process(frame, t, wall)
            visits += chain.finish()
            db = open_db(tmp_path / f"{name}.db")
            AggregateStore(db).write(chain.drain())
            runs[name] = (visits, db)
    steady, jumped = runs["steady"][0], runs["jumped"][0]
    assert len(steady) == len(jumped) == 3
    assert sorted(round(v.dwell_s, 3) for v in steady) == sorted(round(v.dwell_s, 3) for v in jumped)
    assert sorted(round(v.attention_s, 3) for v in steady) == sorted(round(v.attention_s, 3) for v in jumped)
    for visits, db in runs.values():
        total = read_aggregates(db, k=1, group_by=())
        assert total.cells[0]["visits"] == 3
        # each visit is counted once, in the period its (possibly jumped) wall-clock end falls in
        stored = dict(
            db.execute("SELECT period_start, SUM(visits + passers_by) FROM aggregates GROUP BY period_start").fetchall()
        )
        assert stored == dict(Counter(period_start(v.wall_end, 300) for v in visits)), stored


def test_aggregator_assigns_each_visit_to_exactly_one_period_across_jumps():
    agg = Aggregator(300)
    walls = [T0 + 10, T0 + 20, T0 + 3600 + 30, T0 + 40 - 3600, T0 + 50]  # forward, then backward
    from tests.helpers import visit

    for w in walls:
        agg.add(visit(w))
    cells = agg.drain().cells
    assert sum(c.visits for c in cells.values()) == len(walls)
    assert sorted({k[0] for k in cells}) == [T0 - 3600, T0, T0 + 3600]
