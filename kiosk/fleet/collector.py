"""The central collector: the reference consumer of the summary and status feeds.

Subscribes to ``{prefix}/+/+/summary`` and ``{prefix}/+/+/status``, validates
every message (the current versions with the payload models of :mod:`kiosk.payloads`, from which
``docs/schema`` is generated; summary version 1 against its schema), stores summaries idempotently keyed by
(device, seq) in SQLite or PostgreSQL (:mod:`kiosk.fleet.database`) and reports the
gaps in each device's seqs.

It also closes the loop: when a device's seqs have a gap (a broker restarted
without persistence and dropped this collector's session, say), it asks that
device to send them again (``cmd/republish`` from the first missing seq), at
most once per ``republish_every_s`` per device and three times for one gap, so
the central store converges to no gap by itself.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from importlib import resources

from pydantic import BaseModel, ValidationError

from kiosk.fleet.database import CollectorStore
from kiosk.mqtt.client import MqttClient, MqttOptions
from kiosk.payloads.status import Status
from kiosk.payloads.summary import Summary

log = logging.getLogger("kiosk.collect")
SCHEMA_DIR = resources.files("kiosk.payloads") / "schema"  # docs/schema, carried by the package


def load_validator(name: str):
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("the collector needs jsonschema: pip install 'kiosk[collect]'") from exc
    schema = json.loads((SCHEMA_DIR / name).read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _schema_check(validator) -> Callable[[object], str | None]:
    def check(msg: object) -> str | None:
        errors = sorted(validator.iter_errors(msg), key=lambda e: list(e.path))
        return errors[0].message if errors else None

    return check


def _model_check(model: type[BaseModel]) -> Callable[[object], str | None]:
    def check(msg: object) -> str | None:
        try:
            model.model_validate(msg)
        except ValidationError as exc:
            first = exc.errors()[0]
            return f"{'.'.join(map(str, first['loc'])) or '(top level)'}: {first['msg']}"
        return None

    return check


class Collector:
    MAX_REQUESTS_PER_GAP = 3

    def __init__(
        self, options: MqttOptions, store: CollectorStore, prefix: str = "kiosk", republish_every_s: float = 30.0
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.republish_every_s = republish_every_s
        self.republish_requests = 0
        self._asked: dict[str, tuple[float, int, int]] = {}  # device -> (when, from_seq, times asked for it)
        self._stores: dict[str, str] = {}  # device -> its store id (for the command topic)
        # a fleet mixes versions while it is upgraded: each summary is checked against its own; the
        # current versions through the very models the device builds them with, version 1 by its schema
        self.summary_validators = {1: _schema_check(load_validator("summary.v1.json")), 2: _model_check(Summary)}
        self.status_validator = _model_check(Status)
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
        if kind == "summary":
            version = msg.get("schema_version") if isinstance(msg, dict) else None
            validator = self.summary_validators.get(version) if type(version) is int else None
            if validator is None:
                self.store.invalid += 1
                log.warning(
                    "summary on %s has schema_version %r; this collector knows %s",
                    topic,
                    version,
                    sorted(self.summary_validators),
                )
                return
        else:
            validator = self.status_validator
        error = validator(msg)
        if error:
            self.store.invalid += 1
            log.warning("invalid %s on %s: %s", kind, topic, error)
            return
        self.received += 1
        self._stores[msg["device_id"]] = msg["store_id"]
        if kind == "summary":
            if self.store.add_summary(msg):
                log.debug("summary %s seq %s stored", msg["device_id"], msg["seq"])
            else:
                log.debug("summary %s seq %s already stored (sent again)", msg["device_id"], msg["seq"])
            self._ask_for_missing(msg["device_id"])
        else:
            self.store.set_status(msg)

    def _ask_for_missing(self, device_id: str) -> None:
        """Ask a device for the first seq missing below its newest one (rate-limited, bounded)."""
        if self.republish_every_s <= 0:
            return
        now = time.monotonic()
        when, asked_from, times = self._asked.get(device_id, (float("-inf"), 0, 0))
        if now - when < self.republish_every_s:
            return
        have = self.store.seqs(device_id)
        seen = set(have)
        missing = [s for s in range(1, have[-1]) if s not in seen] if have else []
        if not missing:
            self._asked[device_id] = (now, 0, 0)  # checked: the next check comes an interval later
            return
        first = missing[0]
        times = times + 1 if first == asked_from else 1
        if times > self.MAX_REQUESTS_PER_GAP:
            if times == self.MAX_REQUESTS_PER_GAP + 1:
                log.warning(
                    "device %s: seq %d and after still missing after %d requests; the device no longer "
                    "holds them (its outbox bound or keep_sent_days)",
                    device_id,
                    first,
                    self.MAX_REQUESTS_PER_GAP,
                )
                self._asked[device_id] = (now, first, times)
            return
        topic = f"{self.prefix}/{self._stores[device_id]}/{device_id}/cmd/republish"
        self.client.publish(topic, json.dumps({"from_seq": first, "id": f"collector-gap-{first}"}), qos=1)
        self._asked[device_id] = (now, first, times)
        self.republish_requests += 1
        log.info("device %s: %d seq(s) missing from %d; asked it to republish", device_id, len(missing), first)

    def start(self) -> None:
        self.client.start()

    def stop(self) -> None:
        self.client.stop()
