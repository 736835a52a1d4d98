"""Reading aggregates: summed over a grouping (:func:`read_sums`), and, for local readers, with
small cells hidden (:func:`read_aggregates`).

What is published goes through the summary builder, which applies the full disclosure control of
:mod:`kiosk.disclosure` (complementary suppression, fixed keys) to the raw sums; this module only
adds up counters. :func:`read_aggregates` hides every visit-derived figure of a cell with 1 to
k-1 visits and the passer-by count of a cell with 1 to k-1 passers-by (``None``, never zero);
it is the primary rule alone, for a person reading their own device's database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

from kiosk.config.schema import StoreConfig, default
from kiosk.disclosure import check_k, protect_count
from kiosk.store.aggregates import COUNT_COLUMNS, KEY_COLUMNS

VISIT_FIELDS = tuple(c for c in COUNT_COLUMNS if c != "passers_by")  # what a visit adds (a passer-by: one count)


@dataclass(frozen=True)
class KAnonResult:
    k: int
    group_by: tuple[str, ...]
    cells: tuple[dict[str, Any], ...]
    suppressed_cells: int  # cells in which at least one figure was hidden

    @property
    def total_cells(self) -> int:
        return len(self.cells)


def period_filter(since: object | None, until: object | None) -> tuple[list[str], list[object]]:
    """SQL conditions (``?`` placeholders) and parameters selecting rows whose ``period_start``
    is in [since, until); either bound may be None. The device store passes epoch seconds, the
    collector's store ISO 8601 strings."""
    where, params = [], []
    if since is not None:
        where.append("period_start >= ?")
        params.append(since)
    if until is not None:
        where.append("period_start < ?")
        params.append(until)
    return where, params


def read_sums(
    db: sqlite_utils.Database,
    *,
    group_by: tuple[str, ...] = ("period_start", "zone"),
    since: int | None = None,
    until: int | None = None,
    zones: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """The stored counters summed over ``group_by`` (a subset of period_start, zone, content,
    age_band, gender) for periods in [since, until): raw, nothing suppressed."""
    bad = [g for g in group_by if g not in KEY_COLUMNS]
    if bad:
        raise ValueError(f"cannot group by {bad}: choose from {KEY_COLUMNS}")
    where, params = period_filter(since, until)
    if zones:
        where.append(f"zone IN ({', '.join('?' * len(zones))})")
        params.extend(zones)
    sums = ", ".join(f"SUM({f}) AS {f}" for f in VISIT_FIELDS + ("passers_by",))
    cols = ", ".join(group_by)
    sql = f"SELECT {cols + ', ' if cols else ''}{sums} FROM aggregates"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if group_by:
        sql += f" GROUP BY {cols} ORDER BY {cols}"
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    return [r for r in rows if r["visits"] is not None]  # no rows at all (ungrouped query on an empty table)


def read_aggregates(
    db: sqlite_utils.Database,
    *,
    k: int = default(StoreConfig, "k_anonymity"),
    group_by: tuple[str, ...] = ("period_start", "zone"),
    since: int | None = None,
    until: int | None = None,
    zones: tuple[str, ...] | None = None,
) -> KAnonResult:
    """:func:`read_sums` with the primary rule applied to each cell (for local reading only)."""
    check_k(k)
    cells, suppressed = [], 0
    for cell in read_sums(db, group_by=group_by, since=since, until=until, zones=zones):
        hidden = False
        if protect_count(cell["visits"], k) is None:
            for f in VISIT_FIELDS:
                cell[f] = None
            hidden = True
        if protect_count(cell["passers_by"], k) is None:
            cell["passers_by"] = None
            hidden = True
        cell["suppressed"] = hidden
        suppressed += hidden
        cells.append(cell)
    return KAnonResult(k=k, group_by=tuple(group_by), cells=tuple(cells), suppressed_cells=suppressed)


def read_occupancy(
    db: sqlite_utils.Database, *, since: int | None = None, until: int | None = None
) -> tuple[dict[str, Any], ...]:
    """Queue occupancy per (period, zone): head counts over time, with no attribute of anyone."""
    where, params = period_filter(since, until)
    sql = "SELECT period_start, zone, samples, total, peak FROM occupancy"
    if where:
        sql += " WHERE " + " AND ".join(where)
    cursor = db.execute(sql + " ORDER BY period_start, zone", params)
    names = [d[0] for d in cursor.description]
    return tuple(dict(zip(names, r)) for r in cursor.fetchall())


def read_coverage(
    db: sqlite_utils.Database, *, since: int | None = None, until: int | None = None
) -> dict[str, Any] | None:
    """Frames analysed, the seconds they cover and camera changes, summed over [since, until); None
    when nothing was recorded (a database from before coverage, or a tool that does not record it)."""
    where, params = period_filter(since, until)
    sql = "SELECT COUNT(*), SUM(frames), SUM(analysed_s), SUM(camera_changes) FROM coverage"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows, frames, seconds, changes = db.execute(sql, params).fetchone()
    if not rows:
        return None
    return {
        "frames": int(frames or 0),
        "analysed_s": round(float(seconds or 0.0), 1),
        "camera_changes": int(changes or 0),
    }
