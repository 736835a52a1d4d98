"""The empty scene: what each place looks like when nobody stands in it, so that a shopper who
turned away and one who left can be told apart.

A running mean of the frame at a quarter of its resolution, updated a few times a second
everywhere except where a tracked person is (their face, the hair above it and the clothes below
it, for waiting tracks too). Memory only, never stored or sent, dropped with the process; at a
quarter resolution and averaged over seconds, a passing face is a smear and a standing one is
masked out, so it holds the shelves, not the shoppers.

A waiting track (a face lost where its person is likely still there) asks it whether its place
now looks like its person (turned away, still there), like the empty scene (gone: the next
shopper who steps in is somebody else), or like neither (hidden behind a passer-by or a cage:
keep waiting). Colour histograms only (see :func:`kiosk.tracking.observer.appearance_at`).
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from kiosk.vision.detector import halve

LEVELS = 2  # a quarter of the frame's resolution: 320x180 for 1280x720


class SceneBackground:
    def __init__(self, rate: float = 0.25, every_s: float = 0.5) -> None:
        self.rate = rate  # weight of each update: a place left empty is mostly background again in ~3 s
        self.every_s = every_s
        self._mean: np.ndarray | None = None
        self._image: np.ndarray | None = None
        self._last = float("-inf")

    @property
    def factor(self) -> int:
        return 1 << LEVELS

    def update(self, bgr: np.ndarray, t: float, people: Iterable[tuple[float, float, float, float]]) -> None:
        """Fold the frame in (at most every ``every_s``), except inside ``people`` (frame-pixel
        corners of the regions that persons cover)."""
        if t - self._last < self.every_s:
            return
        self._last = t
        small = halve(bgr, LEVELS)
        if self._mean is None or self._mean.shape[:2] != small.shape[:2]:
            self._mean = small.astype(np.float32)
        else:
            mask = np.full(small.shape[:2], 255, np.uint8)
            k = self.factor
            for x0, y0, x1, y1 in people:
                cv2.rectangle(mask, (int(x0 / k), int(y0 / k)), (int(x1 / k) + 1, int(y1 / k) + 1), 0, -1)
            cv2.accumulateWeighted(small, self._mean, self.rate, mask)
        self._image = None

    @property
    def image(self) -> np.ndarray | None:
        """The empty scene as BGR uint8 at a quarter resolution, or None before the first frame."""
        if self._image is None and self._mean is not None:
            self._image = cv2.convertScaleAbs(self._mean)
        return self._image
