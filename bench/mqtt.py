"""MQTT benchmark, printed as JSON. Needs the `mosquitto` binary (Debian package); starts its own
on a free loopback port.

    .venv/bin/python bench/mqtt.py [--backlog 10000] [--rate 200]

1. Drain rate: a 10,000-summary backlog drained as fast as the drainer can (no rate limit, no
   vision running). Target: >= 200 summaries/s.
2. Vision while draining: the frame time of the vision pipeline while a backlog drains at the
   configured rate limit (``mqtt.drain_rate_per_s``, default 200/s), compared with idle.
   Target: within 10%. On this 2-core machine the broker runs beside the vision too; on a store
   device it is elsewhere.
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
from kiosk.config import MqttConfig  # noqa: E402
from kiosk.mqtt.client import MqttClient, MqttOptions  # noqa: E402
from kiosk.publishing.drain import OutboxDrainer  # noqa: E402
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
            agg.add(
                Visit(
                    "visit",
                    "shelf-a",
                    "none",
                    T0 + p * 60,
                    T0 + p * 60 + 5 + i,
                    5.0,
                    2.0,
                    True,
                    "happy",
                    "happy",
                    "25-34",
                    "female",
                )
            )
    AggregateStore(db).write(agg.drain())
    ctx = SummaryContext("dev-1", "store-1", 60, 5, {"emotion": "be237b852ac9"})
    outbox = Outbox(db, max_rows=n + 10)
    for p in range(n):
        outbox.close_period(
            T0 + p * 60, lambda seq, dropped, p=p: build_summary(db, ctx, T0 + p * 60, seq, dropped, True)
        )
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
    ap.add_argument(
        "--rate",
        type=float,
        default=MqttConfig().drain_rate_per_s,
        help="the drainer's rate limit while vision runs (summaries/s; default: the config default)",
    )
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        broker = Broker(tmp / "broker").start()
        try:
            t = time.perf_counter()
            make_backlog(tmp / "device.db", a.backlog)
            build_s = time.perf_counter() - t
            published, drain_s, _ = drain(tmp / "device.db", broker.port, rate=1e9)
            have_clip = a.clip.exists()
            idle = busy = []
            if have_clip:
                make_backlog(tmp / "second.db", int(a.rate * 8))  # enough to drain through the measurement
                idle = frame_times(5.0, a.clip)
                _, _, busy = drain(tmp / "second.db", broker.port, rate=a.rate, during=lambda: frame_times(5.0, a.clip))
        finally:
            broker.stop()
    rate = published / drain_s
    out = {
        "benchmark": "mqtt",
        "backlog": a.backlog,
        "outbox_build_s": round(build_s, 1),
        "drained": published,
        "drain_s": round(drain_s, 2),
        "summaries_per_s": round(rate, 1),
        "target_rate_min": 200,
    }
    if idle and busy:
        mi, mb = statistics.median(idle), statistics.median(busy)
        out.update(
            {
                "vision_rate_limit_per_s": a.rate,
                "frame_ms_idle_median": round(mi, 2),
                "frame_ms_draining_median": round(mb, 2),
                "frame_slowdown": round(mb / mi - 1, 3),
                "target_slowdown_max": 0.10,
            }
        )
    out["targets_met"] = rate >= 200 and (not (idle and busy) or out["frame_slowdown"] <= 0.10)
    print(json.dumps(out, indent=2))


def drain(db_path: Path, port: int, rate: float, during=None) -> tuple[int, float, list]:
    """Drain the outbox of ``db_path``; with ``during``, call it while draining and return its result."""
    client = MqttClient(MqttOptions(port=port, client_id=f"dev-{db_path.stem}", max_inflight=50, max_queued=100))
    client.start()
    client.wait_connected(10)
    drainer = OutboxDrainer(Outbox(open_db(db_path)), client, "kiosk/store-1/dev-1/summary", window=50, rate_per_s=rate)
    stop = threading.Event()
    thread = threading.Thread(target=drainer.run, args=(stop,), name="kiosk-publisher", daemon=True)
    start = time.perf_counter()
    thread.start()
    result = during() if during else []
    outbox = Outbox(open_db(db_path))
    while during is None and outbox.backlog()[0] and time.perf_counter() - start < 600:
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    stop.set()
    thread.join(5)
    client.stop()
    return drainer.published, elapsed, result


if __name__ == "__main__":
    main()
