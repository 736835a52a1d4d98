"""The classifiers' look-up tables give exactly the inputs of the documented float preprocessing."""

from __future__ import annotations

import cv2
import numpy as np

from kiosk.modelfiles.manifest import project_models_dir
from kiosk.vision.classifiers import (
    AgeEstimator,
    EmotionClassifier,
    GenderClassifier,
    _resized,
    age_gender_input,
    emotion_input,
)
from kiosk.vision.runtime import TFLiteModel


def _quantize(model: TFLiteModel, x: np.ndarray) -> np.ndarray:
    return model._prepare(0, x)


def test_emotion_table_matches_float_path():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (90, 90), dtype=np.uint8)
    with TFLiteModel(project_models_dir() / "emotion_int8.tflite") as m:
        clf = EmotionClassifier(m)
        via_table = cv2.LUT(_resized(gray), clf._table)[None, :, :, None]
        assert np.array_equal(via_table, _quantize(m, emotion_input(gray)))


def test_age_gender_tables_match_float_path_on_bgr_chips():
    rng = np.random.default_rng(1)
    for name, cls, size in (("age_int8.tflite", AgeEstimator, 64), ("gender_int8.tflite", GenderClassifier, 32)):
        chip_bgr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        with TFLiteModel(project_models_dir() / name) as m:
            est = cls(m)
            via_table = cv2.LUT(chip_bgr, est._table)[None, :, :, ::-1]
            assert np.array_equal(via_table, _quantize(m, age_gender_input(chip_bgr[:, :, ::-1])))
