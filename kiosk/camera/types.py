"""The camera stage's options, its error and the interface every frame source has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from kiosk.config.schema import CameraConfig, default


class CameraError(RuntimeError):
    """The source cannot be opened; the message says what to check."""


@dataclass(frozen=True)
class CameraOptions:
    """Where frames come from and how hard to try: the ``camera`` section of the config."""

    source: str = default(CameraConfig, "source")
    width: int = default(CameraConfig, "width")
    height: int = default(CameraConfig, "height")
    fps: float = default(CameraConfig, "fps")  # analysis cap; also the rate asked of live cameras
    loop: bool = default(CameraConfig, "loop")  # video files: start again at the end
    realtime: bool = default(CameraConfig, "realtime")  # video files: deliver at the file's own frame rate
    open_timeout_s: float = default(CameraConfig, "read_timeout_s")
    read_timeout_s: float = default(CameraConfig, "read_timeout_s")
    reopen_min_s: float = 1.0
    reopen_max_s: float = default(CameraConfig, "reopen_max_s")


class FrameSource(Protocol):
    name: str
    live: bool

    def read(self) -> np.ndarray | None:
        """The next frame (BGR or gray uint8), or None when the source has ended or failed."""

    def close(self) -> None: ...
