"""A small publisher interface around paho-mqtt 2.x (callback API v2, MQTT 5 by default).

paho objects never leave this module. Every callback is guarded: an exception
inside one would silently stop paho's network thread, so it is logged and kept
as :attr:`MqttClient.last_error` instead. paho's queue is memory only and is
bounded here (``max_inflight``, ``max_queued``); the durable queue is the outbox.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

log = logging.getLogger("kiosk.mqtt")


@dataclass(frozen=True)
class MqttOptions:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "kiosk"
    protocol: int = 5  # 5 (MQTT 5) or 4 (MQTT 3.1.1)
    keepalive: int = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never logged
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    max_inflight: int = 20
    max_queued: int = 100
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    clean_start: bool = True
    session_expiry_s: int = 0
    will_topic: str | None = None
    will_payload: bytes = b""


class PublishHandle:
    """Completed when the broker answers a QoS 1 publish (PUBACK)."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self.ok = False
        self.reason = ""

    def _finish(self, ok: bool, reason: str) -> None:
        self.ok, self.reason = ok, reason
        self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)


class MqttClient:
    def __init__(
        self,
        options: MqttOptions,
        on_message: Callable[[str, bytes], None] | None = None,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self.options = options
        self.last_error: str | None = None
        self._on_message_cb = on_message
        self._on_connected_cb = on_connected
        self._connected = threading.Event()
        self._handles: dict[int, PublishHandle] = {}
        self._early: dict[int, tuple[bool, str]] = {}  # PUBACKs that arrived before publish() returned
        self._lock = threading.Lock()  # guards the two dicts only; never held across a paho call
        self._subscriptions: list[tuple[str, int]] = []
        o = options
        protocol = paho.MQTTv5 if o.protocol == 5 else paho.MQTTv311
        kwargs = {"clean_session": o.clean_start} if protocol == paho.MQTTv311 else {}
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=o.client_id, protocol=protocol, **kwargs)
        self._client.max_inflight_messages_set(o.max_inflight)
        self._client.max_queued_messages_set(o.max_queued)
        # Jitter: each device waits a random base delay, so a fleet does not reconnect in lockstep.
        self._client.reconnect_delay_set(min_delay=max(1, int(o.reconnect_min_s * random.uniform(1.0, 3.0))),
                                         max_delay=int(o.reconnect_max_s * random.uniform(0.8, 1.2)))
        if o.username:
            self._client.username_pw_set(o.username, o.password)
        if o.ca_file:
            self._client.tls_set(ca_certs=o.ca_file, certfile=o.cert_file, keyfile=o.key_file,
                                 cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if o.will_topic:
            self._client.will_set(o.will_topic, o.will_payload, qos=1, retain=True)
        self._client.on_connect = self._guard(self._on_connect)
        self._client.on_disconnect = self._guard(self._on_disconnect)
        self._client.on_publish = self._guard(self._on_publish)
        self._client.on_message = self._guard(self._on_message)

    def _guard(self, fn):
        def wrapped(*args, **kwargs):
            try:
                fn(*args, **kwargs)
            except Exception as exc:  # never let paho's network thread die silently
                self.last_error = f"{fn.__name__}: {exc!r}"
                log.exception("MQTT callback %s failed", fn.__name__)
        return wrapped

    # --- paho callbacks ----------------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            log.error("MQTT connect to %s:%s refused: %s", self.options.host, self.options.port, reason_code)
            return
        self.last_error = None
        for topic, qos in self._subscriptions:
            client.subscribe(topic, qos)
        self._connected.set()
        if self._on_connected_cb is not None:
            self._on_connected_cb()
        log.info("MQTT connected to %s:%s", self.options.host, self.options.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        with self._lock:  # unacknowledged publishes stay in the outbox; their handles fail now
            handles, self._handles = self._handles, {}
            self._early.clear()
        for h in handles.values():
            h._finish(False, f"disconnected ({reason_code})")

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # MQTT 5: < 0x80 is success (0x10 "no matching subscribers" included)
        result = (not reason_code.is_failure, str(reason_code))
        with self._lock:
            handle = self._handles.pop(mid, None)
            if handle is None:
                self._early[mid] = result
        if handle is not None:
            handle._finish(*result)

    def _on_message(self, client, userdata, message) -> None:
        if self._on_message_cb is not None:
            self._on_message_cb(message.topic, message.payload)

    # --- the interface ------------------------------------------------------------------------

    def start(self) -> None:
        o = self.options
        props = None
        if o.protocol == 5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = o.session_expiry_s
        self._client.connect_async(o.host, o.port, keepalive=o.keepalive,
                                   clean_start=o.clean_start if o.protocol == 5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
                                   properties=props)
        self._client.loop_start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self._subscriptions.append((topic, qos))
        if self.connected:
            self._client.subscribe(topic, qos)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> PublishHandle:
        handle = PublishHandle()
        info = self._client.publish(topic, payload, qos=qos, retain=retain)  # paho's own locking; not under ours
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            handle._finish(False, paho.error_string(info.rc))
        elif info.rc == paho.MQTT_ERR_NO_CONN:
            handle._finish(False, "not connected")
        elif qos == 0:
            handle._finish(True, "qos 0")
        else:
            with self._lock:
                early = self._early.pop(info.mid, None)
                if early is None:
                    self._handles[info.mid] = handle
            if early is not None:
                handle._finish(*early)
        return handle

    def stop(self, final: tuple[str, bytes] | None = None, timeout: float = 2.0) -> None:
        """Disconnect cleanly, after publishing ``final`` (topic, payload) retained when connected."""
        if final is not None and self.connected:
            self.publish(final[0], final[1], qos=1, retain=True).wait(timeout)
        self._client.disconnect()
        self._client.loop_stop()
