"""Frame sources behind one small interface. cv2.VideoCapture and Picamera2 objects never leave here.

A source is opened, read frame by frame, and closed; :func:`open_source` picks
the kind from ``CameraOptions.source``:

- ``picamera2`` (or ``picamera2:N`` for camera N): the Pi camera, imported lazily;
- a number, or a ``/dev/video*`` / ``/dev/v4l/by-id/...`` path: a USB camera (V4L2);
- ``rtsp://``, ``http(s)://``, ``udp://``: a network stream (FFmpeg, with open and read timeouts);
- anything else: a video file, optionally looped and paced at its own frame rate.

The options, the error and the source interface are in :mod:`kiosk.camera.types`, which both
this module and :mod:`kiosk.camera.picamera` import (no import cycle).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from kiosk.camera.types import CameraError, CameraOptions, FrameSource


def describe(source: str) -> str:
    """The source for logs, without credentials in a URL."""
    if "://" in source and "@" in source.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = source.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return source


def kind_of(source: str) -> str:
    s = source.strip()
    if s == "picamera2" or s.startswith("picamera2:"):
        return "picamera2"
    if s.isdigit() or s.startswith("/dev/"):
        return "usb"
    if s.split("://", 1)[0] in ("rtsp", "rtsps", "http", "https", "udp", "tcp") and "://" in s:
        return "stream"
    return "file"


class OpenCVSource:
    def __init__(self, options: CameraOptions) -> None:
        import cv2

        self.options = options
        self.kind = kind_of(options.source)
        self.live = self.kind != "file"
        self.name = describe(options.source)
        src = options.source
        if self.kind == "usb":
            target = int(src) if src.isdigit() else src
            if not src.isdigit() and not Path(src).exists():
                raise CameraError(f"camera {src} does not exist: is it plugged in? (ls /dev/v4l/by-id/)")
            self._cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, options.width)
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, options.height)
            self._cap.set(cv2.CAP_PROP_FPS, options.fps)
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the latest frame, not a stale queue
        elif self.kind == "stream":
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(options.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(options.read_timeout_s * 1000),
            ]
            self._cap = cv2.VideoCapture(src, cv2.CAP_FFMPEG, params)
        else:
            if not Path(src).exists():
                raise CameraError(f"video file {src} does not exist: check camera.source")
            self._cap = cv2.VideoCapture(src)
        if not self._cap.isOpened():
            self._cap.release()
            hint = {
                "usb": "is it plugged in, and may this user read /dev/video* (group video)?",
                "stream": "is the URL right and the camera reachable?",
                "file": "is it a video file OpenCV can read?",
            }[self.kind]
            raise CameraError(f"cannot open {self.name}: {hint}")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.file_fps = fps if self.kind == "file" and 0 < fps < 1000 else None
        self._next_due = time.monotonic()

    def read(self) -> np.ndarray | None:
        ok, frame = self._cap.read()
        if not ok:
            return None
        if self.file_fps and self.options.realtime:  # pace a file like the camera it stands for
            self._next_due += 1.0 / self.file_fps
            delay = self._next_due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                self._next_due = time.monotonic()
        return frame

    def close(self) -> None:
        self._cap.release()


def open_source(options: CameraOptions) -> FrameSource:
    if kind_of(options.source) == "picamera2":
        from kiosk.camera.picamera import PicameraSource

        return PicameraSource(options)
    return OpenCVSource(options)


def video_frames(path: str, every: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
    """(index, seconds, frame) of every ``every``-th frame of a video file, timed at its own frame
    rate (10 frames/s when the file does not say), as fast as they decode: for analysing a clip.
    Raises OSError when the file cannot be opened."""
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
