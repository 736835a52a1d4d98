"""Log lines: a repeated warning is let through once per interval, and says how many were held."""

from __future__ import annotations

import logging

from kiosk.logs import RepeatFilter


def _record(msg: str, level=logging.WARNING, name="kiosk.camera") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, ("x",), None)


def test_repeated_errors_are_rate_limited_and_counted(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("kiosk.logs.time.monotonic", lambda: now[0])
    f = RepeatFilter(60)
    assert f.filter(_record("camera %s offline"))
    assert not any(f.filter(_record("camera %s offline")) for _ in range(5))
    assert f.filter(_record("another problem %s"))  # a different message passes
    assert f.filter(_record("camera %s offline", level=logging.INFO))  # info is never held
    now[0] += 61
    rec = _record("camera %s offline")
    assert f.filter(rec) and "and 5 more like it" in rec.msg
