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
keep waiting). Colour histograms (see :func:`kiosk.tracking.observer.appearance_at`), and for
"gone" also the grey-level pattern (:meth:`SceneBackground.pattern_match`): colours alone read a
grey restocking cage in front of a shopper as the grey shelf behind her.
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

    def pattern_match(self, bgr: np.ndarray, region: tuple[float, float, float, float]) -> float | None:
        """How the grey-level pattern of ``region`` (frame-pixel corners) in ``bgr`` correlates with
        the empty scene's there (zero-mean normalised cross-correlation, -1 to 1; a change of the
        light scales and shifts the levels and leaves it alone): near 1 where the shelves show again,
        near 0 where something stands in front of them. None before the first frame or for a
        region under 4x4 pixels of the empty scene."""
        empty = self.image
        if empty is None:
            return None
        k = self.factor
        eh, ew = empty.shape[:2]
        x0, y0 = max(int(region[0] / k), 0), max(int(region[1] / k), 0)
        x1, y1 = min(int(region[2] / k), ew), min(int(region[3] / k), eh)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        fx0, fy0 = x0 * k, y0 * k
        fx1, fy1 = min(x1 * k, bgr.shape[1]), min(y1 * k, bgr.shape[0])
        now = cv2.resize(bgr[fy0:fy1, fx0:fx1], (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        a = cv2.cvtColor(now, cv2.COLOR_BGR2GRAY).astype(np.float32)
        b = cv2.cvtColor(empty[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
        a -= a.mean()
        b -= b.mean()
        norm = float(np.linalg.norm(a) * np.linalg.norm(b))
        return float((a * b).sum()) / norm if norm > 0 else 0.0
