"""Disclosure benchmark: leaks an attacker finds in a device's summaries, and what suppression costs.

For each seed, a day of generated visits (``kiosk.testing.population``: 48 periods of 5 minutes,
two shelf zones and a queue) goes through the aggregator, the store and the summary builder at
each k; ``kiosk.testing.attack`` then looks for published counts of 1..k-1, suppressed cells it
can pin to one value, margins whose hidden cells hold 1..k-1 people, and keys whose presence
depends on the data. Also printed: the share of visits whose age band, gender or dominant emotion
is not published.

``--kiosk DIR`` imports the summary builder from another checkout (for example the commit before
schema version 2), with the same generator and attacker, for before/after figures::

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/disclosure.py --kiosk /tmp/before
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
T0 = 1_800_000_000 - 1_800_000_000 % 300


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--k", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--periods", type=int, default=48)
    ap.add_argument(
        "--summary-period",
        type=int,
        default=300,
        help="seconds per summary (a multiple of 300: the day's 5-minute rows summed)",
    )
    ap.add_argument("--kiosk", type=Path, default=HERE, help="checkout whose kiosk package builds the summaries")
    args = ap.parse_args()
    sys.path.insert(0, str(args.kiosk.resolve()))
    import kiosk.summary as summary_mod
    from kiosk.store.db import open_db

    population = _load("bench_population", HERE / "kiosk" / "testing" / "population.py")
    attack = _load("bench_attack", HERE / "kiosk" / "testing" / "attack.py")
    fields = {f.name for f in dataclasses.fields(summary_mod.SummaryContext)}
    zones = ("shelf-a", "shelf-b", "checkout")
    out = {"kiosk": str(args.kiosk), "schema_version": getattr(summary_mod, "SCHEMA_VERSION", None), "by_k": {}}
    for k in args.k:
        leaks, summaries = collections.Counter(), 0
        entries = 0
        shares = {m: [0, 0] for m in ("age_bands", "gender")}
        published_zone = [0, 0, 0]  # visits in zone entries with visits published; of them, attentive / mean hidden
        t = time.perf_counter()
        for seed in args.seeds:
            db = open_db(":memory:")
            pop = population.generate_day(db, seed=seed, t0=T0, periods=args.periods, zones=zones)
            wanted = dict(
                device_id="dev",
                store_id="store",
                period_s=args.summary_period,
                k=k,
                models={},
                queue_zones=("checkout",),
                zones=zones,
                content_labels=("spring", "promo"),
            )
            ctx = summary_mod.SummaryContext(**{key: v for key, v in wanted.items() if key in fields})
            step = args.summary_period // 300
            starts = pop.periods[::step]
            msgs = [summary_mod.build_summary(db, ctx, p, i + 1, 0, True) for i, p in enumerate(starts)]
            summaries += len(msgs)
            found = [leak for m in msgs for leak in attack.attack_summary(m)] + attack.key_leaks(msgs)
            leaks.update(leak.kind for leak in found)
            entries += sum(len(m["zones"]) for m in msgs)
            for m in msgs:
                start = int(m_start(m))
                truth = _merge([pop.truth.get(start + 300 * j, {}) for j in range(step)])
                for margin in ("age_bands", "gender"):
                    h, n = attack.hidden_share(m, truth, margin)
                    shares[margin][0] += h
                    shares[margin][1] += n
                for z in m["zones"]:
                    if z["visits"]:
                        published_zone[0] += z["visits"]
                        published_zone[1] += z["visits"] if z.get("attentive") is None else 0
                        published_zone[2] += z["visits"] if (z.get("dwell_s") or {}).get("mean") is None else 0
        out["by_k"][k] = {
            "summaries": summaries,
            "zone_entries": entries,
            "leaks": sum(leaks.values()),
            "leaks_by_kind": dict(leaks),
            "visits_with_age_band_hidden": round(shares["age_bands"][0] / max(1, shares["age_bands"][1]), 3),
            "visits_with_gender_hidden": round(shares["gender"][0] / max(1, shares["gender"][1]), 3),
            "visits_in_published_zones": round(published_zone[0] / max(1, shares["gender"][1]), 3),
            "of_those_attentive_hidden": round(published_zone[1] / max(1, published_zone[0]), 3),
            "of_those_dwell_mean_hidden": round(published_zone[2] / max(1, published_zone[0]), 3),
            "visits": shares["gender"][1],
            "seconds": round(time.perf_counter() - t, 1),
        }
    print(json.dumps(out, indent=2))
    return 0


def _merge(parts: list[dict]) -> dict:
    out: dict = {}
    for part in parts:
        for zone, margins in part.items():
            z = out.setdefault(zone, {})
            for margin, counts in margins.items():
                m = z.setdefault(margin, {})
                for key, n in counts.items():
                    m[key] = m.get(key, 0) + n
    return out


def m_start(msg: dict) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(msg["period_start"].replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    sys.exit(main())
