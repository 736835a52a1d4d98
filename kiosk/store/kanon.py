"""The one way to read aggregates: grouped, then k-anonymity suppressed.

Every reader (summary builder, reports, CLI) calls :func:`read_aggregates`.
It sums the stored counters over the requested grouping, then, in each
resulting cell, hides every visit-derived figure when the cell holds fewer
than ``k`` visits, and the passer-by count when it holds fewer than ``k``
passers-by. Hidden figures are ``None`` (shown as suppressed, never as zero),
and the result says how many cells were suppressed. A count of zero is not
suppressed: it describes nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from kiosk.aggregate import ATTENTION_BINS, DWELL_BINS
from kiosk.store.aggregates import KEY_COLUMNS
from kiosk.vision.types import EMOTIONS

VISIT_FIELDS = (
    ("visits", "attentive", "dwell_sum", "attention_sum")
    + tuple(f"dwell_h{i}" for i in range(len(DWELL_BINS)))
    + tuple(f"attention_h{i}" for i in range(len(ATTENTION_BINS)))
    + tuple(f"dominant_{e}" for e in EMOTIONS)
    + tuple(f"first_{e}" for e in EMOTIONS)
)


@dataclass(frozen=True)
class KAnonResult:
    k: int
    group_by: tuple[str, ...]
    cells: tuple[dict, ...]
    suppressed_cells: int  # cells in which at least one figure was hidden

    @property
    def total_cells(self) -> int:
        return len(self.cells)


def period_filter(since: object | None, until: object | None) -> tuple[list[str], list]:
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


def read_aggregates(
    db: sqlite_utils.Database,
    *,
    k: int = 5,
    group_by: tuple[str, ...] = ("period_start", "zone"),
    since: int | None = None,
    until: int | None = None,
    zones: tuple[str, ...] | None = None,
) -> KAnonResult:
    """Aggregates summed over ``group_by`` (a subset of period_start, zone, content, age_band,
    gender) for periods in [since, until), with small cells suppressed."""
    if k < 1:
        raise ValueError("k must be at least 1")
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
    cells, suppressed = [], 0
    for row in cursor.fetchall():
        cell = dict(zip(names, row))
        if cell["visits"] is None:  # no rows at all (ungrouped query on an empty table)
            continue
        hidden = False
        if 0 < cell["visits"] < k:
            for f in VISIT_FIELDS:
                cell[f] = None
            hidden = True
        if 0 < cell["passers_by"] < k:
            cell["passers_by"] = None
            hidden = True
        cell["suppressed"] = hidden
        suppressed += hidden
        cells.append(cell)
    return KAnonResult(k=k, group_by=tuple(group_by), cells=tuple(cells), suppressed_cells=suppressed)


def read_occupancy(db: sqlite_utils.Database, *, since: int | None = None, until: int | None = None) -> tuple[dict, ...]:
    """Queue occupancy per (period, zone): head counts over time, with no attribute of anyone."""
    where, params = period_filter(since, until)
    sql = "SELECT period_start, zone, samples, total, peak FROM occupancy"
    if where:
        sql += " WHERE " + " AND ".join(where)
    cursor = db.execute(sql + " ORDER BY period_start, zone", params)
    names = [d[0] for d in cursor.description]
    return tuple(dict(zip(names, r)) for r in cursor.fetchall())
