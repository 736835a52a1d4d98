"""The central collector: the reference consumer of the summary and status feeds.

Subscribes to ``{prefix}/+/+/summary`` and ``{prefix}/+/+/status``, validates
every message against ``docs/schema``, stores summaries idempotently keyed by
(device, seq) and reports the gaps in each device's seqs.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kiosk.mqtt.client import MqttClient, MqttOptions

log = logging.getLogger("kiosk.collect")
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"


def load_validator(name: str):
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("the collector needs jsonschema: pip install 'kiosk[collect]'") from exc
    schema = json.loads((SCHEMA_DIR / name).read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@dataclass(frozen=True)
class Gap:
    device_id: str
    missing: tuple[int, ...]


class CollectorStore:
    """Summaries keyed by (device, seq); a repeated message is ignored."""

    def __init__(self, path: str | Path) -> None:
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS summaries (device_id TEXT NOT NULL, store_id TEXT NOT NULL, seq INTEGER NOT NULL, "
            "period_start TEXT NOT NULL, payload TEXT NOT NULL, received_at REAL NOT NULL, PRIMARY KEY (device_id, seq))"
        )
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS status (device_id TEXT PRIMARY KEY, store_id TEXT, state TEXT, payload TEXT, received_at REAL)"
        )
        self.lock = threading.Lock()
        self.duplicates = 0
        self.invalid = 0

    def add_summary(self, msg: dict) -> bool:
        with self.lock:
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO summaries VALUES (?, ?, ?, ?, ?, ?)",
                [msg["device_id"], msg["store_id"], msg["seq"], msg["period_start"], json.dumps(msg), time.time()],
            )
            if cur.rowcount == 0:
                self.duplicates += 1
            return cur.rowcount == 1

    def set_status(self, msg: dict) -> None:
        with self.lock:
            self.conn.execute("INSERT OR REPLACE INTO status VALUES (?, ?, ?, ?, ?)",
                              [msg["device_id"], msg["store_id"], msg["state"], json.dumps(msg), time.time()])

    def seqs(self, device_id: str) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT seq FROM summaries WHERE device_id = ? ORDER BY seq", [device_id])]

    def gaps(self) -> list[Gap]:
        out = []
        for (device,) in self.conn.execute("SELECT DISTINCT device_id FROM summaries ORDER BY device_id").fetchall():
            have = self.seqs(device)
            missing = sorted(set(range(have[0], have[-1] + 1)) - set(have))
            out.append(Gap(device, tuple(missing)))
        return out

    def status_of(self, device_id: str) -> str | None:
        row = self.conn.execute("SELECT state FROM status WHERE device_id = ?", [device_id]).fetchone()
        return row[0] if row else None


class Collector:
    def __init__(self, options: MqttOptions, store: CollectorStore, prefix: str = "kiosk") -> None:
        self.store = store
        self.prefix = prefix
        self.summary_validator = load_validator("summary.v1.json")
        self.status_validator = load_validator("status.v1.json")
        self.received = 0
        self.client = MqttClient(options, on_message=self._on_message)
        self.client.subscribe(f"{prefix}/+/+/summary", 1)
        self.client.subscribe(f"{prefix}/+/+/status", 1)

    def _on_message(self, topic: str, payload: bytes) -> None:
        kind = topic.rsplit("/", 1)[-1]
        try:
            msg = json.loads(payload)
        except ValueError:
            self.store.invalid += 1
            log.warning("not JSON on %s", topic)
            return
        validator = self.summary_validator if kind == "summary" else self.status_validator
        errors = sorted(validator.iter_errors(msg), key=lambda e: list(e.path))
        if errors:
            self.store.invalid += 1
            log.warning("invalid %s on %s: %s", kind, topic, errors[0].message)
            return
        self.received += 1
        if kind == "summary":
            self.store.add_summary(msg)
        else:
            self.store.set_status(msg)

    def start(self) -> None:
        self.client.start()

    def stop(self) -> None:
        self.client.stop()
