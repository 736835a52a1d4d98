"""`kiosk report` from a database filled by a generated scenario (real faces), from an empty one,
and from a real PostgreSQL collector; the HTML opened in headless Chromium."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kiosk.aggregate import Aggregator
from kiosk.cli import cli
from kiosk.fleet.database import CollectorStore
from kiosk.fleet.report.sources import from_device_db
from kiosk.store.aggregates import AggregateStore
from kiosk.store.db import open_db
from tests.chromium import open_headless
from tests.conftest import PROJECT, SCENE_T0
from tests.helpers import visit
from tests.postgres import Postgres

K = 5  # the product's default
PERIOD = 60


def fill_from_scene(db_path: Path, scene) -> None:
    """The scene's visits, the first half under a campaign label, plus a queue zone (checkout) with
    head counts and waiting visits, into a device database."""
    _, visits, _, _ = scene
    agg = Aggregator(PERIOD)
    for v in visits:
        label = "spring-promo" if v.wall_start < SCENE_T0 + 120 else "none"
        agg.add(dataclasses.replace(v, content=label))
    for s in range(240):  # a queue of 5-8 for three minutes, then of 0-2 (its occupancy suppressed)
        agg.add_occupancy(SCENE_T0 + s, "checkout", (s // 20) % 4 + 5 if s < 180 else (s // 20) % 3)
    for i in range(24):  # six people waiting per minute
        agg.add(visit(SCENE_T0 + 5 + i * 9.8, zone="checkout", dwell=20 + i, content="none"))
    AggregateStore(open_db(db_path)).write(agg.drain())


def config(tmp_path: Path) -> Path:
    path = tmp_path / "kiosk.yaml"
    path.write_text(
        f"store:\n  period_s: {PERIOD}\n  k_anonymity: {K}\nmqtt:\n  store_id: store-1\n  device_id: dev-1\n"
    )
    return path


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def report(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["report", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def scene_report(scene, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    db = tmp / "device.db"
    fill_from_scene(db, scene)
    out = report(
        "--db",
        str(db),
        "--config",
        str(config(tmp)),
        "--out",
        str(tmp / "report.html"),
        "--csv",
        str(tmp / "csv"),
        "--compare",
        "content:spring-promo,none",
    )
    return tmp, db, out


def _sql_per_period(db, columns: str) -> dict:
    sql = f"SELECT period_start, {columns}, SUM(visits) FROM aggregates GROUP BY period_start, {columns}"
    return {tuple(r[:-1]): r[-1] for r in db.execute(sql).fetchall()}


def test_every_chart_is_present_and_every_csv_figure_equals_sql(scene_report):
    tmp, db_path, out = scene_report
    html = (tmp / "report.html").read_text()
    for key in ("interest", "reactions", "demographics", "timeline", "comparison", "queues", "audience"):
        assert f'id="chart-{key}"' in html, key
    assert out["charts"] == 7 and "http://" not in html and "https://" not in html  # self-contained
    db = open_db(db_path)
    per_zone = _sql_per_period(db, "zone")
    expect: dict[str, list[int]] = {}
    for (_, zone), n in per_zone.items():
        expect.setdefault(zone, [0, 0])
        if 0 < n < K:
            expect[zone][1] += 1
        else:
            expect[zone][0] += n
    interest = {r["zone"]: r for r in read_csv(tmp / "csv" / "interest.csv")}
    assert set(interest) == set(expect)
    for zone, (shown, hidden) in expect.items():
        assert int(interest[zone]["visits"]) == shown and int(interest[zone]["visits_suppressed"]) == hidden, zone
    # a gender total is the true count summed over the periods whose summary published it; every
    # published figure equals the database's
    published = {int(_epoch(m["period_start"])): m for m in from_device_db(db_path, k=K).summaries}
    per_gender = _sql_per_period(db, "zone, gender")
    gender_expect: dict[tuple, int] = {}
    for (period, zone, gender), n in per_gender.items():
        (entry,) = [z for z in published[period]["zones"] if z["zone"] == zone]
        shown = entry["gender"][gender]
        assert shown in (None, n), (period, zone, gender)
        gender_expect[(zone, gender)] = gender_expect.get((zone, gender), 0) + (shown or 0)
    got = {(r["zone"], r["value"]): int(r["visits"]) for r in read_csv(tmp / "csv" / "gender.csv")}
    assert {key: n for key, n in got.items() if n or key in gender_expect} == gender_expect
    timeline = read_csv(tmp / "csv" / "timeline.csv")
    from kiosk.summary import iso

    for row in timeline:
        n = per_zone.get((int(_epoch(row["period_start"])), row["zone"]), 0)
        assert row["visits"] == ("suppressed" if 0 < n < K else str(n)), row
    assert any(r["visits"] == "suppressed" for r in timeline)  # the scene has small cells: they are hidden
    # suppressed cells are never shown as numbers, anywhere
    for name in ("timeline", "gender", "age_bands", "interest"):
        for row in read_csv(tmp / "csv" / f"{name}.csv"):
            for col in ("visits", "passers_by"):
                if col in row and row[col] not in ("", "suppressed"):
                    assert not 0 < int(row[col]) < K, (name, row)
    queues = read_csv(tmp / "csv" / "queues.csv")
    assert html.count('class="suppressed"') == sum(v == "suppressed" for r in timeline + queues for k, v in r.items())
    assert {r["period_start"] for r in timeline} == {iso(SCENE_T0 + 60 * i) for i in range(4)}


def _epoch(text: str) -> float:
    from kiosk.fleet.report.sources import parse_time

    return parse_time(text)


def test_audience_measures_add_published_figures_only(scene_report):
    """OTS, viewers, conversion, the distributions and the audience per label, recomputed here from
    the published summaries by the definitions of docs/audience.md, and no count of 1 to k-1."""
    tmp, db_path, _ = scene_report
    summaries = from_device_db(db_path, k=K).summaries
    cells: dict[str, list[dict]] = {}
    for s in summaries:
        for z in s["zones"]:
            cells.setdefault(z["zone"], []).append(z)
    rows = {r["zone"]: r for r in read_csv(tmp / "csv" / "audience.csv")}
    assert set(rows) == set(cells)
    for zone, zs in cells.items():
        both = [z for z in zs if z["visits"] is not None and z["passers_by"] is not None]
        ots = sum(z["visits"] + z["passers_by"] for z in both)
        r = rows[zone]
        assert int(r["opportunities"]) == ots and int(r["cells_suppressed"]) == len(zs) - len(both), zone
        assert int(r["visits"]) == sum(z["visits"] for z in both)
        with_attention = [z for z in both if z["attentive"] is not None]
        assert int(r["viewers"]) == sum(z["attentive"] for z in with_attention)
        if ots:
            assert float(r["conversion"]) == round(sum(z["visits"] for z in both) / ots, 3)
            assert 0 <= float(r["conversion"]) <= 1
        base = sum(z["visits"] + z["passers_by"] for z in with_attention)
        if base:
            assert float(r["viewer_rate"]) == round(sum(z["attentive"] for z in with_attention) / base, 3)
    assert sum(int(r["opportunities"]) for r in rows.values()) > 0  # the scene gives the measures something
    dist = read_csv(tmp / "csv" / "distributions.csv")
    for zone in cells:
        for measure in ("dwell", "attention"):
            part = [d for d in dist if d["zone"] == zone and d["measure"] == measure]
            if not part:
                continue
            complete = [z for z in cells[zone] if z["visits"] and None not in z[f"{measure}_s"]["histogram"]["counts"]]
            assert sum(int(d["visits"]) for d in part) == sum(z["visits"] for z in complete), (zone, measure)
            assert abs(sum(float(d["share"]) for d in part) - 1.0) < 0.01
    content = {r["content"]: r for r in read_csv(tmp / "csv" / "audience_by_content.csv")}
    for label in ("spring-promo", "none"):
        published = [z["content"].get(label, 0) for zs in cells.values() for z in zs]
        assert int(content[label]["visits"]) == sum(n for n in published if n is not None), label
        assert int(content[label]["visits_suppressed"]) == sum(n is None for n in published)
    assert int(content["spring-promo"]["visits"]) > 0
    for name in ("audience", "distributions", "audience_by_content"):
        for row in read_csv(tmp / "csv" / f"{name}.csv"):
            for col in ("opportunities", "visits", "viewers"):
                if row.get(col) not in (None, ""):
                    assert not 0 < int(row[col]) < K, (name, row)


def test_campaign_comparison_and_queue_tables(scene_report):
    tmp, _, _ = scene_report
    comparison = {r["name"]: r for r in read_csv(tmp / "csv" / "comparison.csv")}
    assert set(comparison) == {"spring-promo", "none"}
    assert int(comparison["spring-promo"]["cells"]) > 0 and int(comparison["none"]["cells"]) > 0
    queues = read_csv(tmp / "csv" / "queues.csv")
    assert [r["zone"] for r in queues] == ["checkout"] * 4
    assert all(int(r["samples"]) == 60 for r in queues)
    assert all(float(r["occupancy_mean"]) >= 5 and int(r["occupancy_peak"]) >= 7 for r in queues[:3])
    assert (
        queues[3]["occupancy_mean"] == "suppressed" and queues[3]["occupancy_peak"] == "suppressed"
    )  # a peak of 2 < k
    assert any(r["waiting_mean_s"] for r in queues)
    timeline = read_csv(tmp / "csv" / "timeline.csv")
    labels = {r["content"] for r in timeline if r["zone"] != "checkout" and r["content"]}
    # the campaign change can be read off the timeline: the label, then another or a hidden mix (at k = 5
    # a period of 2 visits under one label and 3 under the other hides both)
    assert "spring-promo" in labels and len(labels) >= 2, labels


def test_html_opens_in_headless_chromium_without_console_errors(scene_report, tmp_path):
    report_dir, _, _ = scene_report

    def open_page(path: Path, shot: Path) -> str:
        return open_headless(path, "--window-size=1280,4000", f"--screenshot={shot}")

    control = tmp_path / "broken.html"  # the check must see an error when there is one
    control.write_text("<html><body><script>notDefinedAnywhere();</script></body></html>")
    assert "CONSOLE" in open_page(control, tmp_path / "broken.png")
    shot = tmp_path / "report.png"
    log = open_page(report_dir / "report.html", shot)
    console = [line for line in log.splitlines() if "CONSOLE" in line]
    assert console == [], console
    assert shot.exists() and shot.stat().st_size > 50_000 and shot.read_bytes()[:4] == b"\x89PNG"
    keep = PROJECT / ".cache" / "test-artifacts"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, keep / "report.png")  # the screenshot of this run, to look at


def test_empty_database_one_period_and_a_range_without_data(tmp_path):
    empty = tmp_path / "empty.db"
    open_db(empty).conn.close()
    out = report("--db", str(empty), "--out", str(tmp_path / "empty.html"), "--csv", str(tmp_path / "empty"))
    html = (tmp_path / "empty.html").read_text()
    assert out["summaries"] == 0 and out["charts"] == 0 and "There is no data for this selection" in html
    one = tmp_path / "one.db"
    agg = Aggregator(PERIOD)
    for i in range(6):
        agg.add(visit(SCENE_T0 + 5 + i))
    AggregateStore(open_db(one)).write(agg.drain())
    out = report("--db", str(one), "--config", str(config(tmp_path)), "--out", str(tmp_path / "one.html"))
    assert out["summaries"] == 1 and out["charts"] >= 4
    out = report("--db", str(one), "--since", "2030-01-01", "--out", str(tmp_path / "none.html"))
    assert out["summaries"] == 0 and "There is no data" in (tmp_path / "none.html").read_text()
    result = CliRunner().invoke(cli, ["report", "--db", str(tmp_path / "missing.db")])
    assert result.exit_code != 0 and "no database at" in result.output
    result = CliRunner().invoke(cli, ["report", "--db", str(one), "--since", "last tuesday"])
    assert result.exit_code != 0 and "ISO 8601" in result.output


def test_a_period_with_the_camera_off_is_a_gap_not_zero_visits(tmp_path):
    db_path = tmp_path / "device.db"
    agg = Aggregator(PERIOD)
    for i in range(50):  # the first period watched at 10 frames/s for 5 s, with six visits
        agg.add_frame(SCENE_T0 + 5 + i * 0.1, 0.1)
    for i in range(6):
        agg.add(visit(SCENE_T0 + 5 + i))
    agg.add_camera_change(SCENE_T0 + PERIOD + 1)  # then the camera went off for the whole next period
    agg.note_watching(SCENE_T0 + PERIOD + 2)
    AggregateStore(open_db(db_path)).write(agg.drain())
    report(
        "--db",
        str(db_path),
        "--config",
        str(config(tmp_path)),
        "--out",
        str(tmp_path / "r.html"),
        "--csv",
        str(tmp_path / "csv"),
    )
    timeline = read_csv(tmp_path / "csv" / "timeline.csv")
    assert [(r["visits"], r["watched_s"]) for r in timeline] == [("6", "5.0"), ("0", "0.0")]
    coverage = {r["item"]: r["value"] for r in read_csv(tmp_path / "csv" / "coverage.csv")}
    assert coverage["time watched (frames analysed)"].startswith("5 s of 120 s")
    assert coverage["periods with no frame analysed (camera off: a gap, not zero visits)"] == "1"


@pytest.fixture(scope="module")
def postgres():
    pg = Postgres().start()
    yield pg
    pg.stop()


def test_report_from_a_postgres_collector_equals_the_device_report_and_shows_gaps(scene_report, postgres, tmp_path):
    report_dir, db_path, _ = scene_report
    data = from_device_db(db_path, k=K, period_s=PERIOD, device_id="dev-1", store_id="store-1")
    store = CollectorStore(postgres.url)
    store._run("DELETE FROM summaries")
    for seq, msg in enumerate(data.summaries, start=1):
        if seq != 2:  # one summary never arrived
            assert store.add_summary({**msg, "seq": seq})
    assert not store.add_summary({**data.summaries[0], "seq": 1})  # redelivered: ignored
    store.close()
    out = report(
        "--db",
        postgres.url,
        "--out",
        str(tmp_path / "fleet.html"),
        "--csv",
        str(tmp_path / "csv"),
        "--store",
        "store-1",
    )
    assert out["devices"] == ["dev-1"] and out["summaries"] == len(data.summaries) - 1
    coverage = {r["item"]: r["value"] for r in read_csv(tmp_path / "csv" / "coverage.csv")}
    assert coverage["missing summaries (seq gaps)"] == "dev-1: 1 (2)"
    # with the missing period left out, the per-zone totals are the device's minus that period's
    second = data.summaries[1]
    device_rows = {r["zone"]: r for r in read_csv(report_dir / "csv" / "interest.csv")}
    fleet_rows = {r["zone"]: r for r in read_csv(tmp_path / "csv" / "interest.csv")}
    for zone, row in device_rows.items():
        missing = next((z["visits"] for z in second["zones"] if z["zone"] == zone), 0) or 0
        assert int(fleet_rows[zone]["visits"]) == int(row["visits"]) - missing, zone
    assert re.search(r'id="chart-timeline"', (tmp_path / "fleet.html").read_text())
