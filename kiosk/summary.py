"""The versioned per-period summary payload (``docs/schema/summary.v1.json``).

Built only from :func:`kiosk.store.kanon.read_aggregates`: per zone, the
k-suppressed marginals, one attribute at a time; no cross-tabulation finer
than that leaves the device. Suppressed figures are ``null``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlite_utils

from kiosk.aggregate import ATTENTION_BINS, DWELL_BINS
from kiosk.store.kanon import read_aggregates, read_occupancy
from kiosk.vision.types import EMOTIONS

SCHEMA_NAME = "kiosk.summary"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SummaryContext:
    device_id: str
    store_id: str
    period_s: int
    k: int
    models: dict  # model id -> short sha256
    queue_zones: tuple[str, ...] = ()


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _stats(cell: dict, prefix: str, bins: tuple[int, ...]) -> dict | None:
    v = cell["visits"]
    if v is None:
        return None
    total = cell[f"{prefix}_sum"]
    return {
        "sum": round(total, 2),
        "mean": round(total / v, 2) if v else None,
        "histogram": {"bins_s": list(bins), "counts": [cell[f"{prefix}_h{i}"] for i in range(len(bins))]},
    }


def build_summary(db: sqlite_utils.Database, ctx: SummaryContext, period_start: int, seq: int, dropped: int,
                  clock_synced: bool) -> dict:
    since, until = period_start, period_start + ctx.period_s
    zones: dict[str, dict] = {}
    suppressed = 0
    base = read_aggregates(db, k=ctx.k, group_by=("zone",), since=since, until=until)
    suppressed += base.suppressed_cells
    for c in base.cells:
        zones[c["zone"]] = {
            "zone": c["zone"],
            "visits": c["visits"],
            "passers_by": c["passers_by"],
            "attentive": c["attentive"],
            "dwell_s": _stats(c, "dwell", DWELL_BINS),
            "attention_s": _stats(c, "attention", ATTENTION_BINS),
            "dominant_emotion": None if c["visits"] is None else {e: c[f"dominant_{e}"] for e in EMOTIONS},
            "first_reaction": None if c["visits"] is None else {e: c[f"first_{e}"] for e in EMOTIONS},
            "age_bands": {}, "gender": {}, "content": {},
        }
    for attribute, key in (("age_band", "age_bands"), ("gender", "gender"), ("content", "content")):
        split = read_aggregates(db, k=ctx.k, group_by=("zone", attribute), since=since, until=until)
        suppressed += split.suppressed_cells
        for c in split.cells:
            zones[c["zone"]][key][c[attribute]] = c["visits"]
    for occ in read_occupancy(db, since=since, until=until):
        z = zones.setdefault(occ["zone"], {"zone": occ["zone"], "visits": 0, "passers_by": 0, "attentive": 0,
                                           "dwell_s": None, "attention_s": None, "dominant_emotion": None,
                                           "first_reaction": None, "age_bands": {}, "gender": {}, "content": {}})
        z["queue"] = {"samples": occ["samples"], "occupancy_mean": round(occ["total"] / max(1, occ["samples"]), 2),
                      "occupancy_peak": occ["peak"]}
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "device_id": ctx.device_id,
        "store_id": ctx.store_id,
        "seq": seq,
        "period_start": iso(since),
        "period_end": iso(until),
        "clock_synced": clock_synced,
        "models": dict(ctx.models),
        "k": ctx.k,
        "suppressed_cells": suppressed,
        "dropped_summaries": dropped,
        "zones": [zones[z] for z in sorted(zones)],
    }
