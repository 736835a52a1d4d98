"""Face detection: anchors, NMS, and recall on the VOC group photos."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from kiosk.modelfiles.manifest import project_models_dir
from kiosk.vision.detector import FaceDetector, ssd_anchors, weighted_nms
from kiosk.vision.runtime import TFLiteModel
from kiosk.vision.types import DetectorOptions
from tests.conftest import data_path


def test_anchor_layouts_match_the_models():
    assert ssd_anchors(128, (8, 16, 16, 16), 2).shape == (896, 2)
    full = ssd_anchors(192, (4,), 1)
    assert full.shape == (2304, 2)
    assert np.allclose(full[0], [0.5 / 48, 0.5 / 48]) and np.allclose(full[1], [1.5 / 48, 0.5 / 48])


def test_weighted_nms_merges_overlaps_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=float)
    kps = np.zeros((3, 12))
    kps[1] += 1.0
    rows = np.hstack([boxes, kps])
    scores = np.array([0.3, 0.9, 0.8])
    rows[[0, 1]] = rows[[1, 0]]  # the strongest is not first
    out = weighted_nms(rows, scores, iou=0.3, limit=10)
    assert len(out) == 2
    row, score = out[0]
    assert score == pytest.approx(0.9)
    assert row[0] == pytest.approx(0.3 / 1.2)  # (0*0.9 + 1*0.3) / 1.2
    assert row[4] == pytest.approx(0.3 / 1.2)
    assert out[1][1] == pytest.approx(0.8) and list(out[1][0][:4]) == [50, 50, 60, 60]
    assert len(weighted_nms(rows, scores, iou=0.3, limit=1)) == 1


def test_weighted_nms_keeps_a_degenerate_box_as_its_own_cluster():
    rows = np.zeros((2, 16))
    rows[1, :4] = [0, 0, 10, 10]
    out = weighted_nms(rows, np.array([0.9, 0.5]), iou=0.3, limit=10)
    assert [s for _, s in out] == [0.9, 0.5] and all(np.isfinite(r).all() for r, _ in out)


def _iou(a, b):
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _voc_recall(detector: FaceDetector) -> tuple[int, int, int]:
    root = data_path("group-photos")
    tp = total = fp = 0
    for xml in ("training.xml", "testing.xml"):
        for image in ET.parse(root / xml).getroot().iter("image"):
            bgr = cv2.imread(str(root / image.get("file")))
            truth = [
                (
                    int(b.get("left")),
                    int(b.get("top")),
                    int(b.get("left")) + int(b.get("width")),
                    int(b.get("top")) + int(b.get("height")),
                )
                for b in image.iter("box")
                if b.get("ignore") != "1"
            ]
            found = [(d.box.x0, d.box.y0, d.box.x1, d.box.y1) for d in detector.detect(bgr)]
            used: set[int] = set()
            for t in truth:
                cands = [(j, _iou(t, f)) for j, f in enumerate(found) if j not in used]
                if cands:
                    j, best = max(cands, key=lambda c: c[1])
                    if best >= 0.4:
                        used.add(j)
                        tp += 1
            total += len(truth)
            fp += len(found) - len(used)
    return tp, total, fp


@pytest.mark.parametrize(
    "model_file, min_recall",
    [
        ("face_detection_full_range_sparse.tflite", 0.97),
        ("face_detection_full_range.tflite", 0.95),
    ],
)
def test_voc_group_photo_recall(model_file, min_recall):
    with TFLiteModel(project_models_dir() / model_file) as m:
        tp, total, fp = _voc_recall(FaceDetector(m, DetectorOptions(min_face_px=0)))
    assert total == 43
    assert tp / total >= min_recall, f"recall {tp}/{total}"
    assert fp <= 2, f"{fp} false positives"


def test_no_face_on_dogs(pipeline):
    img = cv2.imread(str(data_path("group-photos", "dogs.jpg")))
    assert pipeline.analyze(img) == []


def test_obama_and_biden_two_adult_men(pipeline):
    img = cv2.imread(str(data_path("group-photos", "obama_and_biden.jpg")))
    faces = pipeline.analyze(img)
    assert len(faces) == 2
    for f in faces:
        assert f.gender[1] > 0.9 and 35 <= f.age <= 80
        assert abs(f.landmarks.pose.yaw) < 30
