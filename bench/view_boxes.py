"""How well each detector view measures a small face: the whole frame against a tile. Prints JSON.

    .venv/bin/python bench/view_boxes.py [--data ../shared/data] [--sizes 36,44,52,60,72,90,110]

Every real face of the VOC group photos (their dlib boxes) is placed, with the rest of its photo,
at each size (face width in frame pixels) at two places of a grey 1280x720 frame. Its reference
box is the detector's on a crop where the face is 48 input pixels wide. Against it, per size: the
box from the whole frame (192 input px: 0.15 per frame px) and from the 3x3 tile that holds the
face (0.35): how many faces each view finds (score 0.3), and the median offset of the centre (x,
y, in reference widths, with the quartiles of y) and width ratio. ``COARSE_INPUT_PX`` in
``kiosk/vision/detector.py`` is read from these figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from kiosk.testing.group_photos import labelled_faces, place_face  # noqa: E402
from kiosk.vision.detector import tile_regions  # noqa: E402
from kiosk.vision.pipeline import VisionPipeline  # noqa: E402
from kiosk.vision.types import Box, Detection  # noqa: E402

FRAME_W, FRAME_H = 1280, 720
PLACES = ((400, 300), (850, 420))


def nearest(found: list[Detection], at: tuple[int, int], size: int) -> Detection | None:
    near = [d for d in found if abs(d.box.center[0] - at[0]) < 0.6 * size and abs(d.box.center[1] - at[1]) < 0.8 * size]
    return min(near, key=lambda d: np.hypot(d.box.center[0] - at[0], d.box.center[1] - at[1])) if near else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    ap.add_argument("--sizes", default="36,44,52,60,72,90,110")
    args = ap.parse_args()
    root = args.data / "group-photos"
    if not root.is_dir():
        print(json.dumps({"error": f"{root} is absent: pass --data with the shared data folder"}))
        return 2
    faces = list(labelled_faces(root))
    sizes = [int(v) for v in args.sizes.split(",")]
    offsets: dict[int, dict[str, list]] = {s: {"whole": [], "tile": []} for s in sizes}
    placed = dict.fromkeys(sizes, 0)
    with VisionPipeline() as p:
        det = p.detector
        for path, face in faces:
            img = cv2.imread(str(path))
            for size in sizes:
                for at in PLACES:
                    frame = place_face(img, face, size, at, (FRAME_W, FRAME_H))
                    side = int(size * det.input_size / 48)  # the reference view: the face at 48 input px
                    vx0, vy0 = max(0, at[0] - side // 2), max(0, at[1] - side // 2)
                    ref = nearest(
                        [
                            Detection(Box(d.box.x0 + vx0, d.box.y0 + vy0, d.box.x1 + vx0, d.box.y1 + vy0), d.score, ())
                            for d in det.detect(frame[vy0 : vy0 + side, vx0 : vx0 + side], 0.3)
                        ],
                        at,
                        size,
                    )
                    if ref is None:
                        continue
                    placed[size] += 1
                    tile = next(
                        i
                        for i, (v, tx, ty) in enumerate(tile_regions(frame, 3))
                        if tx + 0.2 * v.shape[1] < at[0] < tx + 0.8 * v.shape[1]
                        and ty + 0.2 * v.shape[0] < at[1] < ty + 0.8 * v.shape[0]
                    )
                    for view, regions, grid in (("whole", [None], 1), ("tile", [tile], 3)):
                        d = nearest(det.detect(frame, 0.3, regions=regions, grid=grid), at, size)
                        if d is not None:
                            r = ref.box
                            offsets[size][view].append(
                                (
                                    (d.box.center[0] - r.center[0]) / r.width,
                                    (d.box.center[1] - r.center[1]) / r.width,
                                    d.box.width / r.width,
                                )
                            )
    report = []
    for size in sizes:
        row: dict = {
            "face_px": size,
            "faces": placed[size],
            "whole_input_px": round(size * det.input_size / FRAME_W, 1),
        }
        for view, got in offsets[size].items():
            v = np.array(got).reshape(-1, 3)
            row[view] = {
                "found": len(v),
                "dx": round(float(np.median(v[:, 0])), 3) if len(v) else None,
                "dy": round(float(np.median(v[:, 1])), 3) if len(v) else None,
                "dy_quartiles": [round(float(q), 3) for q in np.percentile(v[:, 1], [25, 75])] if len(v) else None,
                "width_ratio": round(float(np.median(v[:, 2])), 3) if len(v) else None,
            }
        report.append(row)
    print(json.dumps({"frame": f"{FRAME_W}x{FRAME_H}", "photos_faces": len(faces), "by_size": report}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
