"""Disclosure control, attacked: no published figure may reveal fewer than k people, directly, by
its key or by subtraction (kiosk.disclosure, kiosk.testing.attack).

The attacker writes down every equality a summary implies (each margin sums to the zone's
visits, the attentive visits are the upper attention bins, a published sum bounds its histogram)
and solves an integer program for the range of every suppressed cell. It is first shown to find
the leaks of the version 1 payloads, then turned on the summaries of generated store days at
several k, on the report's CSV tables over those days, and (in test_store_scenes and
test_daemon) on summaries from the real pipeline and from a daemon run.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools

import pytest
from click.testing import CliRunner

from kiosk.aggregate import Aggregator
from kiosk.cli import cli
from kiosk.disclosure import protect_count, protect_margin
from kiosk.fleet.collector import load_validator
from kiosk.store.aggregates import AggregateStore
from kiosk.store.db import open_db
from kiosk.summary import SummaryContext, build_summary
from kiosk.testing.attack import Leak, attack_summaries, attack_summary, hidden_share
from kiosk.testing.population import generate_day
from tests.helpers import visit

T0 = 1_800_000_000 - 1_800_000_000 % 300
ZONES = ("shelf-a", "shelf-b", "checkout")


def _ctx(k: int, **extra) -> SummaryContext:
    return SummaryContext(
        "dev-1",
        "store-1",
        300,
        k,
        {},
        queue_zones=("checkout",),
        zones=ZONES,
        content_labels=("spring", "promo"),
        **extra,
    )


# --- the rules on their own -------------------------------------------------------------------


def test_a_small_cell_takes_the_smallest_other_with_it():
    # the case: visits 16 = female 6 + male 7 + unknown 3 gave unknown = 3 by subtraction
    assert protect_margin({"female": 6, "male": 7, "unknown": 3}, 5) == {"female": None, "male": 7, "unknown": None}
    assert protect_margin({"female": 9, "male": 7, "unknown": 0}, 5) == {"female": 9, "male": 7, "unknown": 0}
    # two small cells holding fewer than k together: a third one joins them
    assert protect_margin({"a": 10, "b": 1, "c": 1}, 5) == {"a": None, "b": None, "c": None}
    assert protect_margin({"a": 10, "b": 3, "c": 2, "d": 6}, 5) == {"a": 10, "b": None, "c": None, "d": 6}
    # a sub-group with a hidden cell gives the complement when it can
    got = protect_margin({"0": 3, "1": 8, "2": 6, "3": 7}, 5, groups=(["0", "1"], ["2", "3"]))
    assert got == {"0": None, "1": None, "2": 6, "3": 7}
    assert protect_count(0, 5) == 0 and protect_count(4, 5) is None and protect_count(5, 5) == 5


@pytest.mark.parametrize("k", [3, 5, 10])
def test_no_margin_up_to_four_cells_and_twenty_people_leaks(k):
    """Every margin of up to four cells and a total of k..20, through the attacker."""
    for cells in (2, 3, 4):
        for counts in itertools.product(range(0, 21), repeat=cells):
            total = sum(counts)
            if not k <= total <= 20:
                continue
            got = protect_margin({str(i): n for i, n in enumerate(counts)}, k)
            hidden = [key for key, v in got.items() if v is None]
            assert all(v == counts[int(key)] for key, v in got.items() if v is not None)
            assert all(v == 0 or v >= k for v in got.values() if v is not None)
            assert len(hidden) != 1, (counts, got)
            hidden_total = sum(counts[int(key)] for key in hidden)
            assert hidden_total == 0 or hidden_total >= k, (counts, got)


# --- the attacker finds what it should --------------------------------------------------------


def test_the_attacker_finds_the_version_1_leaks():
    """The payloads the issue reported: the attacker must see each of their leaks, or its silence
    on version 2 would mean nothing."""
    v1 = {
        "schema_version": 1,
        "k": 5,
        "zones": [
            {
                "zone": "a",
                "visits": 16,
                "passers_by": 0,
                "attentive": 9,
                "dwell_s": None,
                "attention_s": None,
                "dominant_emotion": {
                    "angry": 0,
                    "disgust": 0,
                    "fear": 0,
                    "happy": 5,
                    "sad": 2,
                    "surprise": 0,
                    "neutral": 9,
                },
                "first_reaction": None,
                "age_bands": {"25-34": 16},
                "gender": {"female": 6, "male": 7, "unknown": None},
                "content": {"none": 16},
            },
            {
                "zone": "b",
                "visits": None,
                "passers_by": 0,
                "attentive": None,
                "dwell_s": None,
                "attention_s": None,
                "dominant_emotion": None,
                "first_reaction": None,
                "age_bands": {"0-17": None},
                "gender": {"male": None},
                "content": {"none": None},
            },
        ],
    }
    leaks = attack_summary(v1)
    assert Leak("a", "dominant_emotion.sad", "small count", 2) in leaks
    assert Leak("a", "gender.unknown", "pinned", 3) in leaks
    assert Leak("a", "gender (hidden total)", "small hidden total", 3) in leaks
    v1_later = {**v1, "zones": [dict(v1["zones"][0], age_bands={"25-34": 16, "0-17": 0})]}
    keys = attack_summaries([v1, v1_later])
    assert (
        Leak("b", "age_bands.0-17", "key", 0) in keys
        and Leak("b", "zone listed only when someone came", "key", 0) in keys
    )


def test_histograms_merge_bins_instead_of_holes_so_their_sums_can_be_published():
    """Four visits under 5 s and one of 70 s (k = 5). With the bins hidden (4 and 1), their sum, 84 s,
    would give both back (five short visits make at most 25 s, two long ones at least 120 s); so the
    device merges the bins into one of 5 visits (0-120 s) and publishes the sum beside it."""
    db = open_db(":memory:")
    agg = Aggregator(300)
    for i in range(4):
        agg.add(visit(T0 + 10 + i, zone="shelf-a", dwell=3.5, attention=0.5))
    agg.add(visit(T0 + 100, zone="shelf-a", dwell=70.0, attention=12.0))
    AggregateStore(db).write(agg.drain())
    msg = build_summary(db, _ctx(5), T0, 1, 0, True)
    (zone,) = [z for z in msg["zones"] if z["zone"] == "shelf-a"]
    assert zone["visits"] == 5
    assert zone["dwell_s"]["histogram"] == {"bins_s": [0, 120, 300], "counts": [5, 0, 0]}
    assert zone["dwell_s"]["sum"] == 84.0 and zone["dwell_s"]["mean"] == 16.8
    # attention: 4 below the 1 s threshold and 1 above cannot stand apart: merged across it, and the
    # attentive count (1) is not published
    assert zone["attention_s"]["histogram"]["counts"][0] == 5 and zone["attentive"] is None
    assert attack_summaries([msg]) == []
    # the attacker pins the bins of the same figures published with holes beside the sum
    holes = {"bins_s": [0, 5, 10, 20, 30, 60, 120, 300], "counts": [None, 0, 0, 0, 0, None, 0, 0]}
    leaky = {**msg, "zones": [dict(zone, dwell_s=dict(zone["dwell_s"], histogram=holes))]}
    pinned = {(leak.where, leak.value) for leak in attack_summary(leaky) if leak.kind == "pinned"}
    assert {("dwell_s.0", 4), ("dwell_s.5", 1)} <= pinned


@pytest.mark.parametrize("k", [3, 5])
def test_merged_bins_hold_zero_or_at_least_k_and_keep_the_threshold_when_they_can(k):
    from kiosk.disclosure import merge_bins

    for counts in itertools.product((0, 1, 2, 4, 7), repeat=5):
        total = sum(counts)
        if 0 < total < k:
            continue
        runs, kept = merge_bins(counts, k, breaks=(2,))
        assert runs[0][0] == 0 and runs[-1][1] == 5 and all(a[1] == b[0] for a, b in zip(runs, runs[1:]))
        assert all(sum(counts[a:b]) == 0 or sum(counts[a:b]) >= k for a, b in runs), (counts, runs)
        assert all(
            b - a == 1 for a, b in runs if sum(counts[a:b]) == 0
        )  # an empty bin is never merged into an empty run
        sides_ok = all(s == 0 or s >= k for s in (sum(counts[:2]), sum(counts[2:])))
        assert kept == sides_ok and (not kept or 2 in {a for a, _ in runs}), (counts, runs, kept)


# --- generated store days ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    out = []
    for seed in (11, 12):
        path = tmp_path_factory.mktemp(f"day{seed}") / "device.db"
        db = open_db(path)
        out.append((path, generate_day(db, seed=seed, t0=T0, periods=12)))
        db.conn.close()
    return out


@pytest.mark.parametrize("k", [3, 5])  # the least k allowed and the default; k = 10 in bench/disclosure.py
def test_no_leak_in_any_summary_of_generated_days(days, k):
    validator = load_validator("summary.v2.json")
    small_cells = 0
    for path, pop in days:
        db = open_db(path)
        msgs = [build_summary(db, _ctx(k), p, i + 1, 0, True) for i, p in enumerate(pop.periods)]
        db.conn.close()
        for m in msgs:
            validator.validate(m)
            assert [z["zone"] for z in m["zones"]] == list(ZONES)
            assert m["suppressed_cells"] == _nulls(m)
        small_cells += sum(
            0 < n < k
            for zone in pop.truth.values()
            for z in zone.values()
            for margin in z.values()
            for n in margin.values()
        )
        assert attack_summaries(msgs) == []
        keysets = {
            (z["zone"], name, tuple(z[name]))
            for m in msgs
            for z in m["zones"]
            for name in ("age_bands", "gender", "content", "dominant_emotion", "first_reaction")
        }
        assert len(keysets) == len(ZONES) * 5  # the same keys in every summary
    assert small_cells > 50  # the days are full of cells of 1..k-1: the rules had work to do


def _nulls(msg: dict) -> int:
    n = 0
    for z in msg["zones"]:
        n += sum(z[key] is None for key in ("visits", "passers_by", "attentive"))
        for name in ("dominant_emotion", "first_reaction", "age_bands", "gender", "content"):
            n += sum(v is None for v in z[name].values())
        for name in ("dwell_s", "attention_s"):
            n += sum(v is None for v in z[name]["histogram"]["counts"])
        if "queue" in z:
            n += z["queue"]["occupancy_peak"] is None
    return n


def test_what_the_stricter_suppression_costs_is_measured(days):
    """The price of complementary suppression, over the same days (the figures are in the README)."""
    path, pop = days[0]
    db = open_db(path)
    for k in (5, 10):
        msgs = [build_summary(db, _ctx(k), p, i + 1, 0, True) for i, p in enumerate(pop.periods)]
        hidden, total = map(
            sum, zip(*(hidden_share(m, pop.truth.get(p, {}), "gender") for m, p in zip(msgs, pop.periods)))
        )
        assert total > 0 and 0 < hidden < total  # some hidden, not all
    db.conn.close()


# --- the report's tables ----------------------------------------------------------------------

COUNT_COLUMNS = {
    "visits",
    "attentive",
    "passers_by",
    "occupancy_peak",
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
}


def test_the_report_csv_over_a_range_inherits_the_protection(days, tmp_path):
    path, pop = days[1]
    k = 5
    cfg = tmp_path / "kiosk.yaml"
    cfg.write_text(
        "store:\n  period_s: 300\n  k_anonymity: 5\nmqtt:\n  store_id: store-1\n  device_id: dev-1\n"
        "content:\n  default: spring\n  labels: [promo]\n"
        "zones:\n  - {id: shelf-a, rect: [0, 0, 0.3, 1]}\n  - {id: shelf-b, rect: [0.3, 0, 0.6, 1]}\n"
        "  - {id: checkout, type: queue, rect: [0.6, 0, 1, 1]}\n"
    )
    since = dt.datetime.fromtimestamp(pop.periods[2], dt.timezone.utc).isoformat()
    result = CliRunner().invoke(
        cli,
        [
            "report",
            "--db",
            str(path),
            "--config",
            str(cfg),
            "--since",
            since,
            "--out",
            str(tmp_path / "r.html"),
            "--csv",
            str(tmp_path / "csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    tables = {p.stem: list(csv.DictReader(p.open())) for p in (tmp_path / "csv").glob("*.csv")}
    assert {"interest", "gender", "age_bands", "timeline", "reactions", "queues"} <= set(tables)
    shown = 0
    for name, rows in tables.items():
        for row in rows:
            for col, value in row.items():
                if col in COUNT_COLUMNS and value not in ("", "suppressed"):
                    assert not 0 < int(value) < k, (name, row)
                    shown += int(value) > 0
    assert shown > 20
    interest = {r["zone"]: r for r in tables["interest"]}
    for attribute in ("gender", "age_bands"):
        per_zone: dict[str, int] = {}
        for r in tables[attribute]:
            per_zone[r["zone"]] = per_zone.get(r["zone"], 0) + int(r["visits"])
        for zone, n in per_zone.items():  # what the suppressed cells hold over the range, by subtraction
            rest = int(interest[zone]["visits"]) - n
            assert rest == 0 or rest >= k, (attribute, zone, rest)
    for row in tables["timeline"]:  # per period: a hidden emotion cannot be the only unknown beside the total
        if row["visits"] in ("", "suppressed"):
            continue
        hidden = [
            e for e in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral") if row[e] == "suppressed"
        ]
        rest = int(row["visits"]) - sum(
            int(row[e])
            for e in row
            if e in COUNT_COLUMNS - {"visits", "attentive", "passers_by", "occupancy_peak"}
            and row[e] not in ("", "suppressed")
        )
        assert not hidden or rest >= k, row
