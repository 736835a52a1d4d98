"""Where a report's data comes from: summary payloads (``docs/schema/summary.v2.json``; version 1 from older devices), either
from a device's own database or from a collector's database (SQLite or PostgreSQL).

A report never sees anything finer than what a device publishes: per period and zone, the
marginals one attribute at a time, through the disclosure rules. From a device database the published payloads
in the outbox are used as they are; periods without one (still open, or long sent and pruned)
are summarised the same way, with the same k.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.config.schema import StoreConfig, default
from kiosk.summary import SummaryContext, build_summary, context_from_config, iso


@dataclass(frozen=True)
class Coverage:
    source: str
    devices: tuple[str, ...]
    periods: int  # distinct (device, period) summaries in the range
    first: str | None
    last: str | None
    period_s: tuple[int, ...]
    gaps: dict = field(default_factory=dict)  # device -> missing seqs (collector databases)
    unsynced: int = 0  # summaries whose clock was not synchronised
    k: tuple[int, ...] = ()
    analysed_s: float | None = None  # seconds covered by analysed frames (None: no summary says, version 1)
    seconds: float = 0.0  # seconds of the periods with a summary
    unwatched: int = 0  # summaries of periods in which no frame was analysed


@dataclass(frozen=True)
class ReportData:
    summaries: tuple[dict, ...]
    coverage: Coverage


def parse_time(text: str | None) -> float | None:
    """ISO 8601 (a date, or a date and time; UTC unless it says otherwise) to epoch seconds."""
    if text is None:
        return None
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


def _coverage(source: str, summaries: list[dict], gaps: dict | None = None) -> Coverage:
    starts = sorted(s["period_start"] for s in summaries)
    covered = [s for s in summaries if isinstance(s.get("coverage"), dict)]
    period_s = sorted({int(parse_time(s["period_end"]) - parse_time(s["period_start"])) for s in summaries})
    return Coverage(
        source=source,
        devices=tuple(sorted({s["device_id"] for s in summaries})),
        periods=len(summaries),
        first=starts[0] if starts else None,
        last=starts[-1] if starts else None,
        period_s=tuple(period_s),
        gaps={d: tuple(m) for d, m in (gaps or {}).items() if m},
        unsynced=sum(not s.get("clock_synced", True) for s in summaries),
        k=tuple(sorted({int(s["k"]) for s in summaries})),
        analysed_s=round(sum(s["coverage"]["analysed_s"] for s in covered), 1) if covered else None,
        seconds=sum(parse_time(s["period_end"]) - parse_time(s["period_start"]) for s in summaries),
        unwatched=sum(s["coverage"]["frames"] == 0 for s in covered),
    )


def _infer_period_s(starts: list[int]) -> int:
    """The aggregation period of a device database: the greatest common divisor of the gaps between
    period starts that divides a day (300 s when there is a single period)."""
    g = 0
    for a, b in zip(starts, starts[1:]):
        g = math.gcd(g, b - a)
    if g <= 0:
        return 300
    while 86400 % g:
        g -= 1
    return g


def from_device_db(
    path: str | Path,
    *,
    since: float | None = None,
    until: float | None = None,
    k: int | None = None,
    period_s: int | None = None,
    device_id: str = "device",
    store_id: str = "store",
    config=None,
) -> ReportData:
    """Summaries of a device database: its published payloads, and for the other periods the same
    summary built again (with ``config``'s zones, labels and bands when given, else the database's)."""
    from kiosk.store.db import open_db

    if not Path(path).exists():
        raise FileNotFoundError(f"no database at {path}")
    db = open_db(path)
    try:
        starts = sorted(
            int(r[0])
            for r in db.execute(
                "SELECT period_start FROM aggregates UNION SELECT period_start FROM occupancy "
                "UNION SELECT period_start FROM coverage"
            ).fetchall()
        )
        period = period_s or _infer_period_s(starts)
        lo = -math.inf if since is None else since
        hi = math.inf if until is None else until
        published = {}
        for (payload,) in db.execute("SELECT payload FROM outbox").fetchall():
            msg = json.loads(payload)
            if isinstance(msg, dict) and msg.get("schema") == "kiosk.summary":
                published[int(parse_time(msg["period_start"]))] = msg
        newest = published[max(published)] if published else None
        if newest and device_id == "device" and store_id == "store":  # no config given: the ids it published
            device_id, store_id = newest["device_id"], newest["store_id"]
        if k is None:  # no config given: the k it published with, else the default
            k = int(newest["k"]) if newest else default(StoreConfig, "k_anonymity")
        # the keys of every summary built here come from the whole database, so they are the same in each
        zones = tuple(
            r[0]
            for r in db.execute("SELECT zone FROM aggregates UNION SELECT zone FROM occupancy ORDER BY 1").fetchall()
        )
        labels = tuple(r[0] for r in db.execute("SELECT DISTINCT content FROM aggregates ORDER BY 1").fetchall())
        queues = tuple(r[0] for r in db.execute("SELECT DISTINCT zone FROM occupancy ORDER BY 1").fetchall())
        ctx = SummaryContext(
            device_id=device_id,
            store_id=store_id,
            period_s=period,
            k=k,
            models={},
            queue_zones=queues,
            zones=zones,
            content_labels=labels,
        )
        if config is not None:  # the config's zones first, then any other zone the database holds
            base = context_from_config(config, {}, period_s=period)
            configured = base.zones if config.zones else ()  # not the implicit whole-frame zone
            ctx = dataclasses.replace(
                base,
                device_id=device_id,
                store_id=store_id,
                k=k,
                zones=configured + tuple(z for z in zones if z not in configured),
                content_labels=base.content_labels + tuple(c for c in labels if c not in base.content_labels),
                queue_zones=base.queue_zones + tuple(z for z in queues if z not in base.queue_zones),
            )
        summaries = []
        for p in sorted(set(starts) | set(published)):
            if not lo <= p < hi:
                continue
            msg = published.get(p) or build_summary(db, ctx, p, seq=0, dropped=0, clock_synced=True)
            summaries.append(msg)
    finally:
        db.conn.close()
    return ReportData(tuple(summaries), _coverage(f"device database {path}", summaries))


def from_collector(
    target: str | Path,
    *,
    since: float | None = None,
    until: float | None = None,
    device_id: str | None = None,
    store_id: str | None = None,
) -> ReportData:
    from kiosk.fleet.database import CollectorStore, is_postgres

    if not is_postgres(target) and not Path(target).exists():
        raise FileNotFoundError(f"no database at {target}")
    store = CollectorStore(target)
    try:
        summaries = store.summaries(
            device_id=device_id,
            store_id=store_id,
            since=None if since is None else iso(since),
            until=None if until is None else iso(until),
        )
        devices = sorted({s["device_id"] for s in summaries})
        gaps = {g.device_id: g.missing for g in store.gaps(devices)}
    finally:
        store.close()
    name = "collector database " + (str(target).split("@")[-1] if is_postgres(target) else str(target))
    return ReportData(tuple(summaries), _coverage(name, summaries, gaps))


def is_collector_db(target: str | Path) -> bool:
    """A collector database (a summaries table) rather than a device database (aggregates)."""
    from kiosk.fleet.database import is_postgres

    if is_postgres(target):
        return True
    import sqlite3

    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    return "summaries" in names and "aggregates" not in names
