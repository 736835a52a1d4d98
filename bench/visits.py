"""Tracking + visit + aggregation benchmark (the layers after vision). Prints JSON.

    .venv/bin/python bench/visits.py [--long-frames 100000]

Vision is replaced by a synthetic face source (boxes that walk in, stand and
leave; fixed landmarks and attributes), so that the figures are the cost of
the tracker, the per-track bookkeeping, the visit builder and the aggregator
alone, per frame, with 1, 5 and 20 faces in view. Memory: RSS and traced
Python allocations after 10,000 and after N frames of a scene whose people
keep coming and going; the target is RSS growth below 5% between the two. The
traced figure (a ~25 KB base) moves by the objects alive at the sampling
instant (the frame's detections, cells not yet flushed), so it is reported in
bytes too rather than judged in percent.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kiosk.config import parse_config  # noqa: E402
from kiosk.vision.types import AnalysedFace, Box, Detection, FaceLandmarks, HeadPose, PipelineOptions  # noqa: E402
from kiosk.wiring import VisitChain  # noqa: E402

FPS = 10.0
W, H = 640, 360


class SyntheticFaces:
    """Stands in for VisionPipeline in this benchmark only: ``n`` people at a time, each
    walking in, standing ~20 s and leaving, then replaced by someone new."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.options = PipelineOptions()
        self.rng = np.random.default_rng(seed)
        self.people = [self._new(i, 0.0) for i in range(n)]

    GAP_S = 3.0  # a slot stays empty this long between two people (longer than the tracker's max_age)

    def _new(self, slot: int, t: float) -> dict:
        lane_y = 40 + (slot % 5) * 65
        x = 30 + (slot // 5) * 150 + float(self.rng.uniform(0, 40))
        return {"slot": slot, "t0": t + self.GAP_S, "life": float(self.rng.uniform(2, 30)), "x": x, "y": lane_y}

    def frame_at(self, t: float) -> np.ndarray:
        for i, p in enumerate(self.people):
            if t - p["t0"] > p["life"]:
                self.people[i] = self._new(p["slot"], t)
        return self._frame

    _frame = np.full((H, W, 3), 127, np.uint8)

    def detect(self, frame, min_score=None, regions=None, grid=1):  # every face, wherever the search looks
        t = self._t
        out = []
        for p in self.people:
            age = t - p["t0"]
            if age < 0:  # not there yet
                continue
            x = p["x"] + 3.0 * math.sin(age)
            y = p["y"]
            s = 48.0
            out.append(
                Detection(
                    Box(x - s / 2, y - s / 2, x + s / 2, y + s / 2),
                    0.9,
                    tuple((x + dx, y) for dx in (-10, 10, 0, 0, -20, 20)),
                )
            )
        return out

    def landmarks_for(self, frame, det):
        return FaceLandmarks(alignment_points=((0, 0),) * 5, pose=HeadPose(5.0, 3.0, 0.0), presence=0.99)

    def follow(self, frame, last, shift=(0.0, 0.0)):  # every face is detected on every frame here
        return None

    def attributes_for(self, frame, det, lm, whole_image=False):
        return AnalysedFace(det, lm, (0.05, 0.0, 0.05, 0.6, 0.05, 0.05, 0.2), 31.0, (0.2, 0.8))


def run(n_faces: int, frames: int, sample_every: int = 0):
    source = SyntheticFaces(n_faces)
    source._t = 0.0
    cfg = parse_config({})
    chain = VisitChain(cfg, source)  # the observer only calls detect / landmarks_for / attributes_for
    visits = 0
    samples = {}
    t_total = 0.0
    for i in range(frames):
        t = i / FPS
        source._t = t
        frame = source.frame_at(t)
        start = time.perf_counter()
        visits += len(chain.process(frame, t, 1_800_000_000 + t))
        if i % 100 == 0:
            chain.drain()  # the store's flush
        t_total += time.perf_counter() - start
        if sample_every and (i + 1) in sample_every:
            gc.collect()
            samples[i + 1] = {
                "traced_kb": round(tracemalloc.get_traced_memory()[0] / 1024, 1),
                "rss_mb": rss_mb(),
                "open_tracks": chain.observer.open_tracks,
            }
    return {
        "faces": n_faces,
        "frames": frames,
        "ms_per_frame": round(1000 * t_total / frames, 3),
        "visits": visits,
    }, samples


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=3000, help="frames per timing run")
    ap.add_argument("--long-frames", type=int, default=100_000, help="frames of the memory run")
    ap.add_argument("--long-faces", type=int, default=5)
    a = ap.parse_args()
    timing = [run(n, a.frames)[0] for n in (1, 5, 20)]
    tracemalloc.start()
    _, mem = run(a.long_faces, a.long_frames, sample_every={10_000, a.long_frames})
    tracemalloc.stop()
    early, late = mem[10_000], mem[a.long_frames]
    growth = (late["traced_kb"] - early["traced_kb"]) / early["traced_kb"]
    print(
        json.dumps(
            {
                "benchmark": "visits (tracking + visits + aggregation, vision excluded)",
                "per_frame": timing,
                "memory": {
                    "faces": a.long_faces,
                    "after_10000_frames": early,
                    f"after_{a.long_frames}_frames": late,
                    "rss_growth": round((late["rss_mb"] - early["rss_mb"]) / early["rss_mb"], 4),
                    "traced_growth": round(growth, 4),
                    "traced_growth_bytes": round(1024 * (late["traced_kb"] - early["traced_kb"])),
                    "target": "RSS growth <= 5%",
                    "target_met": late["rss_mb"] <= 1.05 * early["rss_mb"],
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
