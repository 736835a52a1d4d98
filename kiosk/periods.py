"""Closing aggregation periods: each closed period's summary goes into the outbox, once.

A period is closed when it is over and a grace time has passed (visits are
counted in the period their person was last seen in, and reach the store a
little later: the track's ``max_age_s``, or its wait for the face to come back
``reacquire_s``, plus one flush interval). Periods the
daemon lived through are closed even when nobody came (an empty summary says
"running, nobody here", which a missing one cannot). Periods the daemon did not
live through are not invented; periods with stored data that were never closed
(a crash, a power cut) are closed at the next start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlite_utils

from kiosk.aggregate import period_start
from kiosk.store.outbox import Outbox
from kiosk.summary import SummaryContext, build_summary, iso

log = logging.getLogger("kiosk.periods")


class PeriodCloser:
    def __init__(
        self,
        db: sqlite_utils.Database,
        outbox: Outbox,
        ctx: SummaryContext,
        grace_s: float,
        clock_synced: Callable[[], bool],
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.ctx = ctx
        self.grace_s = grace_s
        self.clock_synced = clock_synced
        self._open: set[int] = set()
        self.late = 0  # periods that received data after they had been closed (a clock set back)

    def recover(self) -> None:
        """Note every period with stored data that was never closed (after a crash or power cut)."""
        rows = self.db.execute(
            "SELECT period_start FROM aggregates UNION SELECT period_start FROM occupancy "
            "UNION SELECT period_start FROM coverage EXCEPT SELECT period_start FROM closed_periods"
        ).fetchall()
        self._open.update(int(r[0]) for r in rows)

    def note_time(self, wall: float) -> None:
        """The daemon is running at ``wall``: its period will be closed, even if empty."""
        self._open.add(period_start(wall, self.ctx.period_s))

    def note_written(self, periods) -> None:
        """Data was written for these periods."""
        for p in periods:
            if p not in self._open and self.outbox.is_closed(p):
                self.late += 1
                log.warning(
                    "data for period %s arrived after it was closed (was the clock set back?); it is kept "
                    "in the database for reports but not sent",
                    iso(p),
                )
                continue
            self._open.add(p)

    def close_due(self, now: float, grace: bool = True) -> list[int]:
        """Close every noted period that is over by ``now`` (minus the grace time). Returns the seqs queued."""
        limit = now - (self.grace_s if grace else 0.0)
        return self._close(p for p in sorted(self._open) if p + self.ctx.period_s <= limit)

    def close_all_but(self, current: int) -> list[int]:
        """After a clock jump: close every noted period except ``current`` at once, without grace."""
        return self._close(sorted(self._open - {current}))

    def _close(self, periods) -> list[int]:
        seqs = []
        for p in list(periods):
            seq = self.outbox.close_period(
                p, lambda seq, dropped, p=p: build_summary(self.db, self.ctx, p, seq, dropped, self.clock_synced())
            )
            self._open.discard(p)
            if seq is not None:
                seqs.append(seq)
                log.info("period %s closed: summary seq %d queued", iso(p), seq)
        return seqs
