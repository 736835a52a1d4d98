"""The device's link to the broker: retained status, Will, and the outbox drainer thread."""

from __future__ import annotations

import datetime as dt
import json
import threading

from kiosk import __version__
from kiosk.mqtt.client import MqttClient, MqttOptions
from kiosk.mqtt.drain import OutboxDrainer
from kiosk.store.outbox import Outbox


class Topics:
    def __init__(self, prefix: str, store_id: str, device_id: str) -> None:
        base = f"{prefix}/{store_id}/{device_id}"
        self.summary = f"{base}/summary"
        self.status = f"{base}/status"
        self.stats = f"{base}/stats"
        self.commands = f"{base}/cmd/#"


class DeviceLink:
    """Publishes ``online`` (retained) on every connect; the broker publishes the retained
    ``offline`` Will when the device vanishes; :meth:`stop` publishes ``offline`` itself."""

    def __init__(self, options: MqttOptions, outbox: Outbox, *, prefix: str, store_id: str, device_id: str,
                 config_hash: str = "", models: dict | None = None, rate_per_s: float = 500.0) -> None:
        self.topics = Topics(prefix, store_id, device_id)
        self.store_id, self.device_id = store_id, device_id
        self.config_hash = config_hash
        self.models = dict(models or {})
        self.started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        options = MqttOptions(**{**options.__dict__, "will_topic": self.topics.status,
                                 "will_payload": self._status("offline").encode()})
        self.client = MqttClient(options, on_connected=self._announce)
        self.drainer = OutboxDrainer(outbox, self.client, self.topics.summary, window=options.max_inflight,
                                     rate_per_s=rate_per_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.drainer.run, args=(self._stop,), name="kiosk-publisher", daemon=True)

    def _status(self, state: str) -> str:
        return json.dumps({
            "schema": "kiosk.status", "schema_version": 1, "state": state, "device_id": self.device_id,
            "store_id": self.store_id, "version": __version__, "config_hash": self.config_hash, "models": self.models,
            "started_at": self.started_at, "error": getattr(getattr(self, "drainer", None), "last_error", None),
        })

    def _announce(self) -> None:
        self.client.publish(self.topics.status, self._status("online").encode(), qos=1, retain=True)

    def start(self) -> None:
        self.client.start()
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.client.stop(final=(self.topics.status, self._status("offline").encode()), timeout=timeout)
