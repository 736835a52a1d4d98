"""Frame sources and the capture thread. The Pi camera is the one part with a stand-in (no machine
here has one): a fake ``picamera2`` module; everything else uses real OpenCV sources."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

from kiosk.camera.capture import Capture
from kiosk.camera.sources import describe, kind_of, open_source
from kiosk.camera.types import CameraError, CameraOptions
from tests.helpers import make_clip, wait_for


def test_source_kinds_and_credentials_hidden_in_logs():
    assert [
        kind_of(s)
        for s in ("picamera2", "picamera2:1", "0", "/dev/v4l/by-id/usb-cam", "rtsp://h/s", "http://h/mjpg", "clip.mp4")
    ] == ["picamera2", "picamera2", "usb", "usb", "stream", "stream", "file"]
    assert describe("rtsp://admin:secret@10.0.0.5:554/live") == "rtsp://***@10.0.0.5:554/live"


def test_missing_picamera2_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # not importable, as on any non-Pi machine
    with pytest.raises(CameraError) as exc:
        open_source(CameraOptions(source="picamera2"))
    assert "python3-picamera2" in str(exc.value) and "--system-site-packages" in str(exc.value)


def test_missing_usb_camera_file_and_unreachable_stream_are_clear_errors(tmp_path):
    with pytest.raises(CameraError, match="does not exist: is it plugged in"):
        open_source(CameraOptions(source="/dev/v4l/by-id/usb-nothing-video-index0"))
    with pytest.raises(CameraError, match="does not exist: check camera.source"):
        open_source(CameraOptions(source=str(tmp_path / "missing.mp4")))
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(CameraError, match="cannot open"):
        open_source(CameraOptions(source=str(tmp_path / "notes.mp4")))
    started = time.monotonic()
    with pytest.raises(CameraError, match="is the URL right"):
        open_source(CameraOptions(source="rtsp://127.0.0.1:9/none", open_timeout_s=2, read_timeout_s=2))
    assert time.monotonic() - started < 10


def _fake_picamera2(frames: list, configs: list):
    """A stand-in ``picamera2`` module: hands out ``frames`` (arrays, or exceptions to raise)."""
    module = types.ModuleType("picamera2")

    class Picamera2:
        def __init__(self, index=0):
            self.index = index
            self.started = False

        def create_video_configuration(self, main, buffer_count, controls):
            return {"main": main, "buffer_count": buffer_count, "controls": controls}

        def configure(self, config):
            configs.append(config)

        def start(self):
            self.started = True

        def capture_array(self, stream):
            assert stream == "main" and self.started
            item = frames.pop(0) if frames else RuntimeError("camera unplugged")
            if isinstance(item, Exception):
                raise item
            return item

        def stop(self):
            self.started = False

        def close(self):
            pass

    module.Picamera2 = Picamera2
    return module


def test_pi_camera_small_stream_bad_frames_dropped_and_reopened(monkeypatch):
    good = np.zeros((240, 328, 4), np.uint8)  # stride padding (328 > 320) and an alpha byte, as libcamera gives
    frames = [good, good, np.zeros((10, 10, 3), np.uint8), good.astype(np.float32), good, RuntimeError("gone")]
    configs: list = []
    monkeypatch.setitem(sys.modules, "picamera2", _fake_picamera2(frames, configs))
    capture = Capture(
        CameraOptions(
            source="picamera2", width=320, height=240, fps=8, read_timeout_s=1, reopen_min_s=0.2, reopen_max_s=0.5
        )
    )
    capture.start()
    try:
        got = []

        def take() -> bool:  # every frame the analysis side is handed, until the stand-in's list is used up
            frame = capture.wait_frame(0.1)
            if frame is not None:
                got.append(frame)
            return capture.delivered == 3 and capture.bad == 2 and capture.reopens >= 1

        assert wait_for(take, 20), (capture.delivered, capture.bad, capture.reopens)
        take()  # the newest good frame stays in the slot until taken
    finally:
        capture.stop()
    assert got, "no frame reached the analysis side"
    assert configs[0]["main"] == {"size": (320, 240), "format": "RGB888"} and configs[0]["controls"] == {"FrameRate": 8}
    assert all(f.image.shape == (240, 320, 3) for f in got)  # padding and alpha cropped; nothing larger captured
    assert capture.bad == 2  # the tiny frame and the float frame


def test_latest_frame_wins_when_analysis_is_slower_than_the_camera(tmp_path):
    clip = make_clip(tmp_path / "clip.avi", seconds=3, fps=30)
    capture = Capture(CameraOptions(source=str(clip), realtime=True, loop=True))
    capture.start()
    try:
        seen = []
        deadline = time.monotonic() + 60
        while capture.replaced < 30 and time.monotonic() < deadline:
            frame = capture.wait_frame(0.5)
            if frame is not None:
                seen.append(frame.index)
            time.sleep(0.1)  # analysis slower than the camera (at most 10 frames/s against 30)
    finally:
        capture.stop()
    assert capture.replaced >= 30, capture.replaced
    assert len(seen) >= 2 and seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] - seen[0] > len(seen)  # frames skipped, the newest taken


def test_a_file_that_ends_without_loop_is_ended_not_offline(tmp_path):
    clip = make_clip(tmp_path / "clip.avi", seconds=1, fps=10)
    capture = Capture(CameraOptions(source=str(clip), realtime=False))
    capture.start()
    try:
        assert wait_for(lambda: capture.state == "ended", 5)
    finally:
        capture.stop()
    assert capture.delivered == 10
