"""The fleet side's commands: ``kiosk collect``, ``kiosk report`` and ``kiosk watch`` (added to the
``kiosk`` group by kiosk.cli). They load no stage of the device: tests/test_imports.py checks it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kiosk.cli_support import broker_address, load_config_or_exit, stop_on_signals


@click.command()
@click.option("--broker", default="mqtt://127.0.0.1:1883", show_default=True, help="mqtt://host:port")
@click.option(
    "--db",
    "db_path",
    required=True,
    help="Where the summaries are stored, idempotently by (device, seq): an SQLite file, or "
    "postgresql://user@host/dbname for a fleet.",
)
@click.option("--prefix", default="kiosk", show_default=True)
@click.option("--client-id", default="kiosk-collector", show_default=True)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: until SIGTERM).")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Log lines on stderr; debug adds one line per summary stored or sent again.",
)
@click.option(
    "--republish-every",
    "republish_every_s",
    type=float,
    default=30.0,
    show_default=True,
    help="Ask a device with missing seqs to send them again at most this often (seconds); 0: never ask.",
)
def collect(
    broker: str,
    db_path: str,
    prefix: str,
    client_id: str,
    duration: float | None,
    log_level: str,
    republish_every_s: float,
) -> None:
    """Central collector: subscribe to every device's summaries and status, validate, store, report gaps.
    The report (JSON) is printed on stdout when it stops."""
    from kiosk import logs
    from kiosk.fleet.collector import Collector
    from kiosk.fleet.database import CollectorStore
    from kiosk.mqtt.client import MqttOptions

    host, port = broker_address(broker)
    try:
        store = CollectorStore(db_path)
    except Exception as exc:  # sqlite3.Error, psycopg.Error, a missing driver
        raise click.ClickException(f"cannot open the collector database {db_path}: {exc}") from None
    collector = Collector(
        MqttOptions(host=host, port=port, client_id=client_id, clean_start=False, session_expiry_s=7 * 86400),
        store,
        prefix,
        republish_every_s,
    )
    logs.configure(log_level, stream=sys.stderr)
    done = stop_on_signals()
    collector.start()
    done.wait(duration)
    collector.stop()
    report = {
        "received": collector.received,
        "invalid": store.invalid,
        "duplicates": store.duplicates,
        "gaps": {g.device_id: list(g.missing) for g in store.gaps()},
    }
    click.echo(json.dumps(report))


@click.command()
@click.option(
    "--db",
    "db",
    required=True,
    help="A device database (store.path) or a collector database (SQLite file or postgresql://...).",
)
@click.option(
    "--out",
    "out_html",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("kiosk-report.html"),
    show_default=True,
    help="The HTML file to write (self-contained).",
)
@click.option(
    "--csv",
    "csv_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write the table behind every chart as CSV into this folder.",
)
@click.option(
    "--since", default=None, help="First moment, ISO 8601 (UTC unless stated), e.g. 2026-11-01 or 2026-11-01T08:00Z."
)
@click.option("--until", default=None, help="End of the range (exclusive), ISO 8601.")
@click.option("--device", "device_id", default=None, help="Collector databases: one device only.")
@click.option("--store", "store_id", default=None, help="Collector databases: one store only.")
@click.option("--compare", default=None, help="Two zones or two campaigns side by side: zone:A,B or content:A,B.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Device databases: the device's config (its period length, k and ids).",
)
@click.option("--title", default="kiosk report", show_default=True)
def report(
    db: str,
    out_html: Path,
    csv_dir: Path | None,
    since: str | None,
    until: str | None,
    device_id: str | None,
    store_id: str | None,
    compare: str | None,
    config_path: Path | None,
    title: str,
) -> None:
    """Write an HTML report (charts embedded) of product interest, reactions, demographics, timeline,
    a comparison and queues, from k-suppressed summaries only."""
    from kiosk.fleet.report.build import ReportOptions, make_report
    from kiosk.fleet.report.sources import from_collector, from_device_db, is_collector_db, parse_time

    try:
        lo, hi = parse_time(since), parse_time(until)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; use ISO 8601, e.g. 2026-11-01 or 2026-11-01T08:00Z") from None
    cmp = None
    if compare:
        kind, _, names = compare.partition(":")
        parts = [n for n in names.split(",") if n]
        if kind not in ("zone", "content") or len(parts) != 2:
            raise click.BadParameter(f"{compare!r}: expected zone:A,B or content:A,B", param_hint="--compare")
        cmp = (kind, parts[0], parts[1])
    if "://" not in db and not Path(db).is_file():
        raise click.ClickException(f"no database at {db}: give --db the device's store.path or a collector database")
    try:
        if is_collector_db(db):
            data = from_collector(db, since=lo, until=hi, device_id=device_id, store_id=store_id)
        else:
            cfg = load_config_or_exit(config_path)
            data = from_device_db(
                db,
                since=lo,
                until=hi,
                k=cfg.store.k_anonymity if config_path else None,
                period_s=cfg.store.period_s if config_path else None,
                device_id=cfg.mqtt.device_id,
                store_id=cfg.mqtt.store_id,
                config=cfg if config_path else None,
            )
    except FileNotFoundError as exc:
        raise click.ClickException(f"{exc}: give --db the device's store.path or a collector database") from None
    except Exception as exc:  # a database that is not kiosk's, a PostgreSQL server that is down
        raise click.ClickException(f"cannot read {db}: {exc}") from None
    range_text = f"{since or 'the beginning'} to {until or 'now'}"
    sections = make_report(data, out_html, ReportOptions(title=title, compare=cmp), range_text, csv_dir)
    charts_drawn = sum(s.png is not None for s in sections)
    click.echo(
        json.dumps(
            {
                "report": str(out_html),
                "csv": str(csv_dir) if csv_dir else None,
                "summaries": len(data.summaries),
                "devices": list(data.coverage.devices),
                "charts": charts_drawn,
            }
        )
    )


@click.command()
@click.option("--broker", default="mqtt://127.0.0.1:1883", show_default=True, help="mqtt://host:port")
@click.option("--prefix", default="kiosk", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON payloads, one per line.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: until Ctrl-C).")
def watch(broker: str, prefix: str, as_json: bool, duration: float | None) -> None:
    """Print every summary, status and stats message the devices publish, as they arrive."""
    import os

    from kiosk.fleet.watch import format_message
    from kiosk.mqtt.client import MqttClient, MqttOptions

    host, port = broker_address(broker)

    def show(topic: str, payload: bytes) -> None:
        click.echo(payload.decode(errors="replace") if as_json else format_message(topic, payload))

    client = MqttClient(MqttOptions(host=host, port=port, client_id=f"kiosk-watch-{os.getpid()}"), on_message=show)
    for kind in ("summary", "status", "stats"):
        client.subscribe(f"{prefix}/+/+/{kind}", 1)
    done = stop_on_signals()
    client.start()
    done.wait(duration)
    client.stop()
