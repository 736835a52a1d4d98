"""The device's broker link against a real Mosquitto: TLS and mutual TLS, MQTT 3.1.1, reconnect
backoff, the outbox cap during an outage, commands and stats."""

from __future__ import annotations

import json
import threading
import time

import pytest

from kiosk.fleet.collector import Collector, load_validator
from kiosk.fleet.database import CollectorStore
from kiosk.mqtt.client import MqttClient, MqttOptions
from kiosk.publishing.drain import OutboxDrainer
from kiosk.publishing.link import DeviceLink
from kiosk.store.db import open_db
from kiosk.store.outbox import Outbox
from kiosk.summary import build_summary
from tests.broker import Broker
from tests.certs import make_certs
from tests.helpers import T0, TOPIC, context, fill, wait_for
from tests.helpers import queue_summaries as _queue


def _drain_thread(outbox: Outbox, client: MqttClient):
    drainer = OutboxDrainer(outbox, client, TOPIC, window=10)
    stop = threading.Event()
    thread = threading.Thread(target=drainer.run, args=(stop,), name="kiosk-publisher", daemon=True)
    thread.start()
    return drainer, stop, thread


@pytest.fixture
def certs(tmp_path):
    return make_certs(tmp_path / "certs")


def _tls_broker(tmp_path, certs) -> Broker:
    b = Broker(
        tmp_path / "tls-broker",
        extra=(
            f"cafile {certs.ca}\ncertfile {certs.server_cert}\nkeyfile {certs.server_key}\n"
            "require_certificate true\ntls_version tlsv1.2\n"
        ),
    )
    return b.start()


def test_mutual_tls_delivers_and_a_wrong_ca_or_missing_client_cert_is_refused_clearly(tmp_path, certs):
    b = _tls_broker(tmp_path, certs)
    try:
        db = open_db(tmp_path / "device.db")
        fill(db, 5)
        outbox = _queue(db, 5)
        store = CollectorStore(tmp_path / "central.db")
        collector = Collector(
            MqttOptions(
                port=b.port,
                client_id="collector",
                ca_file=str(certs.ca),
                cert_file=str(certs.client_cert),
                key_file=str(certs.client_key),
            ),
            store,
        )
        collector.start()
        assert collector.client.wait_subscribed(10), collector.client.last_error
        client = MqttClient(
            MqttOptions(
                port=b.port,
                client_id="dev-1",
                ca_file=str(certs.ca),
                cert_file=str(certs.client_cert),
                key_file=str(certs.client_key),
            )
        )
        client.start()
        assert client.wait_connected(10), client.last_error
        drainer, stop, thread = _drain_thread(outbox, client)
        assert wait_for(lambda: store.seqs("dev-1") == [1, 2, 3, 4, 5], 20), store.seqs("dev-1")
        # the collector may have them before the drainer has its PUBACKs and marks them: wait for that too
        assert wait_for(lambda: outbox.backlog()[0] == 0, 20), outbox.backlog()
        stop.set()
        thread.join(5)
        client.stop()
        collector.stop()

        wrong = MqttClient(
            MqttOptions(
                port=b.port,
                client_id="dev-2",
                ca_file=str(certs.other_ca),
                cert_file=str(certs.client_cert),
                key_file=str(certs.client_key),
            )
        )
        wrong.start()
        assert not wrong.wait_connected(4)
        assert wait_for(lambda: wrong.last_error is not None, 10)
        assert "certificate" in wrong.last_error and "mqtt.ca_file" in wrong.last_error, wrong.last_error
        wrong.stop()

        no_cert = MqttClient(MqttOptions(port=b.port, client_id="dev-3", ca_file=str(certs.ca)))
        no_cert.start()
        assert not no_cert.wait_connected(4)
        assert wait_for(lambda: no_cert.last_error is not None, 10)
        assert "client certificate" in no_cert.last_error and "mqtt.cert_file" in no_cert.last_error, no_cert.last_error
        no_cert.stop()
    finally:
        b.stop()


def test_mqtt_311_delivers_in_order(tmp_path, broker):
    store = CollectorStore(tmp_path / "central.db")
    collector = Collector(MqttOptions(port=broker.port, client_id="collector", protocol=4), store)
    collector.start()
    assert collector.client.wait_subscribed(10)
    db = open_db(tmp_path / "device.db")
    fill(db, 12)
    outbox = _queue(db, 12)
    client = MqttClient(MqttOptions(port=broker.port, client_id="dev-1", protocol=4))
    client.start()
    assert client.wait_connected(10)
    drainer, stop, thread = _drain_thread(outbox, client)
    try:
        assert wait_for(lambda: len(store.seqs("dev-1")) == 12, 20)
        assert wait_for(lambda: outbox.backlog()[0] == 0, 20)  # and each marked sent on its PUBACK
    finally:
        stop.set()
        thread.join(5)
        client.stop()
        collector.stop()
    assert store.seqs("dev-1") == list(range(1, 13)) and outbox.backlog()[0] == 0 and store.invalid == 0


def test_refused_connections_back_off_exponentially(tmp_path):
    """Each connection attempt is timed as the broker logs it (polled from its log file, which
    Mosquitto flushes per line): the gaps double, they are not a fixed retry."""
    b = Broker(tmp_path / "broker", users={"dev-1": "right"}, extra="log_type all\n")
    b.start()
    broker_log = tmp_path / "broker" / "mosquitto.log"
    seen: list[float] = []

    def attempts() -> int:  # MQTT CONNECTs only (Broker.start()'s TCP probe gets no CONNACK)
        count = broker_log.read_text().count("Sending CONNACK")
        while len(seen) < count:
            seen.append(time.monotonic())
        return count

    try:
        client = MqttClient(
            MqttOptions(
                port=b.port,
                client_id="dev-1",
                username="dev-1",
                password="wrong",
                reconnect_min_s=1,
                reconnect_max_s=30,
            )
        )
        client.start()
        assert wait_for(lambda: attempts() >= 4, 90, step=0.02), broker_log.read_text()[-2000:]
        client.stop()
    finally:
        b.stop()
    gaps = [b - a for a, b in zip(seen, seen[1:4])]
    assert gaps[0] >= 0.8, gaps  # paho waits at least reconnect_min_s (with jitter: 1-3 s)
    assert all(g2 >= 1.5 * g1 for g1, g2 in zip(gaps, gaps[1:])), gaps  # the delay doubles
    assert "Not authorized" in client.last_error and "password" in client.last_error
    assert "wrong" not in client.last_error  # the password is never shown


def test_outbox_cap_during_an_outage_drops_the_oldest_and_the_count_matches_the_gap(tmp_path, broker):
    store = CollectorStore(tmp_path / "central.db")
    collector = Collector(
        MqttOptions(
            port=broker.port, client_id="collector", clean_start=False, session_expiry_s=3600, reconnect_max_s=2
        ),
        store,
    )
    collector.start()
    assert collector.client.wait_subscribed(10)
    db = open_db(tmp_path / "device.db")
    fill(db, 40)
    outbox = _queue(db, 3, max_rows=10)  # seqs 1-3 go out while the network is up
    client = MqttClient(MqttOptions(port=broker.port, client_id="dev-1", reconnect_max_s=2))
    client.start()
    assert client.wait_connected(10)
    drainer, stop, thread = _drain_thread(Outbox(open_db(tmp_path / "device.db"), max_rows=10), client)
    try:
        assert wait_for(lambda: store.seqs("dev-1") == [1, 2, 3], 10)
        broker.stop()
        for p in range(3, 28):  # 25 periods close during the outage; the outbox holds 10
            outbox.close_period(
                T0 + p, lambda seq, dropped, p=p: build_summary(db, context(), T0 + p, seq, dropped, True)
            )
        assert outbox.backlog()[0] == 10 and outbox.dropped_total() == 15
        broker.start()
        assert wait_for(lambda: len(store.seqs("dev-1")) == 13, 30), store.seqs("dev-1")
    finally:
        stop.set()
        thread.join(5)
        client.stop()
        collector.stop()
    got = store.seqs("dev-1")
    assert got == [1, 2, 3] + list(range(19, 29))
    (gap,) = store.gaps()
    newest = store.payload("dev-1", 28)
    assert newest["dropped_summaries"] == len(gap.missing) == 15  # seqs 4-18, exactly


def test_commands_ping_republish_malformed_unknown_and_stats(tmp_path, broker):
    db = open_db(tmp_path / "device.db")
    fill(db, 5)
    _queue(db, 5)
    store = CollectorStore(tmp_path / "central.db")
    collector = Collector(MqttOptions(port=broker.port, client_id="collector"), store)
    collector.start()
    assert collector.client.wait_subscribed(10)
    seen: dict[str, list] = {"status": [], "stats": []}
    watcher = MqttClient(
        MqttOptions(port=broker.port, client_id="watcher"),
        on_message=lambda t, p: seen[t.rsplit("/", 1)[-1]].append(json.loads(p)),
    )
    watcher.subscribe("kiosk/+/+/status")
    watcher.subscribe("kiosk/+/+/stats")
    watcher.start()
    assert watcher.wait_subscribed(10)
    labels = []

    def content(payload: dict) -> str:
        labels.append(payload["label"])
        return f"content label set to {payload['label']!r}"

    link = DeviceLink(
        MqttOptions(port=broker.port, client_id="dev-1"),
        Outbox(open_db(tmp_path / "device.db")),
        prefix="kiosk",
        store_id="store-1",
        device_id="dev-1",
        stats_interval_s=1.0,
        stats=lambda: {"frames_per_s": 9.5, "camera_state": "online"},
        commands={"content": content},
    )
    link.start()
    base = "kiosk/store-1/dev-1/cmd/"
    status_v, stats_v = load_validator("status.v1.json"), load_validator("stats.v2.json")

    def last_command(name):
        return next(
            (
                s["last_command"]
                for s in reversed(seen["status"])
                if s.get("last_command") and s["last_command"]["name"] == name
            ),
            None,
        )

    try:
        assert wait_for(lambda: store.seqs("dev-1") == [1, 2, 3, 4, 5], 15)
        watcher.publish(base + "ping", json.dumps({"id": "abc-1"}))
        assert wait_for(lambda: last_command("ping") is not None, 10)
        assert last_command("ping") | {"at": None} == {
            "name": "ping",
            "id": "abc-1",
            "ok": True,
            "detail": "pong",
            "at": None,
        }

        watcher.publish(base + "republish", json.dumps({"from_seq": 3}))
        assert wait_for(lambda: store.duplicates == 3, 10), store.duplicates  # 3, 4, 5 sent again
        assert "3 summaries" in last_command("republish")["detail"]

        watcher.publish(base + "republish", b"{not json")
        assert wait_for(lambda: last_command("republish")["ok"] is False, 10)
        watcher.publish(base + "republish", json.dumps({"from_seq": "x"}))
        assert wait_for(lambda: "from_seq" in last_command("republish")["detail"], 10)
        count = len(seen["status"])
        watcher.publish(base + "selfdestruct", b"{}")  # unknown: logged and ignored
        watcher.publish(base + "content", json.dumps({"label": "winter-campaign"}))
        assert wait_for(lambda: last_command("content") is not None, 10)
        assert labels == ["winter-campaign"] and len(seen["status"]) == count + 1
        assert link.client.connected and store.seqs("dev-1") == [1, 2, 3, 4, 5]

        assert wait_for(lambda: len(seen["stats"]) >= 2, 10)
    finally:
        link.stop()
        watcher.stop()
        collector.stop()
    for s in seen["status"]:
        status_v.validate(s)
    for s in seen["stats"]:
        stats_v.validate(s)
    assert seen["stats"][-1]["frames_per_s"] == 9.5 and seen["stats"][-1]["outbox_backlog"] == 0
    assert seen["status"][-1]["state"] == "offline"


def test_acl_denial_keeps_rows_and_the_retained_status_says_why(tmp_path):
    acl = tmp_path / "acl"
    acl.write_text(
        "user dev-1\ntopic write kiosk/+/+/status\ntopic read kiosk/+/+/cmd/#\n\nuser watcher\ntopic read kiosk/#\n"
    )
    b = Broker(tmp_path / "broker", users={"dev-1": "secret", "watcher": "secret"}, extra=f"acl_file {acl}\n")
    b.start()
    db = open_db(tmp_path / "device.db")
    fill(db, 3)
    outbox = _queue(db, 3)
    statuses: list[dict] = []
    watcher = MqttClient(
        MqttOptions(port=b.port, client_id="watcher", username="watcher", password="secret"),
        on_message=lambda t, p: statuses.append(json.loads(p)),
    )
    watcher.subscribe("kiosk/+/+/status")
    watcher.start()
    link = DeviceLink(
        MqttOptions(port=b.port, client_id="dev-1", username="dev-1", password="secret"),
        Outbox(open_db(tmp_path / "device.db")),
        prefix="kiosk",
        store_id="store-1",
        device_id="dev-1",
    )
    try:
        assert watcher.wait_subscribed(10)
        link.start()
        assert wait_for(lambda: any("Not authorized" in (s.get("error") or "") for s in statuses), 15), statuses
        assert outbox.backlog()[0] == 3  # nothing lost
        assert statuses[-1]["state"] == "online"
    finally:
        link.stop()
        watcher.stop()
        b.stop()
    load_validator("status.v1.json").validate(statuses[-1])


def test_hostile_commands_are_refused_and_the_publisher_keeps_going(tmp_path, broker):
    """Payloads that once ended the publisher thread (a seq too large for SQLite, 3,000 bytes of
    '[', a retained command that came back at every start), and others: each is refused with its
    reason, and the device still answers a ping and drains afterwards."""
    from kiosk.payloads.commands import CommandError, parse_command

    db = open_db(tmp_path / "device.db")
    fill(db, 3)
    _queue(db, 3)
    seen: list[dict] = []
    watcher = MqttClient(
        MqttOptions(port=broker.port, client_id="watcher"), on_message=lambda t, p: seen.append(json.loads(p))
    )
    watcher.subscribe("kiosk/+/+/status")
    watcher.start()
    assert watcher.wait_subscribed(10)
    base = "kiosk/store-1/dev-1/cmd/"
    watcher.publish(base + "republish", json.dumps({"from_seq": 1}), retain=True).wait(5)  # waiting for the device
    link = DeviceLink(
        MqttOptions(port=broker.port, client_id="dev-1"),
        Outbox(open_db(tmp_path / "device.db")),
        prefix="kiosk",
        store_id="store-1",
        device_id="dev-1",
    )
    link.start()

    def last(name):
        return next(
            (s["last_command"] for s in reversed(seen) if s.get("last_command") and s["last_command"]["name"] == name),
            None,
        )

    hostile = [
        json.dumps({"from_seq": 10**30}),
        b"[" * 3000,
        b"{" * 10 + b"}" * 10,
        json.dumps({"from_seq": True}),
        json.dumps({"from_seq": 0}),
        json.dumps({"from_seq": 1.5}),
        json.dumps({"from_seq": 2, "extra": 1}),
        b"\xff\xfe",
        b"null",
        json.dumps([1, 2]),
        b"x" * 5000,
        json.dumps({"from_seq": 1, "id": "i" * 500}),
    ]
    try:
        assert wait_for(lambda: outbox_empty(tmp_path), 20)
        for i, payload in enumerate(hostile):
            watcher.publish(base + "republish", payload)
            assert wait_for(
                lambda: (
                    (c := last("republish")) is not None
                    and c["ok"] is False
                    and len([s for s in seen if s.get("last_command", {}) and s["last_command"]["name"] == "republish"])
                    >= i + 1
                ),
                10,
            ), (i, seen[-1:])
            with pytest.raises(CommandError):
                parse_command("republish", payload if isinstance(payload, bytes) else payload.encode())
        watcher.publish(base + "ping", json.dumps({"id": "still-there"}))
        assert wait_for(lambda: (c := last("ping")) is not None and c["id"] == "still-there", 10)
        assert link._thread.is_alive() and link.faults == 0 and link.client.connected
        details = [
            s["last_command"]["detail"]
            for s in seen
            if s.get("last_command") and s["last_command"]["name"] == "republish"
        ]
        assert any("less than or equal" in d for d in details) and any("deeper than" in d for d in details)
        assert all(d.startswith("ignored") for d in details)  # the retained republish was never carried out
        assert Outbox(open_db(tmp_path / "device.db")).backlog()[0] == 0
    finally:
        link.stop()
        watcher.stop()


def outbox_empty(tmp_path) -> bool:
    check = open_db(tmp_path / "device.db")
    try:
        return check.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0] == 0
    finally:
        check.conn.close()


def test_a_retained_command_is_ignored_under_mqtt_311_too(tmp_path, broker, caplog):
    """MQTT 3.1.1 has no 'do not send retained' subscription option: the device drops a retained
    command itself, with a logged reason, and still carries out the same command sent plainly."""
    import logging

    base = "kiosk/store-1/dev-1/cmd/"
    sender = MqttClient(MqttOptions(port=broker.port, client_id="sender", protocol=4))
    sender.start()
    assert sender.wait_connected(10)
    sender.publish(base + "ping", json.dumps({"id": "old"}), retain=True).wait(5)
    link = DeviceLink(
        MqttOptions(port=broker.port, client_id="dev-1", protocol=4),
        Outbox(open_db(tmp_path / "device.db")),
        prefix="kiosk",
        store_id="store-1",
        device_id="dev-1",
    )
    with caplog.at_level(logging.WARNING, logger="kiosk.mqtt"):
        link.start()
        try:
            assert wait_for(lambda: "retained message on kiosk/store-1/dev-1/cmd/ping ignored" in caplog.text, 15)
            assert link.last_command is None
            sender.publish(base + "ping", json.dumps({"id": "new"}))
            assert wait_for(lambda: link.last_command is not None, 10)
            assert link.last_command["id"] == "new"
        finally:
            link.stop()
            sender.stop()


def test_the_collector_asks_for_missing_seqs_and_converges_to_no_gap(tmp_path, broker):
    """A collector away without a persistent session misses seqs 3-5 (as after a broker restart
    without persistence); seq 6 reveals the gap, it asks the device to republish from 3, and the
    central store ends with every seq, with no person sending a command."""
    db = open_db(tmp_path / "device.db")
    fill(db, 8)
    _queue(db, 2)
    store = CollectorStore(tmp_path / "central.db")

    def collector() -> Collector:
        c = Collector(
            MqttOptions(port=broker.port, client_id="collector", clean_start=True), store, republish_every_s=1.0
        )
        c.start()
        assert c.client.wait_subscribed(10)
        return c

    central = collector()
    link = DeviceLink(
        MqttOptions(port=broker.port, client_id="dev-1"),
        Outbox(open_db(tmp_path / "device.db")),
        prefix="kiosk",
        store_id="store-1",
        device_id="dev-1",
    )
    link.start()
    try:
        assert wait_for(lambda: store.seqs("dev-1") == [1, 2], 20)
        central.stop()  # away, and its session is gone with it
        _queue(db, 3, start=2)  # seqs 3-5: sent, acknowledged by the broker, received by nobody
        assert wait_for(lambda: outbox_empty(tmp_path), 20)
        central = collector()
        _queue(db, 1, start=5)  # seq 6 arrives and shows the gap
        assert wait_for(lambda: store.seqs("dev-1") == [1, 2, 3, 4, 5, 6], 30), store.seqs("dev-1")
        assert central.republish_requests >= 1
        assert link.last_command["name"] == "republish" and link.last_command["id"] == "collector-gap-3"
    finally:
        link.stop()
        central.stop()
    assert [g.missing for g in store.gaps()] == [()]


def test_two_devices_with_one_client_id_do_not_storm_and_say_why(broker, tmp_path):
    """Mosquitto throws the older connection out when a second one uses its client id (MQTT 5 reason
    0x8E, session taken over). Reconnecting at once throws the other out in turn: a storm. Each
    client now waits 10-20 s after a takeover, and the status names the cause."""
    link = DeviceLink(
        MqttOptions(port=broker.port, client_id="dev-1"),
        Outbox(open_db(tmp_path / "device.db")),
        prefix="kiosk",
        store_id="store-1",
        device_id="dev-1",
    )
    twin = MqttClient(MqttOptions(port=broker.port, client_id="dev-1"))
    link.start()
    try:
        assert wait_for(lambda: link.client.connected, 10)
        twin.start()
        assert wait_for(lambda: link.client.takeovers + twin.takeovers >= 1, 15)
        before = link.client.connects + twin.connects
        started = time.monotonic()
        assert wait_for(lambda: time.monotonic() - started >= 20, 30)
        reconnects = link.client.connects + twin.connects - before
        assert reconnects <= 20 / 10 + 1, reconnects  # at most one per 10 s between the two (was one per 1-3 s)
        alarm = link.client.alarm or twin.alarm
        assert alarm and "mqtt.device_id" in alarm
        assert "session_taken_over" in (json.loads(link._status("online"))["error"] or "") or twin.alarm
    finally:
        link.stop(timeout=2)
        twin.stop()


def test_a_broker_that_stops_answering_is_noticed_within_one_and_a_half_keepalives(broker, tmp_path):
    """The broker SIGSTOPped (a half-open TCP connection: no RST, no answers): the link notices within
    1.5 x keepalive, publish() never blocks meanwhile, and after SIGCONT everything queued drains."""
    import os
    import signal

    db = open_db(tmp_path / "device.db")
    _queue(db, 3)
    link = DeviceLink(
        MqttOptions(port=broker.port, client_id="dev-1", keepalive=6),
        Outbox(open_db(tmp_path / "device.db")),
        prefix="kiosk",
        store_id="store-1",
        device_id="dev-1",
    )
    link.start()
    try:
        assert wait_for(lambda: link.outbox.backlog()[0] == 0, 15)
        os.kill(broker.proc.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        _queue(db, 5, start=3)  # periods close while the broker is silent
        slowest = 0.0
        while link.client.connected and time.monotonic() - stopped < 20:
            t = time.monotonic()
            link.client.publish("kiosk/store-1/dev-1/probe", b"x", qos=0)
            slowest = max(slowest, time.monotonic() - t)
            time.sleep(0.05)
        noticed = time.monotonic() - stopped
        assert not link.client.connected and noticed <= 1.5 * 6 + 0.5, noticed
        assert slowest < 0.1, slowest
        os.kill(broker.proc.pid, signal.SIGCONT)
        assert wait_for(lambda: link.outbox.backlog()[0] == 0, 60), link.outbox.backlog()
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
        link.stop(timeout=2)
        db.conn.close()


def test_a_thousand_random_command_payloads_end_no_thread(broker, tmp_path):
    """1,000 payloads a careless or hostile sender could publish (random bytes, deep nesting, huge and
    negative numbers, wrong types, unknown keys and commands, 5 KB strings) on the command topics:
    the publisher thread survives every one (no fault), and a ping afterwards is answered."""
    import random

    rng = random.Random(16)

    def nested(depth: int) -> str:
        return "[" * depth + "]" * depth if rng.random() < 0.5 else '{"a":' * depth + "1" + "}" * depth

    makers = [
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300))),
        lambda: nested(rng.randint(1, 3000)).encode(),
        lambda: json.dumps({"from_seq": rng.choice([0, -1, 10**30, 2**63, 1.5, "7", None, [], {}, True])}).encode(),
        lambda: json.dumps({"label": rng.choice(["", "x" * 5000, None, 3, ["a"], "winter"])}).encode(),
        lambda: json.dumps({"id": "x" * rng.randint(0, 500), "extra": rng.random()}).encode(),
        lambda: json.dumps(rng.choice([[], 1, "s", None, True, 1e308])).encode(),
        lambda: b"\xef\xbb\xbf" + json.dumps({"from_seq": 1}).encode(),
    ]
    seen_labels = []
    link = DeviceLink(
        MqttOptions(port=broker.port, client_id="dev-1"),
        Outbox(open_db(tmp_path / "device.db")),
        prefix="kiosk",
        store_id="store-1",
        device_id="dev-1",
        commands={"content": lambda p: seen_labels.append(p.get("label")) or "ok"},
    )
    sender = MqttClient(MqttOptions(port=broker.port, client_id="hostile"))
    link.start()
    sender.start()
    base = "kiosk/store-1/dev-1/cmd/"
    try:
        assert wait_for(lambda: link.client.connected and sender.connected, 10)
        for i in range(1000):
            name = rng.choice(["republish", "content", "ping", "selfdestruct", "", "a/b", "%00"])
            handle = sender.publish(base + name, makers[i % len(makers)](), qos=1)
            if i % 50 == 49:  # no faster than the broker acknowledges and the device works through them
                assert handle.wait(20)
                assert wait_for(lambda: link._commands.qsize() < 20, 20)
        sender.publish(base + "ping", json.dumps({"id": "after-the-storm"}), qos=1)
        assert wait_for(lambda: (link.last_command or {}).get("id") == "after-the-storm", 30), link.last_command
        assert link.faults == 0 and link._thread.is_alive() and link.client.connected
    finally:
        sender.stop()
        link.stop(timeout=2)
