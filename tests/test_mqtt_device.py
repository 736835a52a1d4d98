"""The device's publisher as a real process against a real Mosquitto: retained status, the Will,
and SIGKILL at random points while draining."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from kiosk.fleet.collector import Collector, load_validator
from kiosk.fleet.database import CollectorStore
from kiosk.mqtt.client import MqttClient, MqttOptions
from kiosk.store.db import open_db
from kiosk.store.outbox import Outbox
from kiosk.summary import build_summary
from tests.broker import Broker
from tests.helpers import T0, context, fill, wait_for


def _config(tmp_path, port: int, rate: float = 1000.0, window: int = 10) -> str:
    cfg = tmp_path / "kiosk.yaml"
    cfg.write_text(
        f"store:\n  path: {tmp_path / 'device.db'}\n"
        f"mqtt:\n  port: {port}\n  store_id: store-1\n  device_id: dev-1\n  drain_rate_per_s: {rate}\n"
        f"  max_inflight: {window}\n  keepalive_s: 5\n"
    )
    return str(cfg)


def _publisher(cfg: str) -> subprocess.Popen:
    log = open(os.path.join(os.path.dirname(cfg), "publisher.log"), "a")  # a file: an unread pipe could block it
    return subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "publish", "--config", cfg], stdout=subprocess.DEVNULL, stderr=log
    )


def _queue(tmp_path, n: int) -> Outbox:
    db = open_db(tmp_path / "device.db")
    fill(db, n)
    outbox = Outbox(db)
    for p in range(n):
        outbox.close_period(T0 + p, lambda seq, dropped, p=p: build_summary(db, context(), T0 + p, seq, dropped, True))
    return outbox


def _watch_status(port: int):
    seen: list[dict] = []
    watcher = MqttClient(
        MqttOptions(port=port, client_id=f"watch-{random.random()}"),
        on_message=lambda topic, payload: seen.append(json.loads(payload)),
    )
    watcher.subscribe("kiosk/+/+/status", 1)
    watcher.start()
    assert watcher.wait_subscribed(10)
    return watcher, seen


def test_retained_online_then_will_offline_on_kill_and_offline_on_clean_stop(tmp_path, broker):
    outbox = _queue(tmp_path, 3)
    cfg = _config(tmp_path, broker.port)
    proc = _publisher(cfg)
    validator = load_validator("status.v1.json")
    try:
        # a subscriber that connects later still sees the retained status: the publisher sends it on
        # connect, before any summary, so once the summaries are acknowledged the broker holds it
        assert wait_for(lambda: outbox.backlog()[0] == 0, 60), (tmp_path / "publisher.log").read_text()[-3000:]
        watcher, seen = _watch_status(broker.port)
        assert wait_for(lambda: any(s["state"] == "online" for s in seen), 10), seen
        for s in seen:
            validator.validate(s)
        proc.send_signal(signal.SIGKILL)  # vanishes: the broker publishes the Will
        proc.wait(5)
        assert wait_for(lambda: seen[-1]["state"] == "offline", 20), seen  # within 1.5 keepalives (5 s)
        watcher.stop()
        proc = _publisher(cfg)
        watcher, seen = _watch_status(broker.port)
        assert wait_for(lambda: seen and seen[-1]["state"] == "online", 10)
        proc.send_signal(signal.SIGTERM)  # a clean stop publishes offline itself, at once
        assert proc.wait(10) == 0
        assert wait_for(lambda: seen[-1]["state"] == "offline", 5), seen
        watcher.stop()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigkill_20_times_while_draining_loses_no_seq(tmp_path, broker):
    n = 800  # at most about 30 acknowledged per kill (15 + two windows): 20 kills leave a backlog
    _queue(tmp_path, n)
    store = CollectorStore(tmp_path / "central.db")
    collector = Collector(
        MqttOptions(port=broker.port, client_id="collector", clean_start=False, session_expiry_s=3600), store
    )
    collector.start()
    assert collector.client.wait_subscribed(10)
    # windows of 5 at 30 summaries/s: a window every 1/6 s, so a kill lands between acknowledged windows
    # or with one in flight, wherever the poll below happens to see the outbox shrink
    cfg = _config(tmp_path, broker.port, rate=30.0, window=5)
    rng = random.Random(7)
    drained_before_kill, targets = [], []
    outbox = Outbox(open_db(tmp_path / "device.db"))
    log = tmp_path / "publisher.log"
    try:
        for _ in range(20):
            before = outbox.backlog()[0]
            target = rng.randint(1, 15)  # kill once this many rows are acknowledged (on progress, not on time)
            proc = _publisher(cfg)
            assert wait_for(lambda: before - outbox.backlog()[0] >= target, 60, step=0.01), log.read_text()[-3000:]
            time.sleep(rng.uniform(0.0, 0.1))  # somewhere in the next window: before, during or after its PUBACKs
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
            drained_before_kill.append(before - outbox.backlog()[0])
            targets.append(target)
            check = open_db(tmp_path / "device.db")
            assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            check.conn.close()
        assert all(d >= t for d, t in zip(drained_before_kill, targets)), (drained_before_kill, targets)
        assert outbox.backlog()[0] > 0, drained_before_kill  # the last kill, too, came before the end
        proc = _publisher(cfg)
        assert wait_for(lambda: outbox.backlog()[0] == 0, 120), (
            outbox.backlog(),
            (tmp_path / "publisher.log").read_text()[-3000:],
        )
        assert wait_for(lambda: len(store.seqs("dev-1")) == n, 30)
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    finally:
        collector.stop()
        if proc.poll() is None:
            proc.kill()
    assert store.seqs("dev-1") == list(range(1, n + 1))
    assert store.invalid == 0
    assert store.duplicates <= 20 * 5  # at most one in-flight window per kill


def test_wrong_password_keeps_rows_and_drains_once_fixed(tmp_path):
    b = Broker(tmp_path / "broker", users={"dev-1": "right"})
    b.start()
    secret = tmp_path / "secret"
    secret.write_text("wrong\n")
    cfg = _config(tmp_path, b.port)
    with open(cfg, "a") as fh:
        fh.write(f"  username: dev-1\n  password_file: {secret}\n")
    outbox = _queue(tmp_path, 5)
    proc = _publisher(cfg)
    try:
        log_file = tmp_path / "publisher.log"
        assert wait_for(lambda: "Not authorized" in log_file.read_text(), 30), log_file.read_text()[-3000:]
        assert outbox.backlog()[0] == 5  # nothing lost, nothing sent
        log = log_file.read_text()
        assert "refused" in log
        assert "wrong" not in log and "right" not in log  # the password is never logged
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        secret.write_text("right\n")
        proc = _publisher(cfg)
        assert wait_for(lambda: outbox.backlog()[0] == 0, 20)
    finally:
        if proc.poll() is None:
            proc.kill()
        b.stop()
