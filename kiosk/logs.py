"""Logging for the daemon: one line per event on stdout (journald adds the time under systemd),
with levels, and a rate limit on repeated warnings and errors."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time


class RepeatFilter(logging.Filter):
    """Lets a warning or error with the same logger and message template through at most once per
    ``interval_s``; the next one that passes says how many were held back."""

    def __init__(self, interval_s: float) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or self.interval_s <= 0:
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            last, held = self._last.get(key, (None, 0))
            if last is not None and now - last < self.interval_s:
                self._last[key] = (last, held + 1)
                return False
            self._last[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} (and {held} more like it in the last {self.interval_s:.0f} s)"
        return True


def configure(level: str = "info", repeat_interval_s: float = 60.0, stream=None) -> None:
    """Log lines to ``stream`` (stdout unless given: a command whose stdout carries its result
    logs to stderr)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    under_journald = bool(os.environ.get("JOURNAL_STREAM"))
    handler.setFormatter(
        logging.Formatter(
            "%(levelname)s %(name)s: %(message)s"
            if under_journald
            else "%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    )
    handler.addFilter(RepeatFilter(repeat_interval_s))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("paho").setLevel(logging.WARNING)
