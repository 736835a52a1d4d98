"""The setup page's live view: frames from the configured camera, every face found blurred before
the frame is encoded, and each face's box, size and fate (counted, described, dropped).

Faces are searched for the blur with more recall than the daemon counts with: a lower score
(``BLUR_MIN_SCORE``), no minimum size, the whole frame plus every tile of a grid, and the boxes of
the previous frames kept for ``KEEP_FRAMES`` frames (a face the detector misses for a frame stays
blurred). Only the blurred JPEG of the latest frame is held, in memory; nothing is written.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import cv2

from kiosk.config import KioskConfig
from kiosk.setup.advice import FaceSizes
from kiosk.setup.privacy import blur_faces
from kiosk.wiring import camera_options, pipeline_options, zone_map

log = logging.getLogger("kiosk.setup")

BLUR_MIN_SCORE = 0.25
KEEP_FRAMES = 3
JPEG_QUALITY = 80
CAMERA_BUSY_HINT = (
    "If kiosk is running it holds the camera: stop it (sudo systemctl stop kiosk), then this page shows the "
    "camera within a few seconds; start it again when the set-up is done (sudo systemctl start kiosk)."
)


@dataclass(frozen=True)
class FaceView:
    box: tuple[float, float, float, float]  # normalised x0, y0, x1, y1
    size_px: float  # the shorter side of the box, frame pixels
    status: str  # described | counted | too_small | outside_zones | staff_area
    note: str  # what the status means, for the page


@dataclass(frozen=True)
class PreviewFrame:
    seq: int  # frames served since start
    index: int  # the camera's frame index (a video file: frames read since it was opened)
    jpeg: bytes
    width: int
    height: int
    faces: tuple[FaceView, ...]
    analysed_ms: float


def classify(cfg: KioskConfig, zones, box: tuple[float, float, float, float], w: int, h: int) -> tuple[str, str]:
    """What the daemon would do with a face of this box (pixels): its status and a note."""
    x0, y0, x1, y1 = box
    size = min(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
    if zones.excluded(cx, cy):
        return "staff_area", "in an exclusion zone: dropped before any analysis"
    if size < cfg.vision.detector.min_face_px:
        return "too_small", f"below vision.detector.min_face_px ({cfg.vision.detector.min_face_px:g} px): not counted"
    if zones.zone_at(cx, cy) is None:
        return "outside_zones", "outside every zone: not counted"
    if size < cfg.tracking.min_sample_face_px:
        return "counted", (
            f"counted; below tracking.min_sample_face_px ({cfg.tracking.min_sample_face_px:g} px): no emotion, age "
            "or gender"
        )
    return "described", "counted, and sampled for emotion, age and gender"


class Preview:
    """Camera -> detector -> blur -> JPEG, at most ``fps`` frames per second, in ``kiosk-setup-preview``."""

    def __init__(self, cfg: KioskConfig, sizes: FaceSizes, fps: float = 4.0) -> None:
        from kiosk.camera.capture import Capture
        from kiosk.vision.pipeline import VisionPipeline

        self.cfg = cfg
        self.zones = zone_map(cfg)
        self.sizes = sizes
        self.fps = fps
        o = pipeline_options(cfg.vision)
        # the detector only, with no size floor (small faces are blurred too); no attribute model
        o = dataclasses.replace(
            o, detector=dataclasses.replace(o.detector, min_face_px=0.0), emotion=False, age=False, gender=False
        )
        self.pipeline = VisionPipeline(o, cfg.vision.models_dir)
        self.grid = max(2, cfg.tracking.search_tiles, cfg.vision.detector.tiles)
        self.capture = Capture(camera_options(cfg.camera))
        self._lock = threading.Lock()
        self._latest: PreviewFrame | None = None
        self._seq = 0
        self._recent: deque[list[tuple[float, float, float, float]]] = deque(maxlen=KEEP_FRAMES)
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kiosk-setup-preview", daemon=True)

    def set_config(self, cfg: KioskConfig) -> None:
        """Zones saved from the page: faces are judged by them from the next frame."""
        with self._lock:
            self.cfg = cfg
            self.zones = zone_map(cfg)

    @property
    def latest(self) -> PreviewFrame | None:
        with self._lock:
            return self._latest

    def camera(self) -> dict:
        state, error = self.capture.state, self.capture.error
        return {
            "state": state,
            "error": error,
            "hint": CAMERA_BUSY_HINT if state == "offline" else None,
            "source": self.cfg.camera.source,
        }

    def start(self) -> None:
        self.capture.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.capture.stop(1.0)
        self._thread.join(5.0)
        self.pipeline.close()

    def _run(self) -> None:
        gap = 1.0 / self.fps
        last = 0.0
        while not self._stop.is_set():
            frame = self.capture.wait_frame(0.5)
            if frame is None or time.monotonic() - last < gap:
                continue
            last = time.monotonic()
            try:
                self._serve(frame)
            except Exception:  # one bad frame must not end the live view
                self.failures += 1
                if self.failures in (1, 10, 100):
                    log.exception("a frame could not be prepared for the live view (%d times)", self.failures)

    def _serve(self, frame) -> None:
        started = time.perf_counter()
        image = frame.image if frame.image.ndim == 3 else cv2.cvtColor(frame.image, cv2.COLOR_GRAY2BGR)
        h, w = image.shape[:2]
        regions = [None, *range(self.grid * self.grid)]
        found = self.pipeline.detect(image, min_score=BLUR_MIN_SCORE, regions=regions, grid=self.grid)
        boxes = [(d.box.x0, d.box.y0, d.box.x1, d.box.y1) for d in found]
        self._recent.append(boxes)
        # the face boxes of this frame and of the last few: blurred before anything is encoded
        blurred = blur_faces(image, [b for frame_boxes in self._recent for b in frame_boxes])
        ok, jpeg = cv2.imencode(".jpg", blurred, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        with self._lock:
            cfg, zones = self.cfg, self.zones
        threshold = cfg.vision.detector.score_threshold
        faces = []
        for d, b in zip(found, boxes):
            if d.score < threshold:
                continue  # blurred, but not a face the daemon would take
            status, note = classify(cfg, zones, b, w, h)
            faces.append(
                FaceView(
                    (b[0] / w, b[1] / h, b[2] / w, b[3] / h), round(min(b[2] - b[0], b[3] - b[1]), 1), status, note
                )
            )
        self.sizes.add([f.size_px for f in faces if f.status != "staff_area"])
        with self._lock:
            self._seq += 1
            self._latest = PreviewFrame(
                self._seq,
                frame.index,
                jpeg.tobytes(),
                w,
                h,
                tuple(faces),
                round((time.perf_counter() - started) * 1000, 1),
            )
