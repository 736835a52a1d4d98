"""The Raspberry Pi camera through picamera2 (imported here only, and only when used).

picamera2 and libcamera come from Raspberry Pi OS's apt repository
(``python3-picamera2``) into a virtual environment made with
``--system-site-packages``; scripts/lib.sh does that on a Pi. One low-resolution
stream sized for the detector is read; nothing larger is captured.
"""

from __future__ import annotations

import numpy as np

from kiosk.camera.types import CameraError, CameraOptions


class PicameraSource:
    live = True

    def __init__(self, options: CameraOptions) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CameraError(
                "camera.source is picamera2 but picamera2 is not importable: on a Raspberry Pi install the "
                "'pi' extra the supported way, 'sudo apt install -y python3-picamera2' into a virtual environment "
                "made with --system-site-packages (scripts/demo and systemd/install.sh do both); elsewhere use "
                "a USB camera index, a stream URL or a video file"
            ) from None
        import cv2

        self._cv2 = cv2
        index = int(options.source.split(":", 1)[1]) if ":" in options.source else 0
        self.name = f"picamera2:{index}"
        self.options = options
        try:
            self._cam = Picamera2(index)
            size = (options.width - options.width % 2, options.height - options.height % 2)
            config = self._cam.create_video_configuration(
                main={"size": size, "format": "RGB888"},  # RGB888 in picamera2 is BGR byte order
                buffer_count=2,
                controls={"FrameRate": options.fps},
            )
            self._cam.configure(config)
            self._cam.start()
        except Exception as exc:  # libcamera raises RuntimeError/IndexError for a missing camera
            raise CameraError(
                f"cannot start the Pi camera {index}: {exc} (is the ribbon cable seated? "
                "'rpicam-hello --list-cameras' lists the cameras)"
            ) from None
        self._size = size

    def read(self) -> np.ndarray | None:
        try:
            frame = self._cam.capture_array("main")
        except Exception:
            return None
        w, h = self._size
        return frame[:h, :w, :3]

    def close(self) -> None:
        try:
            self._cam.stop()
            self._cam.close()
        except Exception:
            pass
