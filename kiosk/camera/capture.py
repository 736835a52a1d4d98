"""The capture thread: reads a source into a one-frame slot (the latest frame wins), reopens it
with backoff when it fails or ends, drops and counts bad frames, and says when it is stuck.

States: ``starting`` -> ``online`` <-> ``offline``; ``ended`` when a video file
that does not loop has finished. A read that blocks (a camera that hangs) is
noticed by :attr:`Capture.state` after ``read_timeout_s`` without a frame, and
:attr:`Capture.heartbeat` stops advancing, which the composition root uses to
stop feeding systemd's watchdog.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kiosk.camera.sources import describe, open_source
from kiosk.camera.types import CameraError, CameraOptions, FrameSource

log = logging.getLogger("kiosk.camera")


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    index: int  # frames delivered since start
    t: float  # monotonic seconds at capture
    wall: float  # wall-clock seconds at capture


class Capture:
    def __init__(self, options: CameraOptions, opener: Callable[[CameraOptions], FrameSource] = open_source) -> None:
        self.options = options
        self._opener = opener
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._taken = -1
        self._state = "starting"
        self.error: str | None = None
        self.delivered = 0
        self.replaced = 0  # frames overwritten before the analysis took them (inference slower than the camera)
        self.bad = 0  # empty, wrong type or wrong size
        self.reopens = 0
        self.heartbeat = time.monotonic()  # advanced by the thread whenever it is not stuck in a read or open
        self.first_attempt = threading.Event()
        self._last_frame_t = time.monotonic()
        self._shape: tuple[int, ...] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- what the analysis side sees ----------------------------------------------------------

    @property
    def state(self) -> str:
        if (
            self._state in ("starting", "online")
            and time.monotonic() - self._last_frame_t > self.options.read_timeout_s
        ):
            return "offline"  # no frame for read_timeout_s: the open or the read is blocked (a hung camera)
        return self._state

    def stuck(self) -> bool:
        """The thread has been inside one read or open for 1.5 x read_timeout_s (the stream's own
        timeouts are read_timeout_s): a hung driver or stream. It cannot be interrupted; the owner
        may :meth:`abandon` it."""
        if self._thread is None or not self._thread.is_alive() or self._stop.is_set():
            return False
        return time.monotonic() - self.heartbeat > 1.5 * self.options.read_timeout_s

    def abandon(self) -> None:
        """Leave a stuck thread behind: if its read ever returns, it closes the source and ends."""
        self._stop.set()
        self._set_state("offline", "camera stuck in a read; reopening")
        with self._cond:
            self._cond.notify_all()

    def wait_frame(self, timeout: float) -> Frame | None:
        """The newest frame not yet taken, waiting up to ``timeout``; None when there is none."""
        with self._cond:
            if self._latest is None or self._latest.index == self._taken:
                self._cond.wait(timeout)
            frame = self._latest
            if frame is None or frame.index == self._taken:
                return None
            self._taken = frame.index
            return frame

    # --- the thread ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kiosk-capture", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _set_state(self, state: str, error: str | None = None) -> None:
        if state != self._state or error != self.error:
            if state == "offline":
                log.warning("camera %s offline: %s", describe(self.options.source), error)
            elif state == "online":
                log.info("camera %s online", describe(self.options.source))
            elif state == "ended":
                log.info("video %s ended", describe(self.options.source))
        self._state, self.error = state, error

    def _run(self) -> None:
        delay = self.options.reopen_min_s
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            try:
                source = self._opener(self.options)
            except CameraError as exc:
                self._set_state("offline", str(exc))
                self.first_attempt.set()
                if self._wait_backoff(delay):
                    return
                delay = min(self.options.reopen_max_s, delay * 2)
                continue
            except Exception as exc:  # an unexpected driver error must not end the thread
                log.exception("camera open failed")
                self._set_state("offline", f"cannot open the camera: {exc!r}")
                self.first_attempt.set()
                if self._wait_backoff(delay):
                    return
                delay = min(self.options.reopen_max_s, delay * 2)
                continue
            self._shape = None
            self._last_frame_t = time.monotonic()
            delivered = self._pump(source)
            source.close()
            if self._stop.is_set():
                return
            if delivered and not source.live:
                if not self.options.loop:
                    self._set_state("ended")
                    return
                delay = self.options.reopen_min_s  # a looping file: start again at once, from its path
                continue
            if delivered:
                delay = self.options.reopen_min_s
            self.reopens += 1
            self._set_state("offline", f"{source.name} stopped delivering frames")
            if self._wait_backoff(delay):
                return
            delay = min(self.options.reopen_max_s, delay * 2)
        return

    def _wait_backoff(self, delay: float) -> bool:
        """Wait ``delay`` (with jitter) while keeping the heartbeat; True when asked to stop."""
        deadline = time.monotonic() + delay * random.uniform(0.8, 1.2)
        while time.monotonic() < deadline:
            self.heartbeat = time.monotonic()
            if self._stop.wait(min(1.0, deadline - time.monotonic())):
                return True
        return False

    def _pump(self, source: FrameSource) -> int:
        """Read until the source fails, ends or is stopped; returns the good frames delivered."""
        self.first_attempt.set()
        delivered = 0
        while not self._stop.is_set():
            image = source.read()
            now = time.monotonic()
            self.heartbeat = now
            if image is None:
                return delivered
            if not self._valid(image):
                self.bad += 1
                if now - self._last_frame_t > self.options.read_timeout_s:
                    return delivered  # only bad frames for too long: reopen
                continue
            delivered += 1
            self._last_frame_t = now
            if self._state != "online":
                self._set_state("online")
            with self._cond:
                if self._latest is not None and self._latest.index != self._taken:
                    self.replaced += 1
                self._latest = Frame(image, self.delivered, now, time.time())
                self.delivered += 1
                self._cond.notify_all()
        return delivered

    def _valid(self, image) -> bool:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
            return False
        if image.ndim == 3 and image.shape[2] not in (3, 4) or image.ndim not in (2, 3):
            return False
        if image.shape[0] < 32 or image.shape[1] < 32:
            return False
        if self._shape is None:
            self._shape = image.shape
        return image.shape == self._shape
