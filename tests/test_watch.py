"""`kiosk watch` lines: readable, and a suppressed figure is shown as <k or hidden, never as a number."""

from __future__ import annotations

import json

from kiosk.fleet.watch import format_message
from kiosk.store.db import open_db
from kiosk.summary import build_summary
from tests.helpers import T0, context, fill


def test_summary_status_and_stats_lines(tmp_path):
    db = open_db(tmp_path / "d.db")
    fill(db, 1, 300)
    msg = build_summary(db, context(300), T0, seq=7, dropped=0, clock_synced=True)
    text = format_message("kiosk/store-1/dev-1/summary", json.dumps(msg).encode())
    assert "seq 7" in text and "visits 6" in text and "gender hidden" in text  # 5 women and 1 man: both hidden
    status = {
        "state": "online",
        "device_id": "dev-1",
        "store_id": "store-1",
        "version": "0.1.0",
        "config_hash": "abc",
        "error": "camera_offline: gone",
    }
    assert "error: camera_offline" in format_message("kiosk/store-1/dev-1/status", json.dumps(status).encode())
    stats = {"device_id": "dev-1", "store_id": "store-1", "frames_per_s": 9.8, "outbox_backlog": 3}
    assert "9.8 frames/s" in format_message("kiosk/store-1/dev-1/stats", json.dumps(stats).encode())
    assert "not JSON" in format_message("kiosk/a/b/summary", b"\xff")
