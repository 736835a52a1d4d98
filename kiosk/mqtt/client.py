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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from kiosk.config.schema import MqttConfig, default

log = logging.getLogger("kiosk.mqtt")


@dataclass(frozen=True)
class MqttOptions:
    host: str = default(MqttConfig, "host")
    port: int = default(MqttConfig, "port")
    client_id: str = "kiosk"
    protocol: int = default(MqttConfig, "protocol")  # 5 (MQTT 5) or 4 (MQTT 3.1.1)
    keepalive: int = default(MqttConfig, "keepalive_s")
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never logged
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    max_inflight: int = default(MqttConfig, "max_inflight")
    max_queued: int = 100
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    clean_start: bool = True
    session_expiry_s: int = 0
    will_topic: str | None = None
    will_payload: bytes = b""


SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason code: another connection with the same client id
SHORT_LIVED_S = 60.0  # a connection dropped sooner than this is a flap, not a network blip
TAKEOVER_BACKOFF_S = (
    10.0  # after a takeover (or the second flap: 20 s), the least wait before connecting again, doubling to 40 s
)
TAKEOVER_QUIET_S = 300.0  # the alarm clears after this long without a flap


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
        self.alarm: str | None = None  # a condition an operator must fix (two devices, one client id)
        self.connects = 0
        self.takeovers = 0  # connections the broker dropped soon after it accepted them (or said: taken over)
        self._last_takeover = 0.0
        self._connected_at: float | None = None
        self._flaps = 0  # consecutive short-lived connections
        self._on_message_cb = on_message
        self._on_connected_cb = on_connected
        self._connected = threading.Event()
        self._handles: dict[int, PublishHandle] = {}
        self._early: dict[int, tuple[bool, str]] = {}  # PUBACKs that arrived before publish() returned
        self._lock = threading.Lock()  # guards the two dicts only; never held across a paho call
        self._subscriptions: list[tuple[str, int]] = []
        self._no_retained: list[str] = []  # topic filters whose retained messages are dropped
        self._sub_pending: set[int] = set()  # SUBSCRIBE mids without a SUBACK yet (guarded by _lock)
        self._sub_early: set[int] = set()  # SUBACKs that arrived before subscribe() noted the mid
        self._subscribed = threading.Event()  # every subscription of this connection acknowledged
        o = options
        protocol = paho.MQTTv5 if o.protocol == 5 else paho.MQTTv311
        # clean_session exists only in MQTT 3.1.1 (MQTT 5 has clean_start on connect)
        clean = o.clean_start if protocol == paho.MQTTv311 else None
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=o.client_id, protocol=protocol, clean_session=clean
        )
        self._client.max_inflight_messages_set(o.max_inflight)
        self._client.max_queued_messages_set(o.max_queued)
        self._set_reconnect_delay()
        if o.username:
            self._client.username_pw_set(o.username, o.password)
        if o.ca_file:
            self._client.tls_set(
                ca_certs=o.ca_file,
                certfile=o.cert_file,
                keyfile=o.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if o.will_topic:
            self._client.will_set(o.will_topic, o.will_payload, qos=1, retain=True)
        self._client.on_connect = self._guard(self._on_connect)
        self._client.on_disconnect = self._guard(self._on_disconnect)
        self._client.on_publish = self._guard(self._on_publish)
        self._client.on_subscribe = self._guard(self._on_subscribe)
        self._client.on_message = self._guard(self._on_message)
        self._client.on_connect_fail = self._guard(self._on_connect_fail)
        self._client.on_log = self._guard(self._on_log)

    def _set_reconnect_delay(self, at_least_s: float = 0.0) -> None:
        # Jitter: each device waits a random base delay, so a fleet does not reconnect in lockstep.
        o = self.options
        low = max(1, int(o.reconnect_min_s * random.uniform(1.0, 3.0)), int(at_least_s * random.uniform(1.0, 1.5)))
        self._client.reconnect_delay_set(
            min_delay=low, max_delay=max(low, int(o.reconnect_max_s * random.uniform(0.8, 1.2)))
        )

    def _guard(self, fn: Callable[..., None]) -> Callable[..., None]:
        def wrapped(*args: Any, **kwargs: Any) -> None:
            try:
                fn(*args, **kwargs)
            except Exception as exc:  # never let paho's network thread die silently
                self.last_error = f"{fn.__name__}: {exc!r}"
                log.exception("MQTT callback %s failed", fn.__name__)

        return wrapped

    # --- paho callbacks ----------------------------------------------------------------------

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: ReasonCode, properties: Any
    ) -> None:
        if reason_code.is_failure:
            error = f"broker refused the connection: {reason_code}"
            if "authori" in str(reason_code).lower() or "password" in str(reason_code).lower():
                error += " (check mqtt.username and the password file or variable)"
            if error != self.last_error:  # one line per new reason; paho retries with a growing delay
                log.error("MQTT connect to %s:%s: %s", self.options.host, self.options.port, error)
            self.last_error = error
            return
        self.last_error = None
        self.connects += 1
        self._connected_at = time.monotonic()
        if self.alarm and time.monotonic() - self._last_takeover > TAKEOVER_QUIET_S:
            log.info("MQTT: no dropped connection for %.0f s; normal reconnect delays again", TAKEOVER_QUIET_S)
            self.alarm = None
            self._flaps = 0
            self._set_reconnect_delay()
        self._subscribed.clear()
        with self._lock:
            self._sub_pending.clear()
            self._sub_early.clear()
        for topic, qos in self._subscriptions:
            self._note_subscribe(self._send_subscribe(client, topic, qos))
        self._check_subscribed()
        self._connected.set()
        if self._on_connected_cb is not None:
            self._on_connected_cb()
        log.info("MQTT connected to %s:%s", self.options.host, self.options.port)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        # paho says only that it failed; find out why (refused, unreachable, TLS), once per new reason
        if self._flaps:
            # the broker was away, so the connections it dropped were an outage (a broker restarting),
            # not another client taking this one's place: the flap count starts again and the takeover
            # minimum is lifted (paho's own doubling goes on until the next successful connect)
            self._flaps = 0
            self._set_reconnect_delay()
        reason = diagnose(self.options)
        if reason != self.last_error:
            log.error("MQTT cannot connect: %s", reason)
        self.last_error = reason

    def _on_log(self, client: paho.Client, userdata: Any, level: int, message: str) -> None:
        if level != paho.MQTT_LOG_ERR or "not connected" in message:  # the latter is a consequence, not a cause
            return
        error = f"connection to {self.options.host}:{self.options.port} lost: {message}"
        if "CERTIFICATE_REQUIRED" in message.upper():
            error += " (the broker wants a client certificate: set mqtt.cert_file and mqtt.key_file)"
        elif "UNKNOWN_CA" in message.upper() or "BAD_CERTIFICATE" in message.upper():
            error += " (the broker does not trust the client certificate: is it signed by the broker's CA?)"
        if error != self.last_error:
            log.error("MQTT %s", error)
        self.last_error = error

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: ReasonCode, properties: Any
    ) -> None:
        self._connected.clear()
        lived = None if self._connected_at is None else time.monotonic() - self._connected_at
        self._connected_at = None
        taken = getattr(reason_code, "value", None) == SESSION_TAKEN_OVER
        if lived is not None and reason_code.is_failure and (taken or lived < SHORT_LIVED_S):
            # The broker dropped a connection it had just accepted. Mosquitto does so when another client
            # connects with the same client id (2.0 closes the socket without saying why); reconnecting
            # at once would throw that one out in turn, and the two would take turns for ever. Back off
            # from 10 s, doubling, and say why.
            self._flaps += 1
            self.takeovers += 1
            self._last_takeover = time.monotonic()
            self.alarm = (
                f"session_taken_over: the broker dropped this connection {lived:.0f} s after accepting it "
                f"({self.takeovers}x): does another client connect as {self.options.client_id!r} "
                "(two devices sharing mqtt.device_id), or does the broker restart again and again? "
                "reconnecting after a growing delay (20 to 60 s)"
            )
            if self._flaps in (2, 10) or self._flaps % 50 == 0:
                log.error("MQTT %s", self.alarm)
            if self._flaps >= 2 or taken:
                self._set_reconnect_delay(at_least_s=TAKEOVER_BACKOFF_S * 2 ** min(self._flaps - 1, 2))
        elif lived is not None and lived >= SHORT_LIVED_S:
            self._flaps = 0
        with self._lock:  # unacknowledged publishes stay in the outbox; their handles fail now
            handles, self._handles = self._handles, {}
            self._early.clear()
        for h in handles.values():
            h._finish(False, f"disconnected ({reason_code})")

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason_code: ReasonCode, properties: Any
    ) -> None:
        # MQTT 5: < 0x80 is success (0x10 "no matching subscribers" included)
        result = (not reason_code.is_failure, str(reason_code))
        with self._lock:
            handle = self._handles.pop(mid, None)
            if handle is None:
                self._early[mid] = result
        if handle is not None:
            handle._finish(*result)

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reason_codes: list[ReasonCode], properties: Any
    ) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:  # an ACL that forbids the topic: say so, the messages would never come
            error = f"broker refused a subscription: {', '.join(refused)} (check the broker's ACL for this client)"
            if error != self.last_error:
                log.error("MQTT %s", error)
            self.last_error = error
        with self._lock:
            if mid in self._sub_pending:
                self._sub_pending.discard(mid)
            else:
                self._sub_early.add(mid)
        self._check_subscribed()

    def _note_subscribe(self, mid: int | None) -> None:
        if mid is None:
            return
        with self._lock:
            if mid in self._sub_early:
                self._sub_early.discard(mid)
            else:
                self._sub_pending.add(mid)

    def _check_subscribed(self) -> None:
        with self._lock:
            done = not self._sub_pending
        if done:
            if not self._subscribed.is_set() and self._subscriptions:
                log.info("MQTT subscribed to %s", ", ".join(topic for topic, _ in self._subscriptions))
            self._subscribed.set()
        else:
            self._subscribed.clear()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if message.retain and any(paho.topic_matches_sub(f, message.topic) for f in self._no_retained):
            # a retained command would be carried out again at every restart of the device
            log.warning(
                "retained message on %s ignored: commands are sent without the retain flag", message.topic[:120]
            )
            return
        if self._on_message_cb is not None:
            self._on_message_cb(message.topic, bytes(message.payload))

    def _send_subscribe(self, client: paho.Client, topic: str, qos: int) -> int | None:
        """SUBSCRIBE; its mid. Under MQTT 5 the broker is asked not to send retained messages on
        topics that refuse them."""
        if self.options.protocol == 5 and topic in self._no_retained:
            options = SubscribeOptions(qos=qos, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
            mid: int | None = client.subscribe(topic, options=options)[1]
            return mid
        mid = client.subscribe(topic, qos)[1]
        return mid

    # --- the interface ------------------------------------------------------------------------

    def start(self) -> None:
        o = self.options
        props = None
        if o.protocol == 5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho's own
            props.SessionExpiryInterval = o.session_expiry_s
        # paho pings after a keepalive of silence and gives up a keepalive later (up to 2x to notice a
        # broker that stopped answering, a half-open TCP connection); pinging at 3/4 of it bounds that at 1.5x
        self._client.connect_async(
            o.host,
            o.port,
            keepalive=max(1, int(o.keepalive * 0.75)),
            clean_start=o.clean_start if o.protocol == 5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
        )
        self._client.loop_start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Connected, and the broker has answered every subscription (SUBACK): from then on,
        messages published to those topics reach this client."""
        deadline = time.monotonic() + timeout
        return self._connected.wait(timeout) and self._subscribed.wait(max(0.0, deadline - time.monotonic()))

    def subscribe(self, topic: str, qos: int = 1, retained: bool = True) -> None:
        """``retained=False``: retained messages on this topic filter are never delivered (asked of
        the broker under MQTT 5, and dropped here in any case)."""
        self._subscriptions.append((topic, qos))
        if not retained:
            self._no_retained.append(topic)
        if self.connected:
            self._subscribed.clear()
            self._note_subscribe(self._send_subscribe(self._client, topic, qos))
            self._check_subscribed()

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


def diagnose(o: MqttOptions, timeout: float = 3.0) -> str:
    """Why a connection to the broker fails, in words an operator can act on (no secret included)."""
    import socket

    where = f"{o.host}:{o.port}"
    try:
        sock = socket.create_connection((o.host, o.port), timeout=timeout)
    except socket.gaierror as exc:
        return f"cannot resolve broker host {o.host!r} ({exc.strerror}); check mqtt.host and DNS"
    except ConnectionRefusedError:
        return f"connection refused by {where}: is the broker running and listening on that port (mqtt.port)?"
    except TimeoutError:
        return f"no answer from {where} within {timeout:.0f} s: network down or a firewall in the way"
    except OSError as exc:
        return f"cannot reach {where}: {exc.strerror or exc}"
    with sock:
        if not o.ca_file:
            return f"{where} accepts TCP but the MQTT connection failed (a TLS-only port? then set mqtt.ca_file)"
        try:
            ctx = ssl.create_default_context(cafile=o.ca_file)
            if o.cert_file:
                ctx.load_cert_chain(o.cert_file, o.key_file)
        except (OSError, ssl.SSLError) as exc:
            return f"TLS files unusable (mqtt.ca_file / cert_file / key_file): {exc}"
        try:
            with ctx.wrap_socket(sock, server_hostname=o.host) as tls:
                tls.do_handshake()
                tls.settimeout(1.0)  # TLS 1.3: a refused client certificate shows only after the handshake
                try:
                    tls.recv(1)
                except TimeoutError:
                    pass
        except ssl.SSLCertVerificationError as exc:
            return (
                f"TLS: the broker's certificate was refused: {exc.verify_message}; is mqtt.ca_file the CA "
                f"that signed it, and does the certificate name {o.host!r}?"
            )
        except (ssl.SSLError, OSError) as exc:
            hint = " (the broker may want a client certificate: mqtt.cert_file and key_file)" if not o.cert_file else ""
            return f"TLS handshake with {where} failed: {exc}{hint}"
    return f"{where} accepts TLS but the MQTT connection failed"
