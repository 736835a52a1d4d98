"""The tables behind every chart, computed from summary payloads only.

A figure suppressed in a summary (fewer than k people, or hidden beside one) is never turned into
a number: totals add the published figures and say in how many period cells a figure was
suppressed (``*_suppressed``); per-period tables keep it as ``None`` (written ``suppressed``).
So every figure of a report is a sum of published figures, each 0 or at least k: the report
inherits the summaries' protection and adds no equality an attacker could not write from them. Medians are
estimated from the published histograms (linear within a bin; the open last bin gives its lower
bound).
"""

from __future__ import annotations

from collections import defaultdict

from kiosk.config.vocabulary import EMOTIONS


def _keyed(summaries) -> list[tuple[dict, str, dict]]:
    """(summary, zone key, zone figures); zones are keyed device/zone when there are several devices."""
    many = len({s["device_id"] for s in summaries}) > 1
    return [(s, f"{s['device_id']}/{z['zone']}" if many else z["zone"], z) for s in summaries for z in s["zones"]]


def _cells(summaries) -> list[tuple[str, str, dict]]:
    """(period_start, zone key, zone figures)."""
    return [(s["period_start"], key, z) for s, key, z in _keyed(summaries)]


def histogram_median(bins: list[float], counts: list[int]) -> float | None:
    total = sum(counts)
    if total == 0:
        return None
    half, seen = total / 2.0, 0
    for i, c in enumerate(counts):
        if c and seen + c >= half:
            lo = bins[i]
            if i + 1 == len(bins):
                return float(lo)
            hi = bins[i + 1]
            return round(lo + (hi - lo) * (half - seen) / c, 2)
        seen += c
    return float(bins[-1])


def _complete(stats: dict | None) -> tuple[list, list] | None:
    """(bins, counts) of a published histogram with no hidden bin, else None."""
    if not stats or any(n is None for n in stats["histogram"]["counts"]):
        return None
    return list(stats["histogram"]["bins_s"]), list(stats["histogram"]["counts"])


def combine_histograms(histograms: list[tuple[list, list]]) -> tuple[list, list] | None:
    """Histograms whose bins were merged differently, added on the bins they all have: the edges
    common to every one (a merged bin is never split, so the sum is exact)."""
    if not histograms:
        return None
    common = sorted(set.intersection(*(set(bins) for bins, _ in histograms)))
    total = [0] * len(common)
    for bins, counts in histograms:
        for lo, n in zip(bins, counts):
            total[max(i for i, edge in enumerate(common) if edge <= lo)] += n
    return common, total


def aggregate(cells: list[dict]) -> dict:
    """Totals over zone cells: published figures added, suppressed ones counted, never estimated.

    Each ratio is taken over the cells that publish both of its terms (the attentive share over
    the visits of cells whose attentive count is published, a mean dwell over the visits of cells
    whose dwell sum is published), so a suppressed figure neither counts as zero nor biases it."""
    out = {
        "cells": len(cells),
        "visits": 0,
        "visits_suppressed": 0,
        "attentive": 0,
        "attentive_suppressed": 0,
        "passers_by": 0,
        "passers_by_suppressed": 0,
        "dwell_sum_s": 0.0,
        "attention_sum_s": 0.0,
    }
    dwell_hs: list = []
    attention_hs: list = []
    dominant = dict.fromkeys(EMOTIONS, 0)
    first = dict.fromkeys(EMOTIONS, 0)
    suppressed = {"dominant": dict.fromkeys(EMOTIONS, 0), "first_reaction": dict.fromkeys(EMOTIONS, 0)}
    base = {"attentive": 0, "dwell": 0, "attention": 0}  # visits behind each ratio
    base_emotion = dict.fromkeys(EMOTIONS, 0)
    for z in cells:
        if z["passers_by"] is None:
            out["passers_by_suppressed"] += 1
        else:
            out["passers_by"] += z["passers_by"]
        if z["visits"] is None:
            out["visits_suppressed"] += 1
            continue
        v = z["visits"]
        out["visits"] += v
        if z.get("attentive") is None:
            out["attentive_suppressed"] += 1
        else:
            out["attentive"] += z["attentive"]
            base["attentive"] += v
        for name, key, b in (("dwell_s", "dwell_sum_s", "dwell"), ("attention_s", "attention_sum_s", "attention")):
            stats = z.get(name)
            if stats and stats.get("sum") is not None:
                out[key] += stats["sum"]
                base[b] += v
        for acc, name in ((dwell_hs, "dwell_s"), (attention_hs, "attention_s")):
            h = _complete(z.get(name))
            if h is not None:
                acc.append(h)
        for kind, counts, acc in (
            ("dominant", z.get("dominant_emotion"), dominant),
            ("first_reaction", z.get("first_reaction"), first),
        ):
            for e in EMOTIONS:
                n = (counts or {}).get(e, 0)
                if n is None:
                    suppressed[kind][e] += 1
                else:
                    acc[e] += n
                    if kind == "dominant":
                        base_emotion[e] += v
    out["attentive_share"] = round(out["attentive"] / base["attentive"], 3) if base["attentive"] else None
    out["dwell_mean_s"] = round(out["dwell_sum_s"] / base["dwell"], 2) if base["dwell"] else None
    for key, hs in (("dwell_median_s", dwell_hs), ("attention_median_s", attention_hs)):
        combined = combine_histograms(hs)
        out[key] = histogram_median(*combined) if combined else None
    out["dwell_sum_s"] = round(out["dwell_sum_s"], 2)
    out["attention_sum_s"] = round(out["attention_sum_s"], 2)
    out["dominant"] = dominant
    out["first_reaction"] = first
    out["emotion_suppressed"] = suppressed
    out["emotion_base"] = base_emotion
    return out


def _totals_by_zone(summaries) -> list[tuple[str, dict]]:
    """(zone key, :func:`aggregate` of its cells), in zone order."""
    by_zone: dict[str, list] = defaultdict(list)
    for _, key, z in _cells(summaries):
        by_zone[key].append(z)
    return [(key, aggregate(by_zone[key])) for key in sorted(by_zone)]


def interest(summaries) -> list[dict]:
    rows = []
    for key, a in _totals_by_zone(summaries):
        rows.append(
            {
                "zone": key,
                "periods": a["cells"],
                "visits": a["visits"],
                "visits_suppressed": a["visits_suppressed"],
                "attentive": a["attentive"],
                "attentive_suppressed": a["attentive_suppressed"],
                "attentive_share": a["attentive_share"],
                "passers_by": a["passers_by"],
                "passers_by_suppressed": a["passers_by_suppressed"],
                "dwell_mean_s": a["dwell_mean_s"],
                "dwell_median_s": a["dwell_median_s"],
                "attention_median_s": a["attention_median_s"],
            }
        )
    return rows


def reactions(summaries) -> list[dict]:
    rows = []
    for key, a in _totals_by_zone(summaries):
        for kind, counts in (("dominant", a["dominant"]), ("first_reaction", a["first_reaction"])):
            for e in EMOTIONS:
                rows.append(
                    {
                        "zone": key,
                        "kind": kind,
                        "emotion": e,
                        "visits": counts[e],
                        "suppressed": a["emotion_suppressed"][kind][e],
                    }
                )
    return rows


def splits(summaries, attribute: str) -> list[dict]:
    """``attribute``: age_bands or gender. Visits per value, one attribute at a time."""
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for _, key, z in _cells(summaries):
        for value, n in (z.get(attribute) or {}).items():
            cell = totals[(key, value)]
            if n is None:
                cell[1] += 1
            else:
                cell[0] += n
    return [
        {"zone": k, "attribute": attribute, "value": v, "visits": n, "suppressed": s}
        for (k, v), (n, s) in sorted(totals.items())
    ]


def timeline(summaries) -> list[dict]:
    """Per period and zone: visits by emotion, content, and the seconds watched (None: not reported)."""
    rows = []
    for s, key, z in _keyed(summaries):
        period, cov = s["period_start"], s.get("coverage")
        content = z.get("content") or {}
        labels = sorted(label for label, n in content.items() if n)
        if any(n is None for n in content.values()) and z["visits"] is not None:
            labels.append("(suppressed)")
        row = {
            "period_start": period,
            "zone": key,
            "visits": z["visits"],
            "passers_by": z["passers_by"],
            "content": " + ".join(labels),
            "watched_s": cov["analysed_s"] if isinstance(cov, dict) else None,
        }
        dominant = z.get("dominant_emotion")
        for e in EMOTIONS:
            row[e] = None if dominant is None else dominant.get(e, 0)
        rows.append(row)
    return sorted(rows, key=lambda r: (r["zone"], r["period_start"]))


def queues(summaries) -> list[dict]:
    rows = []
    for period, key, z in _cells(summaries):
        q = z.get("queue")
        if q is None:
            continue
        waiting = (z.get("dwell_s") or {}).get("mean") if z["visits"] is not None else None
        rows.append(
            {
                "period_start": period,
                "zone": key,
                "samples": q["samples"],
                "occupancy_mean": q["occupancy_mean"],
                "occupancy_peak": q["occupancy_peak"],
                "waiting_mean_s": waiting,
            }
        )
    return sorted(rows, key=lambda r: (r["zone"], r["period_start"]))


def _only_label(z: dict, label: str) -> bool:
    """Every visit of this cell was under ``label`` (no other label has a visit or a suppressed count)."""
    content = z.get("content") or {}
    others = [n for other, n in content.items() if other != label]
    return content.get(label) not in (None, 0) and all(n == 0 for n in others)


def compare(summaries, kind: str, a: str, b: str) -> list[dict]:
    """Two zones, or two content labels side by side. A content label's figures come from the
    period cells in which every visit was under that label (the device publishes no finer split)."""
    rows = []
    cells = _cells(summaries)
    for name in (a, b):
        if kind == "zone":
            chosen = [z for _, key, z in cells if key == name]
        else:
            chosen = [z for _, _, z in cells if _only_label(z, name)]
        agg = aggregate(chosen)
        v = agg["visits"]
        row = {
            "compare": kind,
            "name": name,
            "cells": agg["cells"],
            "visits": v,
            "visits_suppressed": agg["visits_suppressed"],
            "attentive_share": agg["attentive_share"],
            "dwell_median_s": agg["dwell_median_s"],
            "attention_median_s": agg["attention_median_s"],
        }
        for e in EMOTIONS:
            base = agg["emotion_base"][e]
            row[f"share_{e}"] = round(agg["dominant"][e] / base, 3) if base else None
        rows.append(row)
    return rows


def _audience(cells: list[dict]) -> dict:
    """Opportunities to see, viewers and conversion over zone cells (docs/audience.md). Each ratio is
    taken over the cells that publish all of its terms; a cell with a suppressed term is counted
    in ``cells_suppressed`` and adds nothing."""
    ots = visits = viewers = ots_viewers = hidden = viewers_hidden = 0
    for z in cells:
        if z["visits"] is None or z["passers_by"] is None:
            hidden += 1
            continue
        o = z["visits"] + z["passers_by"]
        ots += o
        visits += z["visits"]
        if z.get("attentive") is None:
            viewers_hidden += 1
        else:
            viewers += z["attentive"]
            ots_viewers += o
    return {
        "cells": len(cells),
        "cells_suppressed": hidden,
        "opportunities": ots,
        "visits": visits,
        "viewers": viewers,
        "viewers_suppressed": viewers_hidden,
        "conversion": round(visits / ots, 3) if ots else None,
        "viewer_rate": round(viewers / ots_viewers, 3) if ots_viewers else None,
    }


def audience(summaries) -> list[dict]:
    """Per zone: opportunities to see (visits + passers-by), viewers (attentive visits), conversion
    (visits per opportunity), viewer rate (viewers per opportunity), median dwell and attention."""
    by_zone: dict[str, list] = defaultdict(list)
    for _, key, z in _cells(summaries):
        by_zone[key].append(z)
    rows = []
    for key in sorted(by_zone):
        medians = aggregate(by_zone[key])
        rows.append(
            {
                "zone": key,
                **_audience(by_zone[key]),
                "dwell_median_s": medians["dwell_median_s"],
                "attention_median_s": medians["attention_median_s"],
            }
        )
    return rows


def distributions(summaries) -> list[dict]:
    """Per zone, the dwell and the attention histograms of the visits, added over the periods that
    publish the whole histogram (``cells_incomplete``: periods with a hidden bin, left out)."""
    rows = []
    by_zone: dict[str, list] = defaultdict(list)
    for _, key, z in _cells(summaries):
        by_zone[key].append(z)
    for key in sorted(by_zone):
        for measure in ("dwell_s", "attention_s"):
            complete, incomplete = [], 0
            for z in by_zone[key]:
                if z["visits"] == 0:
                    continue
                h = _complete(z.get(measure)) if z["visits"] is not None else None
                if h is None:
                    incomplete += 1
                else:
                    complete.append(h)
            combined = combine_histograms(complete)
            if combined is None:
                continue
            bins, counts = combined
            total = sum(counts)
            for i, (lo, n) in enumerate(zip(bins, counts)):
                rows.append(
                    {
                        "zone": key,
                        "measure": measure.removesuffix("_s"),
                        "from_s": lo,
                        "to_s": bins[i + 1] if i + 1 < len(bins) else None,
                        "visits": n,
                        "share": round(n / total, 3) if total else None,
                        "cells_incomplete": incomplete,
                    }
                )
    return rows


def audience_by_content(summaries) -> list[dict]:
    """Per content label (proof of play): the visits published under it, and the audience measures of
    the periods in which every visit of a zone was under it (the device publishes no finer split)."""
    labels = sorted({label for _, _, z in _cells(summaries) for label in (z.get("content") or {})})
    rows = []
    for label in labels:
        shown = hidden = 0
        for _, _, z in _cells(summaries):
            n = (z.get("content") or {}).get(label, 0)
            if n is None:
                hidden += 1
            else:
                shown += n
        whole = _audience([z for _, _, z in _cells(summaries) if _only_label(z, label)])
        rows.append(
            {
                "content": label,
                "visits": shown,
                "visits_suppressed": hidden,
                "whole_cells": whole["cells"],
                "opportunities": whole["opportunities"],
                "viewers": whole["viewers"],
                "conversion": whole["conversion"],
                "viewer_rate": whole["viewer_rate"],
            }
        )
    return rows


def coverage_rows(coverage) -> list[dict]:
    return [
        {"item": "source", "value": coverage.source},
        {"item": "devices", "value": ", ".join(coverage.devices) or "none"},
        {"item": "period summaries", "value": coverage.periods},
        {"item": "first period", "value": coverage.first or "none"},
        {"item": "last period", "value": coverage.last or "none"},
        {"item": "period length (s)", "value": ", ".join(map(str, coverage.period_s)) or "none"},
        {"item": "k (smallest count shown)", "value": ", ".join(map(str, coverage.k)) or "none"},
        {
            "item": "missing summaries (seq gaps)",
            "value": "; ".join(f"{d}: {len(m)} ({_ranges(m)})" for d, m in coverage.gaps.items()) or "none",
        },
        {"item": "periods with an unsynchronised clock", "value": coverage.unsynced},
        {
            "item": "time watched (frames analysed)",
            "value": "not reported (version 1 summaries)"
            if coverage.analysed_s is None
            else f"{coverage.analysed_s:.0f} s of {coverage.seconds:.0f} s ({100 * coverage.analysed_s / max(1.0, coverage.seconds):.0f}%)",
        },
        {"item": "periods with no frame analysed (camera off: a gap, not zero visits)", "value": coverage.unwatched},
    ]


def _ranges(seqs) -> str:
    out, start, prev = [], None, None
    for s in list(seqs) + [None]:
        if start is None:
            start = prev = s
        elif s is not None and s == prev + 1:
            prev = s
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = s
    return ", ".join(out[:10]) + (" ..." if len(out) > 10 else "")
