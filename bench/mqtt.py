"""MQTT benchmark: drain rate of a 10,000-summary backlog to a local Mosquitto, and the vision
loop's frame time while draining compared with idle. Prints JSON.

    .venv/bin/python bench/mqtt.py [--backlog 10000]

Targets: >= 200 summaries/s; frame time while draining within 10% of idle.
Needs the `mosquitto` binary (Debian package); starts its own on a free loopback port.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from kiosk.aggregate import Aggregator  # noqa: E402
from kiosk.mqtt.client import MqttClient, MqttOptions  # noqa: E402
from kiosk.mqtt.drain import OutboxDrainer  # noqa: E402
from kiosk.store.aggregates import AggregateStore  # noqa: E402
from kiosk.store.db import open_db  # noqa: E402
from kiosk.store.outbox import Outbox  # noqa: E402
from kiosk.summary import SummaryContext, build_summary  # noqa: E402
from kiosk.visits import Visit  # noqa: E402
from tests.broker import Broker  # noqa: E402

T0 = 1_800_000_000


def make_backlog(path: Path, n: int) -> Outbox:
    db = open_db(path)
    agg = Aggregator(60)
    for p in range(n):
        for i in range(6):
            agg.add(Visit("visit", "shelf-a", "none", T0 + p * 60, T0 + p * 60 + 5 + i, 5.0, 2.0, True, "happy",
                          "happy", "25-34", "female"))
    AggregateStore(db).write(agg.drain())
    ctx = SummaryContext("dev-1", "store-1", 60, 5, {"emotion": "be237b852ac9"})
    outbox = Outbox(db, max_rows=n + 10)
    for p in range(n):
        outbox.close_period(T0 + p * 60, lambda seq, dropped, p=p: build_summary(db, ctx, T0 + p * 60, seq, dropped, True))
    return outbox


def frame_times(seconds: float, clip: Path) -> list[float]:
    from kiosk.vision.pipeline import VisionPipeline

    cap = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < 60:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    out = []
    with VisionPipeline() as p:
        for f in frames[:10]:
            p.analyze(f)
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            start = time.perf_counter()
            p.analyze(frames[i % len(frames)])
            out.append(1000 * (time.perf_counter() - start))
            i += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backlog", type=int, default=10_000)
    ap.add_argument("--clip", type=Path, default=PROJECT.parent / "shared/data/videos/hamilton-speech.mp4")
    ap.add_argument("--rate", type=float, default=1000.0, help="the drainer's rate limit (summaries/s)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        broker = Broker(tmp / "broker").start()
        try:
            t = time.perf_counter()
            make_backlog(tmp / "device.db", a.backlog)
            build_s = time.perf_counter() - t
            client = MqttClient(MqttOptions(port=broker.port, client_id="dev-1", max_inflight=50, max_queued=100))
            client.start()
            client.wait_connected(10)
            drainer = OutboxDrainer(Outbox(open_db(tmp / "device.db")), client, "kiosk/store-1/dev-1/summary",
                                    window=50, rate_per_s=a.rate)
            have_clip = a.clip.exists()
            idle = frame_times(5.0, a.clip) if have_clip else []
            stop = threading.Event()
            thread = threading.Thread(target=drainer.run, args=(stop,), name="kiosk-publisher", daemon=True)
            start = time.perf_counter()
            thread.start()
            busy = frame_times(5.0, a.clip) if have_clip else []
            outbox = Outbox(open_db(tmp / "device.db"))
            while outbox.backlog()[0] and time.perf_counter() - start < 600:
                time.sleep(0.05)
            drain_s = time.perf_counter() - start
            stop.set()
            thread.join(5)
            client.stop()
        finally:
            broker.stop()
    rate = drainer.published / drain_s
    out = {
        "benchmark": "mqtt",
        "backlog": a.backlog,
        "outbox_build_s": round(build_s, 1),
        "drained": drainer.published,
        "drain_s": round(drain_s, 2),
        "summaries_per_s": round(rate, 1),
        "rate_limit_per_s": a.rate,
        "target_rate_min": 200,
    }
    if idle and busy:
        mi, mb = statistics.median(idle), statistics.median(busy)
        out.update({"frame_ms_idle_median": round(mi, 2), "frame_ms_draining_median": round(mb, 2),
                    "frame_slowdown": round(mb / mi - 1, 3), "target_slowdown_max": 0.10})
    out["targets_met"] = rate >= 200 and (not (idle and busy) or out["frame_slowdown"] <= 0.10)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
