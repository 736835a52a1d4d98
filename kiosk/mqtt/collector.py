"""The central collector: the reference consumer of the summary and status feeds.

Subscribes to ``{prefix}/+/+/summary`` and ``{prefix}/+/+/status``, validates
every message against ``docs/schema``, stores summaries idempotently keyed by
(device, seq) in SQLite or PostgreSQL (:mod:`kiosk.collectdb`) and reports the
gaps in each device's seqs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from kiosk.collectdb import CollectorStore
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
            if self.store.add_summary(msg):
                log.debug("summary %s seq %s stored", msg["device_id"], msg["seq"])
            else:
                log.debug("summary %s seq %s already stored (sent again)", msg["device_id"], msg["seq"])
        else:
            self.store.set_status(msg)

    def start(self) -> None:
        self.client.start()

    def stop(self) -> None:
        self.client.stop()
