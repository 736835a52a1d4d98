"""One frame as the vision stage sees it: validated once, colour-converted once.

Every face in a frame is warped and cut from the same image. OpenCV warps a
4-channel image with SIMD code but a 3-channel one without (145 us against
56 us for the 192 px face-mesh input on the build machine), and the dlib chip
sampler reads each pixel as one 32-bit word, so the frame is converted to RGBA
once, on first use, and shared by every face. The RGBA copy lives as long as
the :class:`VisionFrame` and never leaves the vision stage.
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_FRAME_PIXELS = 40_000_000  # refuse absurd frames rather than exhaust memory on the device


class FrameError(ValueError):
    """The frame cannot be analysed (empty, wrong type, wrong shape). The message says why."""


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """Validate a frame (BGR, BGRA or grayscale uint8) and return it as BGR, without a copy when it is BGR."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame must be uint8, got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise FrameError(f"frame must be HxW, HxWx3 or HxWx4, got shape {frame.shape}")
    h, w = frame.shape[:2]
    if h == 0 or w == 0:
        raise FrameError(f"frame is empty ({w}x{h})")
    if h * w > MAX_FRAME_PIXELS:
        raise FrameError(f"frame is {w}x{h}, more than {MAX_FRAME_PIXELS} pixels; downscale it first")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


class VisionFrame:
    """A validated BGR frame and its RGBA conversion (made on first use, then reused).

    Build one per camera frame and pass it to every call for that frame; a new
    frame needs a new object (a camera may reuse its buffers, so nothing is
    cached by identity).
    """

    __slots__ = ("bgr", "_rgba")

    def __init__(self, frame: np.ndarray) -> None:
        self.bgr = as_bgr(frame)
        self._rgba: np.ndarray | None = None

    @classmethod
    def of(cls, frame: np.ndarray | VisionFrame) -> VisionFrame:
        """``frame`` itself when it is already a :class:`VisionFrame`, else a new one around it."""
        return frame if isinstance(frame, VisionFrame) else cls(frame)

    @property
    def rgba(self) -> np.ndarray:
        """The frame as contiguous RGBA (H, W, 4) uint8."""
        if self._rgba is None:
            self._rgba = cv2.cvtColor(self.bgr, cv2.COLOR_BGR2RGBA)
        return self._rgba

    @property
    def shape(self) -> tuple[int, ...]:
        return self.bgr.shape
