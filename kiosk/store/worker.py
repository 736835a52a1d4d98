"""The store worker: the daemon's ``kiosk-store`` thread, apart from the vision stack.

It takes the aggregate deltas the vision thread drains (:meth:`StoreWorker.submit`), writes them
in one transaction per flush, closes the periods that are due into the outbox, watches the wall
clock for jumps and applies retention. A write that fails (a full disk) keeps the deltas in memory
and says so in :attr:`StoreWorker.problem` until there is room. No model, camera or broker is
needed to run it (its tests run it on real SQLite files alone).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from kiosk.aggregate import Deltas, period_start
from kiosk.clock import JumpDetector
from kiosk.periods import PeriodCloser
from kiosk.store.aggregates import AggregateStore

log = logging.getLogger("kiosk.store")

RETENTION_EVERY_S = 3600.0


class StoreWorker:
    def __init__(
        self,
        db: sqlite_utils.Database,
        closer: PeriodCloser,
        *,
        path: Path,
        period_s: int,
        retention_days: float,
        clock_jump_s: float,
        request_flush: Callable[[float], bool] | None = None,
        interval_s: float = 0.5,
    ) -> None:
        """``request_flush(timeout)``: ask the producer to hand over what it holds now (before a
        period is closed early after a clock jump); True once it has."""
        self.db = db
        self.store = AggregateStore(db)
        self.closer = closer
        self.path = path
        self.period_s = period_s
        self.retention_days = retention_days
        self.jumps = JumpDetector(clock_jump_s)
        self.request_flush = request_flush or (lambda timeout: True)
        self.interval_s = interval_s
        self.problem: str | None = None  # a write that failed (a full disk), shown in status
        self.heartbeat = time.monotonic()  # each pass of the loop (the watchdog asks)
        self._deltas: queue.Queue[Deltas] = queue.Queue()
        self._last_retention = float("-inf")

    # --- from the producer ----------------------------------------------------------------------

    def submit(self, deltas: Deltas) -> None:
        """Hand over drained deltas (never blocks: the queue is in memory)."""
        self._deltas.put(deltas)

    @property
    def waiting(self) -> int:
        """Batches of deltas not yet written."""
        return self._deltas.qsize()

    def begin(self, now: float, first: Deltas) -> None:
        """At start: note the periods a killed run left open and the one starting now, and write the
        start at once (a process that dies before its first flush, in a crash loop, still leaves the
        periods it lived through, to be closed with their coverage)."""
        self.closer.recover()
        self.closer.note_time(now)
        self.submit(first)
        try:
            self.write_pending()
        except Exception as exc:  # the loop retries
            log.warning("could not record the start in %s: %s", self.path, exc)

    # --- the work ------------------------------------------------------------------------------

    def write_pending(self) -> None:
        """Write every batch handed over, in order; on a failure keep it (and those after it) for the next pass."""
        while True:
            try:
                deltas = self._deltas.get_nowait()
            except queue.Empty:
                return
            if deltas.empty:
                continue
            try:
                self.store.write(deltas)
            except Exception as exc:  # a full disk: keep the deltas in memory and try again
                self._deltas.put(deltas)
                full = "full" in str(exc).lower()
                self.problem = (
                    f"disk_full: {self.path}: {exc}; aggregates kept in memory until there is room"
                    if full
                    else f"store_error: {exc}"
                )[:300]
                log.error("cannot write aggregates to %s: %s; kept in memory, retrying", self.path, exc)
                if full:
                    self._free_wal()
                return
            self.problem = None
            self.closer.note_written(deltas.periods)

    def _free_wal(self) -> None:
        """On a full disk, give the WAL's pages back (a checkpoint that truncates the file)."""
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except Exception as exc:
            log.warning("WAL checkpoint failed: %s", exc)

    def step(self, now: float, stopping: bool = False) -> None:
        """One pass: a clock jump closes the current period early; the deltas are written; due periods
        are closed (at stop, without grace: nothing more will come); retention once an hour."""
        jump = self.jumps.check()
        if jump is not None:
            log.warning("wall clock jumped by %+.1f s (NTP correction?): closing the current period", jump.seconds)
            if not stopping:
                self.request_flush(2.0)
            self.write_pending()
            self.closer.close_all_but(period_start(now, self.period_s))
        self.write_pending()
        self.closer.note_time(now)
        if stopping:
            self.closer.close_due(now, grace=False)
            return
        self.closer.close_due(now)
        if time.monotonic() - self._last_retention > RETENTION_EVERY_S:
            self._last_retention = time.monotonic()
            self.store.apply_retention(self.retention_days)

    def run(self, stop: threading.Event) -> None:
        """The thread's loop, until ``stop`` is set (then a last pass); a failed pass is logged and retried."""
        while True:
            stopping = stop.wait(self.interval_s)
            self.heartbeat = time.monotonic()
            try:
                self.step(time.time(), stopping)
            except Exception:
                log.exception("store step failed; retrying")
            if stopping:
                return
