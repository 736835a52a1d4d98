"""Placement advice from the faces of the last minute: a histogram of face sizes, the shares too
small to be counted or to be described, and what to change (closer, resolution, detector, tiles),
with mounting guidance. Sizes are the shorter side of the detector's box, in frame pixels, the
measure ``vision.detector.min_face_px`` and ``tracking.min_sample_face_px`` use."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from kiosk.config import KioskConfig

SIZE_BINS = (0, 20, 32, 48, 64, 96, 128, 192)  # lower edges, px
FACE_WIDTH_M = 0.16  # an adult face as the detector boxes it (cheek to cheek, about 14-17 cm)
DEFAULT_HFOV_DEG = 66.0  # Raspberry Pi Camera Module 3 (the wide one: 102; USB webcams: about 60-78)
WINDOW_S = 60.0
MOUNTING = (
    "Mount the camera at about eye height or a little above (1.6 to 2.0 m), facing the way shoppers look at the "
    "shelf: the models read faces turned up to about 30 degrees from the camera.",
    "Tilt it down by no more than about 15 to 20 degrees: from high above it sees the tops of heads, not faces.",
    "Keep bright windows and lights out of the view behind shoppers: faces against the light come out dark.",
    "Cover tills, service counters and other staff places with exclusion zones: faces there are dropped before "
    "any analysis.",
)


@dataclass(frozen=True)
class SizeOptions:
    min_face_px: float
    min_sample_face_px: float
    width: int
    height: int
    detector: str
    search_tiles: int
    hfov_deg: float = DEFAULT_HFOV_DEG

    def distance_m(self, face_px: float) -> float:
        """How far a face of ``face_px`` pixels is, with this lens and frame width (a pinhole camera)."""
        import math

        focal_px = self.width / (2 * math.tan(math.radians(self.hfov_deg) / 2))
        return FACE_WIDTH_M * focal_px / max(1e-6, face_px)

    @staticmethod
    def of(cfg: KioskConfig, hfov_deg: float = DEFAULT_HFOV_DEG, width: int | None = None) -> SizeOptions:
        """``width``: the frames' real width when known (a camera may not give the size asked)."""
        return SizeOptions(
            cfg.vision.detector.min_face_px,
            cfg.tracking.min_sample_face_px,
            width or cfg.camera.width,
            cfg.camera.height,
            cfg.vision.detector.model,
            cfg.tracking.search_tiles,
            hfov_deg,
        )


class FaceSizes:
    """The sizes of the faces seen in the last ``WINDOW_S`` seconds (memory only; sizes, nothing else)."""

    def __init__(self, window_s: float = WINDOW_S, max_items: int = 20000) -> None:
        self.window_s = window_s
        self._sizes: deque[tuple[float, float]] = deque(maxlen=max_items)
        self._lock = threading.Lock()

    def add(self, sizes: list[float], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._sizes.extend((now, s) for s in sizes)

    def recent(self, now: float | None = None) -> list[float]:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._sizes and now - self._sizes[0][0] > self.window_s:
                self._sizes.popleft()
            return [s for _, s in self._sizes]


def placement_advice(sizes: list[float], o: SizeOptions) -> dict:
    """The histogram, the shares and the advice for ``sizes`` (px)."""
    counts = [0] * len(SIZE_BINS)
    for s in sizes:
        counts[max(i for i, lo in enumerate(SIZE_BINS) if lo <= s)] += 1
    n = len(sizes)
    small = sum(s < o.min_face_px for s in sizes)
    undescribed = sum(o.min_face_px <= s < o.min_sample_face_px for s in sizes)
    median = sorted(sizes)[n // 2] if n else None
    advice: list[str] = []
    if n == 0:
        advice.append(
            "No face in the last minute. Ask someone to stand where shoppers stand and to look at the products."
        )
    else:
        if small / n > 0.2:
            advice.append(
                f"{100 * small / n:.0f}% of the faces are smaller than vision.detector.min_face_px "
                f"({o.min_face_px:g} px) and are not counted: mount the camera closer to where people stand."
            )
        if (small + undescribed) / n > 0.3:
            advice.append(
                f"{100 * (small + undescribed) / n:.0f}% of the faces are smaller than tracking.min_sample_face_px "
                f"({o.min_sample_face_px:g} px): they are counted, but no emotion, age or gender is read from them. "
                "Bring the camera closer to the faces."
            )
            if o.width < 1280:
                advice.append(
                    f"Or raise the resolution: camera.width 1280 and camera.height 720 (now {o.width}x{o.height}) "
                    "make every face about twice as large in pixels, at a higher analysis cost."
                )
            if o.search_tiles < 2:
                advice.append(
                    "Set tracking.search_tiles: 3 so that small, distant faces are also searched tile by tile."
                )
            if o.detector == "face_detector_short":
                advice.append(
                    "vision.detector.model: face_detector_full_sparse finds faces beyond about 2 m; the short-range "
                    "detector does not."
                )
        if median is not None and median >= o.height / 4 and o.detector != "face_detector_short":
            advice.append(
                f"Faces are large (median {median:.0f} px of a {o.height} px frame): everyone is within about 2 m, "
                "so vision.detector.model: face_detector_short (faster) would do."
            )
        if not advice:
            advice.append(
                f"Face sizes suit the models (median {median:.0f} px; {100 * (n - small - undescribed) / n:.0f}% "
                "large enough to be described)."
            )
    counted_to, described_to = o.distance_m(o.min_face_px or 1.0), o.distance_m(o.min_sample_face_px or 1.0)
    reach = {
        "hfov_deg": o.hfov_deg,
        "width_px": o.width,
        "counted_up_to_m": round(counted_to, 1),
        "described_up_to_m": round(described_to, 1),
        "median_face_at_m": round(o.distance_m(median), 1) if median else None,
        "text": f"With a {o.hfov_deg:g} degree lens at {o.width} px wide, faces are counted up to about "
        f"{counted_to:.1f} m from the camera and described (emotion, age, gender) up to about {described_to:.1f} m"
        + (f"; the median face now is about {o.distance_m(median):.1f} m away." if median else "."),
    }
    return {
        "faces": n,
        "reach": reach,
        "window_s": WINDOW_S,
        "histogram": [
            {"from_px": lo, "to_px": SIZE_BINS[i + 1] if i + 1 < len(SIZE_BINS) else None, "faces": c}
            for i, (lo, c) in enumerate(zip(SIZE_BINS, counts))
        ],
        "median_px": round(median, 1) if median is not None else None,
        "share_not_counted": round(small / n, 3) if n else None,
        "share_not_described": round((small + undescribed) / n, 3) if n else None,
        "advice": advice,
        "mounting": list(MOUNTING),
    }
