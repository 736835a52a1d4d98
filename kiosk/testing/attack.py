"""An attacker on published summaries: what can be learnt about the suppressed counts.

It knows every published figure of a summary and every equality the payload implies:

- each margin of a zone (age bands, gender, content, dominant emotion, first reaction, dwell and
  attention histograms) sums to the zone's visits;
- the attentive visits are the attention bins from ``attentive_min_s`` up;
- a published dwell or attention sum (or mean) lies between the bins' lower and upper bounds
  times their counts;
- a visit's attention is at most its dwell, so the visits with attention of at least x are at
  most those with dwell of at least x, for every edge x the two histograms share;
- a suppressed zone total is 1..k-1 (zero is published), so its margins' cells are 0..k-1.

For every suppressed cell, and for every fixed bin inside a merged histogram bin, it computes the
integer range it can take (an integer program per zone, HiGHS through SciPy). A **leak** is: a
published count of 1..k-1; a suppressed cell whose range is one value; a fixed bin inside a
merged one pinned to 1..k-1; a margin whose suppressed cells together hold 1..k-1 people (the
total minus the published cells says how many). Version 1 payloads (absent keys, null objects) are
read with the same rules, so the before/after figures come from one attacker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MARGINS = ("age_bands", "gender", "content", "dominant_emotion", "first_reaction")
# the fixed bins of both histograms (lower bounds, seconds); a published histogram merges neighbours
BASE_BINS = {"dwell_s": (0, 5, 10, 20, 30, 60, 120, 300), "attention_s": (0, 1, 2, 5, 10, 20, 30, 60)}
EMOTIONS7 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@dataclass(frozen=True)
class Leak:
    zone: str
    where: str  # e.g. "gender.unknown", "visits", "age_bands (hidden total)"
    kind: str  # "small count", "pinned", "small hidden total"
    value: int


def _margins(z: dict) -> dict[str, dict[str, int | None]]:
    """The categorical margins of a zone entry as name -> {key: count or None}."""
    out = {}
    for name in MARGINS:
        m = z.get(name)
        if isinstance(m, dict):
            out[name] = dict(m)
            if name in ("dominant_emotion", "first_reaction") and "none" not in m:
                out[name]["none"] = None  # version 1: visits without an emotion are not published, unknown
    return out


def _histograms(z: dict) -> dict[str, list[tuple[list[int], int | None]]]:
    """Each histogram as its published bins, each (the fixed base bins it spans, its count)."""
    out = {}
    for name in ("dwell_s", "attention_s"):
        stats = z.get(name)
        if not isinstance(stats, dict):
            continue
        base = list(BASE_BINS[name])
        edges, counts = stats["histogram"]["bins_s"], stats["histogram"]["counts"]
        starts = [base.index(e) for e in edges]  # ValueError: an edge that is not a base edge
        ends = starts[1:] + [len(base)]
        out[name] = [(list(range(a, b)), n) for a, b, n in zip(starts, ends, counts)]
    return out


def _published_counts(summary: dict):
    """(zone, where, value) for every published count."""
    for z in summary["zones"]:
        for key in ("visits", "passers_by", "attentive"):
            yield z["zone"], key, z.get(key)
        for name, cells in _margins(z).items():
            for key, n in cells.items():
                yield z["zone"], f"{name}.{key}", n
        for name, runs in _histograms(z).items():
            for base, n in runs:
                yield z["zone"], f"{name}.bin{base[0]}", n
        q = z.get("queue")
        if q:
            yield z["zone"], "queue.occupancy_peak", q.get("occupancy_peak")


def attack_summary(summary: dict, k: int | None = None) -> list[Leak]:
    k = int(summary["k"] if k is None else k)
    leaks = [
        Leak(zone, where, "small count", n)
        for zone, where, n in _published_counts(summary)
        if isinstance(n, int) and 0 < n < k
    ]
    threshold = summary.get("attentive_min_s", 1.0)
    for z in summary["zones"]:
        leaks += _attack_zone(z, k, threshold)
    return leaks


def _attack_zone(z: dict, k: int, attentive_min_s: float) -> list[Leak]:
    import numpy as np
    from scipy.optimize import linprog

    margins, histograms = _margins(z), _histograms(z)
    visits = z.get("visits")
    variables: list[tuple[str, str, str]] = []  # (where, key, "hidden" | "inside a merged bin")
    index: dict[tuple[str, str], int] = {}

    def var(name: str, key: str, kind: str) -> int:
        index[(name, key)] = len(variables)
        variables.append((name, key, kind))
        return index[(name, key)]

    for name, cells in margins.items():
        for key, n in cells.items():
            if n is None:
                var(name, key, "hidden")
    known_bins: dict[str, dict[int, int]] = {}  # histogram -> base bin -> its published count
    for name, runs in histograms.items():
        known_bins[name] = {}
        for base, n in runs:
            if len(base) == 1 and n is not None:
                known_bins[name][base[0]] = n
            else:
                for i in base:
                    var(name, str(i), "hidden" if n is None else "inside a merged bin")
    v_var = var("zone", "visits", "hidden") if visits is None else None
    if not variables:
        return []
    nv = len(variables)
    a_eq, b_eq, a_ub, b_ub = [], [], [], []

    def row() -> list[float]:
        return [0.0] * nv

    def equals_visits(r: list[float], known: float) -> None:
        if v_var is not None:
            r[v_var] -= 1
            a_eq.append(r), b_eq.append(-known)
        else:
            a_eq.append(r), b_eq.append(visits - known)

    for name, cells in margins.items():  # each margin sums to the visits
        r, known = row(), 0
        for key, n in cells.items():
            if n is None:
                r[index[(name, key)]] += 1
            else:
                known += n
        equals_visits(r, known)
    for name, runs in histograms.items():
        r = row()
        for base, n in runs:
            if len(base) > 1 and n is not None:  # a merged bin: its base bins sum to its count
                merged = row()
                for i in base:
                    merged[index[(name, str(i))]] = 1
                a_eq.append(merged), b_eq.append(n)
            for i in base:
                if (name, str(i)) in index:
                    r[index[(name, str(i))]] += 1
        equals_visits(r, sum(known_bins[name].values()))

    def bin_term(name: str, i: int, weight: float, r: list[float]) -> float:
        """Adds weight x (base bin i) to r; returns the constant part (bin i known)."""
        if (name, str(i)) in index:
            r[index[(name, str(i))]] += weight
            return 0.0
        n = known_bins[name].get(i, 0)
        return weight * n if n else 0.0

    base_a = BASE_BINS["attention_s"]
    if "attention_s" in histograms and z.get("attentive") is not None:
        r, known = row(), 0.0
        for i, lo in enumerate(base_a):
            if lo >= attentive_min_s:
                known += bin_term("attention_s", i, 1.0, r)
        a_eq.append(r), b_eq.append(z["attentive"] - known)
    if "attention_s" in histograms and "dwell_s" in histograms:
        # a visit's attention is at most its dwell: for every edge x the histograms share, the visits with
        # attention >= x are at most the visits with dwell >= x
        base_d = BASE_BINS["dwell_s"]
        for x in sorted(set(base_a) & set(base_d) - {0}):
            r, constant = row(), 0.0
            for i, lo in enumerate(base_a):
                if lo >= x:
                    constant += bin_term("attention_s", i, 1.0, r)
            for j, lo in enumerate(base_d):
                if lo >= x:
                    constant += bin_term("dwell_s", j, -1.0, r)
            a_ub.append(r), b_ub.append(-constant)  # attention(>= x) - dwell(>= x) <= 0
    for name in histograms:  # a published sum lies between the bins' bounds
        stats = z[name]
        total = stats.get("sum")
        if total is None and stats.get("mean") is not None and visits:
            total = stats["mean"] * visits
        if total is None:
            continue
        base = BASE_BINS[name]
        lo_r, hi_r, lo_known, hi_known, open_hidden = row(), row(), 0.0, 0.0, False
        for i, lo in enumerate(base):
            hi = base[i + 1] if i + 1 < len(base) else math.inf
            lo_known += bin_term(name, i, lo, lo_r)
            if math.isinf(hi):
                if (name, str(i)) in index:
                    open_hidden = True
                elif known_bins[name].get(i, 0):
                    hi_known = math.inf
            else:
                hi_known += bin_term(name, i, hi, hi_r)
        slack = 0.01 * max(1, visits or 1)  # the published sum is rounded to 0.01 s
        a_ub.append(lo_r), b_ub.append(total + slack - lo_known)  # sum >= the lower bounds
        if not open_hidden and not math.isinf(hi_known):
            a_ub.append([-x for x in hi_r]), b_ub.append(hi_known - total + slack)  # sum <= the upper bounds
    bounds = [(0, None)] * nv
    if v_var is not None:
        bounds[v_var] = (1, k - 1)
    leaks = []
    for j in range(nv):
        ends = []
        for sign in (1, -1):
            c = np.zeros(nv)
            c[j] = sign
            res = linprog(
                c,
                A_ub=a_ub or None,
                b_ub=b_ub or None,
                A_eq=a_eq or None,
                b_eq=b_eq or None,
                bounds=bounds,
                integrality=np.ones(nv),
                method="highs",
            )
            if res.status == 3:  # unbounded above
                ends.append(math.inf)
            elif res.status != 0:
                raise AssertionError(f"zone {z['zone']}: the published figures admit no solution ({res.message})")
            else:
                ends.append(sign * res.fun)
        lo, hi = round(ends[0]), ends[1] if math.isinf(ends[1]) else round(ends[1])
        name, key, kind = variables[j]
        if lo == hi and (kind == "hidden" or 0 < lo < k):
            leaks.append(
                Leak(
                    z["zone"], f"{name}.{key}", "pinned" if kind == "hidden" else "pinned inside a merged bin", int(lo)
                )
            )
    if visits is not None:
        for name, cells in margins.items():
            if any(n is None for n in cells.values()):
                total = visits - sum(n for n in cells.values() if n is not None)
                if 0 < total < k:
                    leaks.append(Leak(z["zone"], f"{name} (hidden total)", "small hidden total", total))
        for name, runs in histograms.items():
            if any(n is None for _, n in runs):
                total = visits - sum(n for _, n in runs if n is not None)
                if 0 < total < k:
                    leaks.append(Leak(z["zone"], f"{name} (hidden total)", "small hidden total", total))
    return leaks


def attack_summaries(summaries: list[dict], k: int | None = None) -> list[Leak]:
    """Every leak in the summaries of one device: each summary attacked, and their keys compared."""
    return [leak for s in summaries for leak in attack_summary(s, k)] + key_leaks(summaries)


def key_leaks(summaries: list[dict]) -> list[Leak]:
    """Keys whose presence depends on the data: across the summaries of one device, a zone that is
    listed in some and not others, or a margin whose key set changes. Each suppressed cell under
    such a key names a category that 1..k-1 people fell in (version 1 listed a key only when
    someone did)."""
    zones_seen: dict[str, int] = {}
    keysets: dict[tuple[str, str], set[frozenset]] = {}
    for s in summaries:
        for z in s["zones"]:
            zones_seen[z["zone"]] = zones_seen.get(z["zone"], 0) + 1
            for name in ("age_bands", "gender", "content"):
                m = z.get(name)
                if isinstance(m, dict):
                    keysets.setdefault((z["zone"], name), set()).add(frozenset(m))
    varying = {key for key, sets in keysets.items() if len(sets) > 1 or zones_seen[key[0]] < len(summaries)}
    leaks = []
    for s in summaries:
        for z in s["zones"]:
            if zones_seen[z["zone"]] < len(summaries) and z.get("visits") is None:
                leaks.append(Leak(z["zone"], "zone listed only when someone came", "key", 0))
            for name in ("age_bands", "gender", "content"):
                m = z.get(name)
                if (z["zone"], name) in varying and isinstance(m, dict):
                    leaks += [Leak(z["zone"], f"{name}.{key}", "key", 0) for key, n in m.items() if n is None]
    return leaks


def hidden_share(summary: dict, truth: dict[str, dict[str, dict[str, int]]], margin: str) -> tuple[int, int]:
    """(visits whose ``margin`` value is not published, visits) over a summary, given the true
    counts per zone (zone -> margin -> key -> count)."""
    hidden = total = 0
    for z in summary["zones"]:
        true = truth.get(z["zone"], {}).get(margin, {})
        n = sum(true.values())
        total += n
        published = z.get(margin) if z.get("visits") is not None else None
        if not isinstance(published, dict):
            hidden += n
            continue
        hidden += sum(c for key, c in true.items() if published.get(key) is None)
    return hidden, total
