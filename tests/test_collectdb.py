"""The collector's database on SQLite and on a real PostgreSQL server: same schema, idempotent
inserts, gaps, status, range queries."""

from __future__ import annotations

import pytest

from kiosk.fleet.database import CollectorStore
from tests.postgres import Postgres


@pytest.fixture(scope="module")
def postgres():
    pg = Postgres().start()
    yield pg
    pg.stop()


def _summary(device: str, seq: int, minute: int, store: str = "store-1") -> dict:
    return {
        "schema": "kiosk.summary",
        "schema_version": 1,
        "device_id": device,
        "store_id": store,
        "seq": seq,
        "period_start": f"2027-01-15T08:{minute:02d}:00Z",
        "period_end": f"2027-01-15T08:{minute + 1:02d}:00Z",
        "zones": [],
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = CollectorStore(tmp_path / "central.db")
    else:
        pg = request.getfixturevalue("postgres")
        s = CollectorStore(pg.url)
        s._run("DELETE FROM summaries")
        s._run("DELETE FROM status")
    yield s
    s.close()


def test_idempotent_inserts_gaps_status_and_ranges(store):
    for seq in (1, 2, 3, 5, 6, 9):
        assert store.add_summary(_summary("dev-1", seq, seq))
    assert not store.add_summary(_summary("dev-1", 3, 3))  # the same message again (QoS 1 redelivery)
    assert store.duplicates == 1
    store.add_summary(_summary("dev-2", 7, 1, store="store-2"))
    store.add_summary(_summary("dev-2", 8, 2, store="store-2"))
    assert store.seqs("dev-1") == [1, 2, 3, 5, 6, 9]
    assert {g.device_id: g.missing for g in store.gaps()} == {"dev-1": (4, 7, 8), "dev-2": ()}
    store.set_status({"device_id": "dev-1", "store_id": "store-1", "state": "online"})
    store.set_status({"device_id": "dev-1", "store_id": "store-1", "state": "offline"})
    assert store.status_of("dev-1") == "offline" and store.status_of("dev-9") is None
    assert [
        s["seq"]
        for s in store.summaries(store_id="store-1", since="2027-01-15T08:02:00Z", until="2027-01-15T08:06:00Z")
    ] == [2, 3, 5]
    assert [s["device_id"] for s in store.summaries(since="2027-01-15T08:01:00Z", until="2027-01-15T08:02:00Z")] == [
        "dev-1",
        "dev-2",
    ]
    assert store.payload("dev-2", 8)["period_start"] == "2027-01-15T08:02:00Z"


def test_a_bad_postgres_url_is_a_clear_error():
    with pytest.raises(Exception) as exc:
        CollectorStore("postgresql://nobody@127.0.0.1:9/none?connect_timeout=2")
    assert "127.0.0.1" in str(exc.value) or "connect" in str(exc.value).lower()


def test_kiosk_collect_writes_to_postgres_through_a_real_broker(tmp_path, postgres):
    import json
    import signal
    import subprocess
    import sys
    import threading

    from kiosk.mqtt.client import MqttClient, MqttOptions
    from kiosk.publishing.drain import OutboxDrainer
    from kiosk.store.db import open_db
    from tests.broker import Broker
    from tests.helpers import TOPIC, fill, queue_summaries, wait_for

    s = CollectorStore(postgres.url)
    s._run("DELETE FROM summaries")
    s.close()
    b = Broker(tmp_path / "broker").start()
    try:
        log = open(tmp_path / "collect.log", "w")
        collect = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kiosk.cli",
                "collect",
                "--broker",
                f"mqtt://127.0.0.1:{b.port}",
                "--db",
                postgres.url,
                "--log-level",
                "debug",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        db = open_db(tmp_path / "device.db")
        fill(db, 4)
        outbox = queue_summaries(db, 4)
        store = CollectorStore(postgres.url)
        collect_log = tmp_path / "collect.log"
        assert wait_for(lambda: "subscribed" in collect_log.read_text(), 60), collect_log.read_text()
        client = MqttClient(MqttOptions(port=b.port, client_id="dev-1"))
        client.start()
        assert client.wait_connected(10)
        drainer = OutboxDrainer(outbox, client, TOPIC)
        stop = threading.Event()
        thread = threading.Thread(target=drainer.run, args=(stop,), daemon=True)
        thread.start()
        assert wait_for(lambda: store.seqs("dev-1") == [1, 2, 3, 4], 15), store.seqs("dev-1")
        outbox.republish(1)  # sent again: stored once
        assert wait_for(lambda: outbox.backlog()[0] == 0, 10)
        stop.set()
        thread.join(5)
        client.stop()
        assert wait_for(lambda: collect_log.read_text().count("already stored") == 4, 30), collect_log.read_text()
        collect.send_signal(signal.SIGTERM)  # the collector stops on SIGTERM and reports
        out, _ = collect.communicate(timeout=30)
        report = json.loads(out.strip().splitlines()[-1])
        assert report["invalid"] == 0 and report["duplicates"] == 4 and report["gaps"] == {"dev-1": []}
        assert store.seqs("dev-1") == [1, 2, 3, 4]
        store.close()
    finally:
        b.stop()
