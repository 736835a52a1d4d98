"""One self-contained HTML report (charts embedded as PNG, no network needed) and, optionally,
the CSV tables behind every chart."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiosk import __version__
from kiosk.fleet.report import charts, tables
from kiosk.fleet.report.sources import ReportData

SECTIONS = ("interest", "reactions", "demographics", "timeline", "comparison", "queues", "audience")
SUPPRESSIBLE = {"timeline", "queues"}  # per-period tables: None there is a figure hidden by the disclosure rules
NOT_COUNTS = {"watched_s", "waiting_mean_s", "content"}  # None in these columns means "not reported", never hidden


@dataclass(frozen=True)
class ReportOptions:
    title: str = "kiosk report"
    compare: tuple[str, str, str] | None = None  # (zone|content, a, b)


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    explain: str
    tables: dict  # name -> rows
    png: bytes | None
    empty: str | None = None  # why there is no chart


def _section(
    key: str, title: str, explain: str, tables_: dict, has_data: bool, chart: Callable[[], bytes], empty: str
) -> Section:
    """A section with the chart ``chart()`` draws when it has data; without data, no chart and
    ``empty`` says why."""
    return Section(key, title, explain, tables_, chart() if has_data else None, None if has_data else empty)


def build_sections(data: ReportData, options: ReportOptions) -> list[Section]:
    s = data.summaries
    out = []
    interest = tables.interest(s)
    out.append(
        _section(
            "interest",
            "1. Product interest per zone",
            "Visits (people who stopped at least min_dwell_s), the share who looked at the shelf, "
            "and median dwell and attention. Totals add the published figures; a period in which a "
            "zone had fewer than k visits is not counted and is noted as suppressed.",
            {"interest": interest},
            bool(interest),
            lambda: charts.interest_chart(interest),
            "No visits in this range.",
        )
    )
    reactions = tables.reactions(s)
    has_reactions = any(r["visits"] for r in reactions)
    out.append(
        _section(
            "reactions",
            "2. Reaction mix per zone",
            "Dominant emotion over each visit, and the first reaction (the first seconds of "
            "attention), as shares of the visits whose emotion was published.",
            {"reactions": reactions},
            has_reactions,
            lambda: charts.reactions_chart(reactions),
            "No published emotion counts in this range.",
        )
    )
    ages, genders = tables.splits(s, "age_bands"), tables.splits(s, "gender")
    out.append(
        _section(
            "demographics",
            "3. Visits by age band and by gender",
            "One attribute at a time, never crossed: the device publishes no finer split. '+<k' marks "
            "a value hidden in at least one period.",
            {"age_bands": ages, "gender": genders},
            bool(ages or genders),
            lambda: charts.splits_chart(ages, genders),
            "No visits in this range.",
        )
    )
    timeline = tables.timeline(s)
    out.append(
        _section(
            "timeline",
            "4. Timeline of visits and emotions per zone",
            "Per period: visits stacked by dominant emotion; hatched grey: suppressed (fewer than k); "
            "dashed lines mark a change of content/campaign label.",
            {"timeline": timeline},
            bool(timeline),
            lambda: charts.timeline_chart(timeline),
            "No periods in this range.",
        )
    )
    if options.compare:
        kind, a, b = options.compare
        rows = tables.compare(s, kind, a, b)
        usable = any(r["cells"] for r in rows)
        explain = f"{kind} {a!r} against {b!r}." + (
            " A campaign's figures come from the periods in which every visit of a zone was under that label."
            if kind == "content"
            else ""
        )
        out.append(
            _section(
                "comparison",
                "5. Comparison",
                explain,
                {"comparison": rows},
                usable,
                lambda: charts.compare_chart(rows),
                f"Neither {a!r} nor {b!r} has data in this range.",
            )
        )
    else:
        out.append(
            Section(
                "comparison",
                "5. Comparison",
                "",
                {},
                None,
                "Choose two zones or two campaigns with --compare zone:A,B or --compare content:A,B.",
            )
        )
    queues = tables.queues(s)
    out.append(
        _section(
            "queues",
            "6. Queue zones",
            "People waiting (mean and peak of 1 Hz head counts) and the mean waiting time (dwell of "
            "visits in the queue zone) per period.",
            {"queues": queues},
            bool(queues),
            lambda: charts.queue_chart(queues),
            "No queue zone in this range.",
        )
    )
    audience, dist = tables.audience(s), tables.distributions(s)
    out.append(
        _section(
            "audience",
            "7. Audience measures",
            "Opportunities to see (visits plus passers-by: faces seen in the zone), viewers (visits that looked "
            "at least min_attention_s), conversion (visits per opportunity) and viewer rate (viewers per "
            "opportunity), the dwell and attention distributions, and the audience per content label (proof of "
            "play). Definitions: docs/audience.md. Each figure adds published figures only; a ratio is taken "
            "over the periods that publish all of its terms.",
            {"audience": audience, "distributions": dist, "audience_by_content": tables.audience_by_content(s)},
            bool(audience),
            lambda: charts.audience_chart(audience, dist),
            "No zone figures in this range.",
        )
    )
    return out


def _cell(value, table: str, column: str = "") -> str:
    if value is None:
        if table in SUPPRESSIBLE and column not in NOT_COUNTS:
            return '<td class="suppressed" title="fewer than k people, or hidden beside such a figure">suppressed</td>'
        return '<td class="na">-</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(name: str, rows: list[dict]) -> str:
    if not rows:
        return f'<p class="empty">No rows in table {html.escape(name)}.</p>'
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "\n".join("<tr>" + "".join(_cell(r[c], name, c) for c in cols) + "</tr>" for r in rows)
    return (
        f'<table class="data" id="table-{html.escape(name)}"><caption>{html.escape(name)}.csv</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{margin-bottom:0}.sub{color:#666;margin-top:.2em}
section{border-top:1px solid #ddd;padding-top:.5em;margin-top:1.5em}
img{max-width:100%}table{border-collapse:collapse;font-size:12px;margin:.5em 0}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}th{background:#f4f4f4}
td.suppressed{color:#888;background:repeating-linear-gradient(45deg,#f3f3f3,#f3f3f3 4px,#e6e6e6 4px,#e6e6e6 8px)}
td.na{color:#aaa}.empty{color:#666;font-style:italic}.tables{display:none}.tables.open{display:block}
button{font-size:12px;margin:.3em 0}caption{text-align:left;color:#666}
"""

SCRIPT = """
document.querySelectorAll('button.toggle').forEach(function (b) {
  b.addEventListener('click', function () {
    var t = document.getElementById(b.dataset.target);
    t.classList.toggle('open');
    b.textContent = t.classList.contains('open') ? 'Hide the tables' : 'Show the tables';
  });
});
"""


def render_html(data: ReportData, sections: list[Section], options: ReportOptions, range_text: str) -> str:
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(options.title)}'
        f"</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(options.title)}</h1>",
        f'<p class="sub">{html.escape(range_text)} · made {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC '
        f"by kiosk {__version__} · anonymous aggregates only; figures for fewer than k people are suppressed "
        f"and shown as such, never as zero.</p>",
        '<section id="coverage"><h2>Coverage</h2>',
        _table("coverage", tables.coverage_rows(data.coverage)),
    ]
    if not data.summaries:
        parts.append(
            '<p class="empty">There is no data for this selection and range: no period summary was '
            "found. Check the range (--since/--until), the device or store id, and that the database is the "
            "one the device or collector writes.</p>"
        )
    parts.append("</section>")
    for sec in sections:
        parts.append(f'<section id="{sec.key}"><h2>{html.escape(sec.title)}</h2>')
        if sec.explain:
            parts.append(f"<p>{html.escape(sec.explain)}</p>")
        if sec.png is not None:
            b64 = base64.b64encode(sec.png).decode()
            parts.append(
                f'<img class="chart" id="chart-{sec.key}" alt="{html.escape(sec.title)}" '
                f'src="data:image/png;base64,{b64}">'
            )
        else:
            parts.append(f'<p class="empty">{html.escape(sec.empty or "No data.")}</p>')
        if sec.tables and any(sec.tables.values()):
            parts.append(
                f'<button class="toggle" data-target="tables-{sec.key}">Show the tables</button>'
                f'<div class="tables" id="tables-{sec.key}">'
            )
            parts.extend(_table(name, rows) for name, rows in sec.tables.items())
            parts.append("</div>")
        parts.append("</section>")
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def write_csv(sections: list[Section], data: ReportData, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    all_tables = {"coverage": tables.coverage_rows(data.coverage)}
    for sec in sections:
        all_tables.update(sec.tables)
    for name, rows in all_tables.items():
        path = out_dir / f"{name}.csv"
        with path.open("w", newline="") as fh:
            if rows:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                w.writeheader()
                for r in rows:
                    w.writerow(
                        {
                            k: ("suppressed" if name in SUPPRESSIBLE and k not in NOT_COUNTS else "")
                            if v is None
                            else v
                            for k, v in r.items()
                        }
                    )
        written.append(path)
    return written


def make_report(
    data: ReportData, out_html: Path, options: ReportOptions, range_text: str, csv_dir: Path | None = None
) -> list[Section]:
    sections = build_sections(data, options)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(render_html(data, sections, options, range_text), encoding="utf-8")
    if csv_dir is not None:
        write_csv(sections, data, csv_dir)
    return sections
