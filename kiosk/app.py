"""Composition root: wires camera -> vision -> tracking -> visits/aggregate -> store -> publish.

Every other module gets its own config section and knows nothing of the
modules after it; only this module knows them all. The daemon's threads
(capture, vision, store flusher, publisher) will be owned here too.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from kiosk.aggregate import Aggregator, Deltas
from kiosk.config import KioskConfig
from kiosk.tracking.observer import FaceObserver
from kiosk.vision.pipeline import VisionPipeline
from kiosk.visits import Visit, VisitBuilder

OCCUPANCY_SAMPLE_S = 1.0


class VisitChain:
    """Frames in; visits (memory only) out and added to the aggregates."""

    def __init__(self, cfg: KioskConfig, pipeline: VisionPipeline) -> None:
        self.observer = FaceObserver(
            pipeline,
            zones=cfg.zone_map(),
            tracker=cfg.tracking.tracker_options(),
            attention=cfg.visits.attention_options(),
            options=cfg.tracking.observer_options(),
        )
        self.builder = VisitBuilder(cfg.visits.visit_options(), cfg.content.schedule_object())
        self.aggregator = Aggregator(cfg.store.period_s)
        self._last_occupancy: float | None = None
        self.frames = 0
        self.faces = 0
        self.excluded = 0

    def process(self, frame: np.ndarray, t: float, wall: float) -> list[Visit]:
        """One frame at monotonic ``t`` and wall-clock ``wall`` seconds; returns the visits that ended."""
        result = self.observer.process(frame, t, wall)
        self.frames += 1
        self.faces += result.faces
        self.excluded += result.excluded
        if result.occupancy and (self._last_occupancy is None or t - self._last_occupancy >= OCCUPANCY_SAMPLE_S):
            self._last_occupancy = t
            for zone_id, count in result.occupancy.items():
                self.aggregator.add_occupancy(wall, zone_id, count)
        return self._visits(result.ended)

    def finish(self) -> list[Visit]:
        """End every open track (shutdown or the end of a clip)."""
        return self._visits(self.observer.finish())

    def drain(self) -> Deltas:
        return self.aggregator.drain()

    def _visits(self, ended) -> list[Visit]:
        visits = [v for v in (self.builder.build(ft) for ft in ended) if v is not None]
        for v in visits:
            self.aggregator.add(v)
        return visits


def video_frames(path: str, every: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
    """(index, seconds, frame) of a video file, at its own frame rate."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise OSError(f"cannot open video {path}")
        fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            if index % every == 0:
                yield index, index / fps, frame
            index += 1
    finally:
        cap.release()
