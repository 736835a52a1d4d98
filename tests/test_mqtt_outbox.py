"""Store-and-forward against a real Mosquitto: outbox, seq, PUBACK, collector, schema."""

from __future__ import annotations

import json
import threading

from kiosk.fleet.collector import Collector, load_validator
from kiosk.fleet.database import CollectorStore
from kiosk.mqtt.client import MqttClient, MqttOptions
from kiosk.publishing.drain import OutboxDrainer
from kiosk.store.db import open_db
from kiosk.store.outbox import Outbox
from kiosk.summary import build_summary
from tests.broker import Broker
from tests.helpers import T0, TOPIC, context, fill, wait_for


def test_summary_payload_validates_and_holds_no_small_cell(tmp_path):
    db = open_db(tmp_path / "d.db")
    fill(db, 1, 300)
    msg = build_summary(db, context(300), T0, seq=1, dropped=0, clock_synced=True)
    load_validator("summary.v2.json").validate(msg)
    (zone,) = msg["zones"]
    # 1 man < k is hidden, and so are the 5 women: else 6 - 5 would give him back
    assert zone["visits"] == 6 and zone["gender"] == {"female": None, "male": None, "unknown": 0}
    assert msg["suppressed_cells"] >= 1 and msg["period_start"].endswith("Z")


def test_seq_is_persisted_strictly_increasing_and_a_period_closes_once(tmp_path):  # noqa: D103
    db = open_db(tmp_path / "d.db")
    ob = Outbox(db)
    build = lambda seq, dropped: {"seq": seq, "dropped": dropped}  # noqa: E731
    assert [ob.close_period(T0 + i, build) for i in range(3)] == [1, 2, 3]
    assert ob.close_period(T0 + 1, build) is None
    ob.acknowledged([1, 2, 3])
    db.conn.close()
    again = Outbox(open_db(tmp_path / "d.db"))
    assert again.close_period(T0 + 10, build) == 4  # never reused, even with an empty outbox


def test_full_outbox_drops_the_oldest_and_says_how_many(tmp_path):
    db = open_db(tmp_path / "d.db")
    ob = Outbox(db, max_rows=5)
    for i in range(12):
        ob.close_period(T0 + i, lambda seq, dropped: {"seq": seq, "dropped": dropped})
    assert [r.seq for r in ob.pending()] == [8, 9, 10, 11, 12]
    assert ob.dropped_total() == 7
    assert json.loads(ob.pending()[-1].payload)["dropped"] == 7  # seq 12 knows of 1..7
    seq = ob.close_period(T0 + 100, lambda seq, dropped: {"seq": seq, "dropped": dropped})
    payloads = [json.loads(r.payload) for r in ob.pending()]
    assert [p["seq"] for p in payloads] == [9, 10, 11, 12, seq]
    # the cumulative count in the newest summary equals the seqs that will never arrive
    missing = set(range(1, seq)) - {p["seq"] for p in payloads}
    assert payloads[-1]["dropped"] == len(missing) == 8


def test_broker_down_for_30_periods_every_seq_arrives(tmp_path, broker):
    store = CollectorStore(tmp_path / "central.db")
    collector = Collector(
        MqttOptions(
            port=broker.port, client_id="collector", clean_start=False, session_expiry_s=3600, reconnect_max_s=2
        ),
        store,
    )
    collector.start()
    assert collector.client.wait_subscribed(10)

    device_db = open_db(tmp_path / "device.db")
    fill(device_db, 30)
    client = MqttClient(MqttOptions(port=broker.port, client_id="dev-1", reconnect_max_s=2, max_inflight=10))
    client.start()
    assert client.wait_connected(10)
    drainer = OutboxDrainer(Outbox(open_db(tmp_path / "device.db")), client, TOPIC, window=10)
    stop = threading.Event()
    thread = threading.Thread(target=drainer.run, args=(stop,), name="kiosk-publisher", daemon=True)
    thread.start()

    broker.stop()  # the store's network is down ...
    outbox = Outbox(device_db)
    for p in range(30):  # ... while 30 one-second periods close
        outbox.close_period(
            T0 + p, lambda seq, dropped, p=p: build_summary(device_db, context(), T0 + p, seq, dropped, True)
        )
    assert outbox.backlog()[0] == 30
    assert wait_for(lambda: not client.connected, 30)  # the device has noticed the outage
    broker.start()  # the network is back
    try:
        assert wait_for(lambda: outbox.backlog()[0] == 0, 60), f"backlog {outbox.backlog()}, {drainer.last_error}"
        assert wait_for(lambda: len(store.seqs("dev-1")) == 30, 30), store.seqs("dev-1")
    finally:
        stop.set()
        thread.join(5)
        client.stop()
        collector.stop()
    assert store.seqs("dev-1") == list(range(1, 31))
    assert [g.missing for g in store.gaps()] == [()]
    assert store.invalid == 0
    assert store.duplicates <= 10  # at most the in-flight window is sent twice


def test_refused_publish_keeps_the_row_and_reports_why(tmp_path):
    acl = tmp_path / "acl"
    acl.write_text("user dev\ntopic write kiosk/+/+/status\n")
    b = Broker(tmp_path / "broker", users={"dev": "secret"}, extra=f"acl_file {acl}\n")
    b.start()
    try:
        db = open_db(tmp_path / "device.db")
        outbox = Outbox(db)
        outbox.close_period(T0, lambda seq, dropped: {"seq": seq})
        client = MqttClient(MqttOptions(port=b.port, client_id="dev-1", username="dev", password="secret"))
        client.start()
        assert client.wait_connected(10)
        drainer = OutboxDrainer(outbox, client, TOPIC)
        assert drainer.drain_once() == 0
        assert outbox.backlog()[0] == 1  # kept
        assert "Not authorized" in drainer.last_error
        assert db.execute("SELECT last_error FROM outbox").fetchone()[0].startswith("Not authorized")
        client.stop()
    finally:
        b.stop()
