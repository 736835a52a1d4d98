"""The classifiers' look-up tables give exactly the inputs of the documented float preprocessing."""

from __future__ import annotations

import cv2
import numpy as np

from kiosk.modelfiles.manifest import project_models_dir
from kiosk.vision.classifiers import (
    AGE_WEIGHTS,
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


def test_age_gender_tables_match_float_path_on_rgb_chips():
    rng = np.random.default_rng(1)
    for name, cls, size in (("age_int8.tflite", AgeEstimator, 64), ("gender_int8.tflite", GenderClassifier, 32)):
        chip_rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        with TFLiteModel(project_models_dir() / name) as m:
            est = cls(m)
            via_table = cv2.LUT(chip_rgb, est._table)[None]
            assert np.array_equal(via_table, _quantize(m, age_gender_input(chip_rgb)))


def test_classifiers_write_their_input_in_place_and_match_the_float_path():
    """The classifiers fill the interpreter's input buffer through the table; the results equal
    running the model on the documented float preprocessing."""
    rng = np.random.default_rng(2)
    dir_ = project_models_dir()
    with TFLiteModel(dir_ / "emotion_int8.tflite") as m:
        gray = rng.integers(0, 256, (70, 70), dtype=np.uint8)
        assert EmotionClassifier(m).classify(gray) == tuple(float(p) for p in m.run(emotion_input(gray))[0].reshape(-1))
    with TFLiteModel(dir_ / "age_int8.tflite") as m:
        chip = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        expected = float(m.run(age_gender_input(chip))[0].reshape(-1) @ AGE_WEIGHTS)
        assert AgeEstimator(m).estimate(chip) == expected
    with TFLiteModel(dir_ / "gender_int8.tflite") as m:
        chip = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        assert GenderClassifier(m).classify(chip) == tuple(
            float(p) for p in m.run(age_gender_input(chip))[0].reshape(-1)
        )
