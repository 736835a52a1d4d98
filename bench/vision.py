"""Vision benchmark: per-stage and per-frame latency, Python overhead, peak RSS. Prints JSON.

    .venv/bin/python bench/vision.py [--video PATH | --faces N] [--threads N] [--detector MODEL] [--mode daemon]

Targets (checked here, not in timed tests): Python work outside the
interpreters' invoke() at most 15% of the frame time; peak RSS with every
model loaded at most 150 MB. In analyze mode the work outside invoke() is
also split by part (detection, face mesh, attributes), in ms per frame.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import cv2

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from kiosk.vision.frame import VisionFrame  # noqa: E402
from kiosk.vision.pipeline import VisionPipeline  # noqa: E402
from kiosk.vision.types import DetectorOptions, PipelineOptions  # noqa: E402

STAGES = ("detect", "landmarks", "emotion", "age", "gender")


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# analyze mode: where the work outside invoke() goes (detection; the face mesh with its warp;
# crops, dlib chips and the emotion/age/gender models' input and output handling)
PARTS = ("detect", "landmarks", "attributes")
_PART_MODELS = {"detect": ("detect",), "landmarks": ("landmarks",), "attributes": ("emotion", "age", "gender")}


def analyze_in_parts(p: VisionPipeline, frame, parts: dict[str, float] | None) -> list:
    """What ``p.analyze(frame)`` does, through the same public calls, adding each part's time
    outside ``invoke()`` to ``parts`` (when given)."""
    vf = VisionFrame(frame)

    def timed(part, call, *args):
        if parts is None:
            return call(*args)
        models = [p._models[m] for m in _PART_MODELS[part] if m in p._models]
        invoke_before = sum(m.invoke_seconds for m in models)
        start = time.perf_counter()
        out = call(*args)
        parts[part] += time.perf_counter() - start - (sum(m.invoke_seconds for m in models) - invoke_before)
        return out

    result = []
    for det in timed("detect", p.detect, vf):
        landmarks = timed("landmarks", p.landmarks_for, vf, det) if p.options.landmarks else None
        result.append(timed("attributes", p.attributes_for, vf, det, landmarks))
    return result


def crowd_clip(n: int, data: Path, out: Path, seconds: float = 10.0, fps: float = 15.0) -> Path:
    """A 1280x720 clip of ``n`` real faces (UTKFace dev, 72-120 px) in a grid, each swaying a few
    pixels, for the cost per frame at a known number of faces. Written once, reused."""
    import math
    import random

    import numpy as np

    from kiosk.testing.scenario import _face_patch, _load_faces, _paste

    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(n)
    rows = _load_faces(data, rng, n)
    cols = math.ceil(math.sqrt(n * 16 / 9))
    lines = math.ceil(n / cols)
    cell_w, cell_h = 1280 / cols, 720 / lines
    faces = []
    for i, r in enumerate(rows):
        size = int(min(rng.uniform(72, 120), 0.6 * cell_w, 0.6 * cell_h))
        img, mask = _face_patch(cv2.imread(str(data / "utkface-dev" / r["path"])), size)
        faces.append((img, mask, (i % cols + 0.5) * cell_w, (i // cols + 0.5) * cell_h, rng.uniform(0, 6.28)))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (1280, 720))
    for k in range(int(seconds * fps)):
        frame = np.full((720, 1280, 3), (170, 175, 180), np.uint8)
        for img, mask, cx, cy, phase in faces:
            _paste(frame, img, mask, cx + 5 * math.sin(k / fps * 2 + phase), cy + 3 * math.cos(k / fps * 1.5 + phase))
        writer.write(frame)
    writer.release()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=PROJECT.parent / "shared/data/videos/hamilton-speech.mp4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--detector", default="face_detector_full_sparse")
    ap.add_argument(
        "--size", default="640x360", help="frames are resized to this before analysis (native: the clip's own)"
    )
    ap.add_argument(
        "--tiles", type=int, default=1, help="vision.detector.tiles: every tile of an n x n grid on every frame"
    )
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="daemon mode: a config override, e.g. tracking.search_tiles=1 (dotted path = YAML value)",
    )
    ap.add_argument("--repeat", type=int, default=2, help="passes over the clip (the first is a warm-up)")
    ap.add_argument(
        "--mode",
        choices=("analyze", "daemon"),
        default="analyze",
        help="analyze: every attribute of every face on every frame (kiosk analyze); daemon: what "
        "kiosk run does per frame (detection, mesh per tracked face, attributes sampled <= 3/s per "
        "person, tracking and visits)",
    )
    ap.add_argument(
        "--faces",
        type=int,
        default=0,
        help="instead of --video: a 1280x720 clip of this many real faces (made from ../shared/data/utkface-dev)",
    )
    args = ap.parse_args()
    if args.faces:
        data = PROJECT.parent / "shared" / "data"
        if not (data / "utkface-dev").is_dir():
            sys.exit(f"{data / 'utkface-dev'} is absent: the --faces clip is made of its faces")
        args.video = crowd_clip(args.faces, data, PROJECT / ".cache" / "bench" / f"crowd-{args.faces}.avi")
        args.size = "native"
    if args.repeat < 2:
        ap.error("--repeat must be at least 2: the first pass over the clip is a warm-up and is not timed")
    if not args.video.exists():
        sys.exit(f"benchmark clip {args.video} is absent: pass --video with any clip")
    if args.size == "native":
        cap = cv2.VideoCapture(str(args.video))
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        cap.release()
    else:
        w, h = (int(v) for v in args.size.split("x"))

    def frames():
        """Decoded one at a time (decoding is not timed), as a camera would deliver them."""
        cap = cv2.VideoCapture(str(args.video))
        try:
            while True:
                ok, f = cap.read()
                if not ok:
                    return
                yield cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) if f.shape[:2] != (h, w) else f
        finally:
            cap.release()

    rss_before = rss_mb()
    opts = PipelineOptions(detector=DetectorOptions(model=args.detector, tiles=args.tiles), num_threads=args.threads)
    t0 = time.perf_counter()
    with VisionPipeline(opts) as p:
        load_s = time.perf_counter() - t0
        rss_loaded = rss_mb()
        frame_ms, py_ms, faces = [], [], []
        parts = {part: 0.0 for part in PARTS}  # seconds outside invoke(), summed over the timed frames
        per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
        fps = cv2.VideoCapture(str(args.video)).get(cv2.CAP_PROP_FPS) or 25.0
        for rep in range(args.repeat):
            chain = None
            if args.mode == "daemon":
                import yaml

                from kiosk.config import parse_config
                from kiosk.wiring import VisitChain

                raw: dict = {}
                for item in args.overrides:
                    key, _, value = item.partition("=")
                    *parents, leaf = key.split(".")
                    node = raw
                    for part in parents:
                        node = node.setdefault(part, {})
                    node[leaf] = yaml.safe_load(value)
                chain = VisitChain(parse_config(raw), p)
            for i, f in enumerate(frames()):
                models = p._models
                before = {s: (m.invoke_seconds, m.invocations) for s, m in models.items()}
                start = time.perf_counter()
                if chain is None:
                    result = analyze_in_parts(p, f, parts if rep else None)
                else:
                    seen = chain.faces
                    chain.process(f, i / fps, 1.8e9 + i / fps)
                    result = [None] * (chain.faces - seen)
                elapsed = time.perf_counter() - start
                if rep == 0:
                    continue
                invoke = 0.0
                for s, m in models.items():
                    ds, dn = m.invoke_seconds - before[s][0], m.invocations - before[s][1]
                    invoke += ds
                    if dn:
                        per_stage[s].append(1000 * ds / dn)
                frame_ms.append(1000 * elapsed)
                py_ms.append(1000 * (elapsed - invoke))
                faces.append(len(result))
        runtime = p.runtime
    median_frame = statistics.median(frame_ms)
    out = {
        "benchmark": "vision",
        "mode": args.mode,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "runtime": runtime,
        "threads": args.threads,
        "detector": args.detector,
        "tiles": args.tiles,
        "overrides": args.overrides,
        "clip": args.video.name,
        "frame_size": f"{w}x{h}",
        "frames_timed": len(frame_ms),
        "faces_per_frame": round(statistics.mean(faces), 2),
        "stage_median_ms": {s: round(statistics.median(v), 3) if v else None for s, v in per_stage.items()},
        "frame_ms": {
            "median": round(median_frame, 2),
            "p90": round(sorted(frame_ms)[int(0.9 * len(frame_ms))], 2),
            "mean": round(statistics.mean(frame_ms), 2),
        },
        "python_ms_median": round(statistics.median(py_ms), 2),
        "python_ms_per_frame_by_part": (
            {part: round(1000 * v / len(frame_ms), 3) for part, v in parts.items()} if args.mode == "analyze" else None
        ),
        "python_share_of_frame": round(sum(py_ms) / sum(frame_ms), 3),
        "model_load_s": round(load_s, 3),
        "rss_mb": {
            "before_models": round(rss_before, 1),
            "models_loaded": round(rss_loaded, 1),
            "peak": round(peak_rss_mb(), 1),
        },
        "targets": {"python_share_max": 0.15, "peak_rss_mb_max": 150},
    }
    out["targets_met"] = {
        "python_share": out["python_share_of_frame"] <= 0.15,
        "peak_rss": out["rss_mb"]["peak"] <= 150,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
