"""The versioned per-period summary payload (``docs/schema/summary.v2.json``).

Built from the raw sums of :func:`kiosk.store.kanon.read_sums`, through the disclosure rules of
:mod:`kiosk.disclosure`: per zone, the total and its margins one attribute at a time (no
cross-tabulation finer than that leaves the device), every count 0, at least k or ``null``, no
suppressed count recoverable from the others, the same keys in every summary.

Version 2 (from version 1): complementary suppression inside every margin; every configured zone
and every category always present (``null`` when suppressed, never absent); ``dominant_emotion``
and ``first_reaction`` gain ``none`` (visits without a usable emotion) so that they sum to the
visits; ``content`` lists the configured labels and ``other``; dwell and attention histograms
with neighbouring bins merged instead of holes (``bins_s`` lists the merged bins' lower edges),
beside their sums and means; the queue's occupancy only when its peak is 0 or at least k;
``attentive_min_s`` says which attention bins the attentive visits are; ``coverage`` says how
much of the period was watched (frames analysed, the seconds they cover, camera changes), so
that a period with the camera off is not read as "nobody came".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlite_utils

from kiosk.config.vocabulary import ATTENTION_BINS, DEFAULT_AGE_BANDS, DWELL_BINS, EMOTIONS
from kiosk.disclosure import Protected, all_hidden, merge_bins, protect_count, protect_margin
from kiosk.store.kanon import VISIT_FIELDS, read_coverage, read_occupancy, read_sums
from kiosk.visits import age_band_labels

SCHEMA_NAME = "kiosk.summary"
SCHEMA_VERSION = 2
GENDER_KEYS = ("female", "male", "unknown")
OTHER_CONTENT = "other"


@dataclass(frozen=True)
class SummaryContext:
    device_id: str
    store_id: str
    period_s: int
    k: int
    models: dict  # model id -> short sha256
    queue_zones: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()  # every zone listed in every summary; () lists the zones found in the data
    content_labels: tuple[str, ...] = ()  # the content keys (and "other"); () uses the labels found in the data
    age_bands: tuple[int, ...] = DEFAULT_AGE_BANDS
    attentive_min_s: float = 1.0  # visits.min_attention_s


def context_from_config(cfg, models: dict, period_s: int | None = None) -> SummaryContext:
    """The summary context of a :class:`kiosk.config.KioskConfig` (one place for every caller)."""
    zones = tuple(z.id for z in cfg.zones) or ("frame",)
    return SummaryContext(
        device_id=cfg.mqtt.device_id,
        store_id=cfg.mqtt.store_id,
        period_s=cfg.store.period_s if period_s is None else period_s,
        k=cfg.store.k_anonymity,
        models=dict(models),
        queue_zones=tuple(z.id for z in cfg.zones if z.type == "queue"),
        zones=zones,
        content_labels=cfg.content.all_labels(),
        age_bands=tuple(cfg.visits.age_bands),
        attentive_min_s=cfg.visits.min_attention_s,
    )


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _keys(fixed: tuple[str, ...], found: set[str], extra: str) -> tuple[str, ...]:
    if not fixed:
        return tuple(sorted(found))
    return fixed if extra in fixed else fixed + (extra,)


def _fold(counts: dict[str, int], keys: tuple[str, ...], into: str) -> dict[str, int]:
    """``counts`` on exactly ``keys``: missing ones 0, unknown ones added to ``into``."""
    out = dict.fromkeys(keys, 0)
    for key, n in counts.items():
        out[key if key in out else into] += n
    return out


def _histogram(
    counts: list[int], bins: tuple[int, ...], visible: bool, k: int, breaks: tuple[int, ...] = ()
) -> tuple[dict, bool]:
    """The published histogram (merged bins, or all null when the zone's visits are hidden) and
    whether the merge kept every break."""
    if not visible:
        return {"bins_s": list(bins), "counts": [None] * len(bins)}, False
    runs, kept = merge_bins(counts, k, breaks)
    return {"bins_s": [bins[a] for a, _ in runs], "counts": [sum(counts[a:b]) for a, b in runs]}, kept


def _time_stats(raw: dict, prefix: str, histogram: dict, visits: int | None) -> dict:
    total = raw[f"{prefix}_sum"] if visits is not None else None
    return {
        "sum": None if total is None else round(total, 2),
        "mean": round(total / visits, 2) if total is not None and visits else None,
        "histogram": histogram,
    }


class _ZoneBuilder:
    def __init__(self, ctx: SummaryContext) -> None:
        self.k = ctx.k
        self.age_keys = age_band_labels(ctx.age_bands) + ("unknown",)
        # the attentive count is the attention bins from its threshold up: published only when the
        # threshold is a bin edge (the config makes sure) and the merge kept it
        self.attn_edge = ctx.attentive_min_s in ATTENTION_BINS or ctx.attentive_min_s <= 0
        self.attn_break = tuple(i for i, lo in enumerate(ATTENTION_BINS) if lo == ctx.attentive_min_s and i > 0)
        self.hidden = 0

    def _count(self, n: int) -> int | None:
        out = protect_count(n, self.k)
        self.hidden += out is None
        return out

    def _margin(self, counts: dict[str, int], visible: bool) -> Protected:
        out = protect_margin(counts, self.k) if visible else all_hidden(counts)
        self.hidden += sum(v is None for v in out.values())
        return out

    def zone(self, zone: str, raw: dict, splits: dict[str, dict[str, int]], content_keys: tuple[str, ...]) -> dict:
        v = raw["visits"]
        visits = self._count(v)
        visible = visits is not None
        dwell, _ = _histogram([raw[f"dwell_h{i}"] for i in range(len(DWELL_BINS))], DWELL_BINS, visible, self.k)
        attention, kept = _histogram(
            [raw[f"attention_h{i}"] for i in range(len(ATTENTION_BINS))],
            ATTENTION_BINS,
            visible,
            self.k,
            self.attn_break,
        )
        self.hidden += 0 if visible else len(DWELL_BINS) + len(ATTENTION_BINS)  # both histograms' bins
        attentive = raw["attentive"] if visible and kept and self.attn_edge else None
        self.hidden += attentive is None
        dominant = {e: raw[f"dominant_{e}"] for e in EMOTIONS}
        dominant["none"] = v - sum(dominant.values())
        first = {e: raw[f"first_{e}"] for e in EMOTIONS}
        first["none"] = v - sum(first.values())
        entry = {
            "zone": zone,
            "visits": visits,
            "passers_by": self._count(raw["passers_by"]),
            "attentive": attentive,
            "dwell_s": _time_stats(raw, "dwell", dwell, visits),
            "attention_s": _time_stats(raw, "attention", attention, visits),
            "dominant_emotion": self._margin(dominant, visible),
            "first_reaction": self._margin(first, visible),
            "age_bands": self._margin(_fold(splits["age_band"], self.age_keys, "unknown"), visible),
            "gender": self._margin(_fold(splits["gender"], GENDER_KEYS, "unknown"), visible),
            "content": self._margin(_fold(splits["content"], content_keys, OTHER_CONTENT), visible),
        }
        return entry

    def queue(self, occ: dict | None) -> dict:
        samples = occ["samples"] if occ else 0
        peak = self._count(occ["peak"] if occ else 0)
        mean = None
        if peak is not None:
            mean = round(occ["total"] / max(1, samples), 2) if occ else 0.0
        return {"samples": samples, "occupancy_mean": mean, "occupancy_peak": peak}


def _empty_raw() -> dict:
    return dict.fromkeys(VISIT_FIELDS + ("passers_by",), 0)


def _no_splits() -> dict[str, dict[str, int]]:
    return {"age_band": {}, "gender": {}, "content": {}}


def build_summary(
    db: sqlite_utils.Database, ctx: SummaryContext, period_start: int, seq: int, dropped: int, clock_synced: bool
) -> dict:
    since, until = period_start, period_start + ctx.period_s
    totals = {c["zone"]: c for c in read_sums(db, group_by=("zone",), since=since, until=until)}
    splits: dict[str, dict[str, dict[str, int]]] = {}
    for attribute in ("age_band", "gender", "content"):
        for c in read_sums(db, group_by=("zone", attribute), since=since, until=until):
            splits.setdefault(c["zone"], _no_splits())[attribute][c[attribute]] = c["visits"]
    occupancy = {o["zone"]: o for o in read_occupancy(db, since=since, until=until)}
    found_labels = {label for s in splits.values() for label in s["content"]}
    content_keys = _keys(ctx.content_labels, found_labels, OTHER_CONTENT)
    builder = _ZoneBuilder(ctx)
    listed = list(ctx.zones) or sorted(set(totals) | set(occupancy))
    # data of a zone no longer configured, listed only when it has something to say beyond that
    # someone was there (a visit or passer-by count that is published and not zero)
    extra = [
        z
        for z in sorted(set(totals) - set(listed))
        if protect_count(totals[z]["visits"], ctx.k) or protect_count(totals[z]["passers_by"], ctx.k)
    ]
    entries = []
    for zone in listed + extra:
        entry = builder.zone(zone, totals.get(zone) or _empty_raw(), splits.get(zone, _no_splits()), content_keys)
        if zone in ctx.queue_zones or ((not ctx.zones or zone in extra) and zone in occupancy):
            entry["queue"] = builder.queue(occupancy.get(zone))
        entries.append(entry)
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
        "attentive_min_s": ctx.attentive_min_s,
        "coverage": read_coverage(db, since=since, until=until),
        "suppressed_cells": builder.hidden,
        "dropped_summaries": dropped,
        "zones": entries,
    }
