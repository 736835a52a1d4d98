"""Helpers shared by the test modules: waiting for a state, synthetic visits, summaries in an
outbox, and a short clip. Test modules import from here, never from one another."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from kiosk.aggregate import Aggregator
from kiosk.store.aggregates import AggregateStore
from kiosk.store.outbox import Outbox
from kiosk.summary import SummaryContext, build_summary
from kiosk.visits import Visit

T0 = 1_800_000_000  # a multiple of 300 s (2027-01-15T08:00:00Z)
TOPIC = "kiosk/store-1/dev-1/summary"


def wait_for(cond, timeout: float, step: float = 0.05) -> bool:
    """Poll ``cond`` until it is true or ``timeout`` has passed; returns its last value as a bool.
    Tests wait for the state they need this way, never for a guessed time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def visit(
    wall: float,
    zone="shelf-a",
    kind="visit",
    gender="female",
    band="25-34",
    dwell=8.0,
    attention=3.0,
    emotion="happy",
    content="spring",
) -> Visit:
    """A visit that ended at wall-clock ``wall``."""
    return Visit(
        kind=kind,
        zone_id=zone,
        content=content,
        wall_start=wall - dwell,
        wall_end=wall,
        dwell_s=dwell,
        attention_s=attention,
        attentive=attention >= 1.0,
        first_reaction=emotion,
        dominant_emotion=emotion,
        age_band=band,
        gender=gender,
    )


def fill(db, periods: int, period_s: int = 1) -> None:
    """Six visits (five women, one man) in each of ``periods`` periods from T0."""
    agg = Aggregator(period_s)
    for p in range(periods):
        for i in range(6):
            agg.add(visit(T0 + p * period_s + 0.1 + i * 0.01, gender="female" if i < 5 else "male"))
    AggregateStore(db).write(agg.drain())


def context(period_s: int = 1) -> SummaryContext:
    return SummaryContext(
        device_id="dev-1", store_id="store-1", period_s=period_s, k=5, models={"emotion": "be237b852ac9"}
    )


def queue_summaries(db, n: int, start: int = 0, **bounds) -> Outbox:
    """Close ``n`` one-second periods from T0 + ``start`` into the outbox of ``db``."""
    outbox = Outbox(db, **bounds)
    for p in range(start, start + n):
        outbox.close_period(T0 + p, lambda seq, dropped, p=p: build_summary(db, context(), T0 + p, seq, dropped, True))
    return outbox


def make_clip(path: Path, seconds: float = 3.0, fps: int = 10, size=(320, 240)) -> Path:
    """A short MJPG clip of a moving pattern (no faces: the daemon's plumbing does not need any)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(int(seconds * fps)):
        frame = np.full((size[1], size[0], 3), 40, np.uint8)
        cv2.circle(frame, (20 + (i * 7) % (size[0] - 40), size[1] // 2), 15, (0, 200, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def run_visits(cfg, video: Path, t0: float):
    """Every visit of a clip through the whole chain (vision, tracking, visits) as the daemon
    builds it: returns (visits, chain)."""
    from kiosk.camera.sources import video_frames
    from kiosk.wiring import VisitChain, open_pipeline

    visits = []
    with open_pipeline(cfg.vision) as pipeline:
        chain = VisitChain(cfg, pipeline)
        for _, t, frame in video_frames(str(video)):
            visits += chain.process(frame, t, t0 + t)
        visits += chain.finish()
    return visits, chain
