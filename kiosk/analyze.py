"""``kiosk analyze``: run the vision pipeline offline on images, folders and videos.

One JSON object per image or sampled video frame, then a summary. Nothing is
written to disk unless ``annotate_dir`` is given (an explicit debug option).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from kiosk.config.vocabulary import EMOTIONS, GENDERS
from kiosk.vision.frame import FrameError, as_bgr
from kiosk.vision.pipeline import VisionPipeline
from kiosk.vision.types import AnalysedFace

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


@dataclass(frozen=True)
class AnalyzeOptions:
    every: int = 1  # analyse every N-th video frame
    face_crops: bool = False  # each image is one already-cropped face
    annotate_dir: Path | None = None


@dataclass
class Summary:
    images: int = 0
    video_frames: int = 0
    faces: int = 0
    errors: int = 0
    seconds: float = 0.0
    emotions: Counter = field(default_factory=Counter)
    genders: Counter = field(default_factory=Counter)
    ages: list = field(default_factory=list)

    def add(self, faces: list[AnalysedFace]) -> None:
        self.faces += len(faces)
        for f in faces:
            if f.emotion is not None:
                self.emotions[f.dominant_emotion] += 1
            if f.gender is not None:
                self.genders[GENDERS[int(np.argmax(f.gender))]] += 1
            if f.age is not None:
                self.ages.append(f.age)

    def to_dict(self) -> dict:
        frames = self.images + self.video_frames
        return {
            "summary": {
                "images": self.images,
                "video_frames": self.video_frames,
                "faces": self.faces,
                "errors": self.errors,
                "dominant_emotions": {e: self.emotions.get(e, 0) for e in EMOTIONS},
                "genders": {g: self.genders.get(g, 0) for g in GENDERS},
                "median_age": round(float(np.median(self.ages)), 1) if self.ages else None,
                "ms_per_frame": round(1000 * self.seconds / frames, 1) if frames else None,
            }
        }


def expand_inputs(paths: list[Path]) -> Iterator[Path]:
    """Files as given; folders walked (sorted) for image and video files."""
    for p in paths:
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                    yield child
        else:
            yield p


def _annotate(frame: np.ndarray, faces: list[AnalysedFace]) -> np.ndarray:
    out = as_bgr(frame).copy()  # the pipeline's own normalisation: grayscale, BGR and BGRA alike
    for f in faces:
        b = f.detection.box
        cv2.rectangle(out, (int(b.x0), int(b.y0)), (int(b.x1), int(b.y1)), (0, 255, 0), 2)
        label = []
        if f.emotion is not None:
            label.append(f.dominant_emotion)
        if f.age is not None:
            label.append(f"{f.age:.0f}y")
        if f.gender is not None:
            label.append(GENDERS[int(np.argmax(f.gender))][0].upper())
        cv2.putText(
            out, " ".join(label), (int(b.x0), max(12, int(b.y0) - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1
        )
    return out


class Analyzer:
    def __init__(self, pipeline: VisionPipeline, options: AnalyzeOptions, emit: Callable[[dict], None]) -> None:
        self.pipeline = pipeline
        self.options = options
        self.emit = emit
        self.summary = Summary()

    def _run(self, frame: np.ndarray) -> list[AnalysedFace]:
        start = time.perf_counter()
        if self.options.face_crops:
            faces = [self.pipeline.analyze_face_crop(frame)]
        else:
            faces = self.pipeline.analyze(frame)
        self.summary.seconds += time.perf_counter() - start
        self.summary.add(faces)
        return faces

    def _error(self, path: Path, message: str, **extra) -> None:
        self.summary.errors += 1
        self.emit({"source": str(path), **extra, "error": message})

    def process(self, path: Path) -> None:
        if not path.exists():
            self._error(path, "no such file or folder")
            return
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            self._video(path)
            return
        frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if frame is None:
            if suffix in IMAGE_SUFFIXES:
                self._error(path, "not a readable image (corrupt or unsupported format)")
            else:
                self._video(path)  # maybe a video with an unusual name; it says so if not
            return
        if frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        try:
            faces = self._run(frame)
        except FrameError as exc:
            self._error(path, str(exc))
            return
        self.summary.images += 1
        self.emit({"source": str(path), "faces": [f.to_dict() for f in faces]})
        if self.options.annotate_dir is not None:
            out = self.options.annotate_dir / (path.stem + ".annotated.jpg")
            cv2.imwrite(str(out), _annotate(frame, faces))

    def _video(self, path: Path) -> None:
        from kiosk.camera.sources import video_frames

        writer = None
        decoded = False
        try:
            for index, t, frame in video_frames(str(path), self.options.every):
                decoded = True
                try:
                    faces = self._run(frame)
                except FrameError as exc:
                    self._error(path, str(exc), frame=index)
                    continue
                self.summary.video_frames += 1
                self.emit(
                    {"source": str(path), "frame": index, "t": round(t, 3), "faces": [f.to_dict() for f in faces]}
                )
                if self.options.annotate_dir is not None:
                    if writer is None:
                        h, w = frame.shape[:2]
                        out = self.options.annotate_dir / (path.stem + ".annotated.mp4")
                        rate = max(1.0, (index / t if t > 0 else 10.0) / self.options.every)
                        writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), rate, (w, h))
                    writer.write(_annotate(frame, faces))
        except OSError:
            self._error(path, "not a readable image or video (cannot open it)")
            return
        finally:
            if writer is not None:
                writer.release()
        if not decoded:
            self._error(path, "no frame could be decoded (unreadable or empty video)")


def run_visits(
    video: Path,
    cfg,
    pipeline: VisionPipeline,
    emit: Callable[[dict], None],
    start_wall: float,
    db_path: Path | None = None,
) -> dict:
    """``kiosk analyze --visits``: visits as JSON lines (never stored) and the k-suppressed summary.

    Video time drives the clocks: monotonic t = frame time, wall = start_wall + t.
    The aggregates go to ``db_path`` (batched, one transaction per flush interval of
    video time) or a throw-away in-memory database, and are read back through the
    one k-anonymity reader, exactly as the daemon's summaries will be.
    """
    from kiosk.aggregate import period_start
    from kiosk.camera.sources import video_frames
    from kiosk.clock import clock_synced
    from kiosk.store.aggregates import AggregateStore
    from kiosk.store.db import open_db
    from kiosk.summary import build_summary, context_from_config
    from kiosk.wiring import VisitChain

    chain = VisitChain(cfg, pipeline)
    db = open_db(db_path if db_path is not None else ":memory:")
    store = AggregateStore(db)
    last_flush = last_t = 0.0
    for _, t, frame in video_frames(str(video)):
        last_t = t
        for v in chain.process(frame, t, start_wall + t):
            emit({"visit": v.to_dict()})
        if t - last_flush >= cfg.store.flush_interval_s:
            store.write(chain.drain())
            last_flush = t
    for v in chain.finish():
        emit({"visit": v.to_dict()})
    store.write(chain.drain())
    # the same versioned, k-suppressed payload a device publishes, over the whole clip
    first = period_start(start_wall, cfg.store.period_s)
    last = period_start(start_wall + max(0.0, last_t), cfg.store.period_s) + cfg.store.period_s
    ctx = context_from_config(cfg, pipeline.model_versions, period_s=last - first)
    summary = build_summary(db, ctx, first, seq=0, dropped=0, clock_synced=clock_synced())
    return {"summary": summary, "frames": chain.frames, "faces": chain.faces, "excluded_faces": chain.excluded}
