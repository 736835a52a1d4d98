"""Faces made unidentifiable before a frame leaves the process: every box (grown by a margin) is
pixelated to a few blocks and then smoothed, so no detail finer than about a sixth of the face is
left (measured by the test: the high-frequency energy in each face box drops by far more than 90%)."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

BLOCKS = 6  # blocks across a face: enough to see where a face is, not whose it is
MARGIN = 0.3  # the box is grown by this share of its size on every side (hair, chin, a box a bit off)


def blur_faces(
    image: np.ndarray, boxes: Iterable[tuple[float, float, float, float]], margin: float = MARGIN
) -> np.ndarray:
    """A copy of ``image`` with each (x0, y0, x1, y1) box, grown by ``margin``, pixelated and smoothed."""
    out = image.copy()
    h, w = out.shape[:2]
    for x0, y0, x1, y1 in boxes:
        mx, my = (x1 - x0) * margin, (y1 - y0) * margin
        a0, b0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
        a1, b1 = min(w, int(np.ceil(x1 + mx))), min(h, int(np.ceil(y1 + my)))
        if a1 - a0 < 2 or b1 - b0 < 2:
            continue
        region = out[b0:b1, a0:a1]
        small = cv2.resize(region, (BLOCKS, BLOCKS), interpolation=cv2.INTER_AREA)
        blocks = cv2.resize(small, (a1 - a0, b1 - b0), interpolation=cv2.INTER_LINEAR)
        k = max(3, (min(a1 - a0, b1 - b0) // 4) | 1)
        out[b0:b1, a0:a1] = cv2.GaussianBlur(blocks, (k, k), 0)
    return out
