"""Every downscale in the vision pipeline averages (anti-aliases) instead of skipping pixels:
the detector's letterbox (INTER_AREA) and the face-mesh warp of a large ROI (pyrDown first)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from kiosk.vision.detector import letterbox_rgb
from kiosk.vision.landmarks import Roi, reduced_for


def _checkerboard(size: int) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    board = ((x + y) % 2 * 255).astype(np.uint8)  # the finest pattern: 1-pixel squares
    return np.dstack([board, board, board, np.full_like(board, 255)])


def test_a_large_rotated_roi_is_reduced_before_the_warp_so_fine_detail_averages_to_grey():
    frame = _checkerboard(1200)
    roi = Roi(600.0, 600.0, 800.0, math.radians(12))  # 800 px into 192: a 4.2x shrink
    plain = cv2.warpAffine(frame, roi.to_input(192), (192, 192), flags=cv2.INTER_LINEAR)
    image, matrix = reduced_for(frame, roi, 192)
    assert image.shape[0] < frame.shape[0] / 3  # reduced twice (4x) before the warp
    reduced = cv2.warpAffine(image, matrix, (192, 192), flags=cv2.INTER_LINEAR)
    assert plain[..., 0].std() > 40  # bilinear skips pixels: the pattern aliases into large swings
    assert reduced[..., 0].std() < 5 and abs(float(reduced[..., 0].mean()) - 127.5) < 5  # averaged: flat grey


def test_the_reduced_warp_lands_on_the_same_place():
    frame = np.zeros((1000, 1400, 4), np.uint8)
    cv2.circle(frame, (700, 480), 120, (255, 255, 255, 255), -1)  # a smooth blob: no fine detail to lose
    roi = Roi(690.0, 500.0, 600.0, math.radians(-20))
    plain = cv2.warpAffine(frame, roi.to_input(192), (192, 192), flags=cv2.INTER_LINEAR)
    image, matrix = reduced_for(frame, roi, 192)
    reduced = cv2.warpAffine(image, matrix, (192, 192), flags=cv2.INTER_LINEAR)
    centre = lambda img: np.argwhere(img[..., 0] > 127).mean(axis=0)  # noqa: E731
    assert np.abs(centre(plain) - centre(reduced)).max() < 1.0  # the same blob, within a pixel


def test_a_small_roi_is_warped_as_before():
    frame = _checkerboard(400)
    roi = Roi(200.0, 200.0, 250.0, 0.0)  # under 2x: no reduction
    image, matrix = reduced_for(frame, roi, 192)
    assert image is frame and np.array_equal(matrix, roi.to_input(192))


def test_the_detector_letterbox_averages_when_it_shrinks():
    """A 1-pixel checkerboard shrunk 5x into the detector's input comes out grey, not aliased;
    an image smaller than the input is enlarged by the bilinear that rounds the same on every CPU."""
    rgb, scale, px, py = letterbox_rgb(_checkerboard(960)[..., :3].copy(), 192)
    assert rgb.shape == (192, 192, 3) and scale == 0.2 and (px, py) == (0, 0)
    assert rgb.std() < 8 and abs(float(rgb.mean()) - 127.5) < 2  # 5x5 blocks: 12 or 13 of 25 white
    plain = cv2.resize(_checkerboard(960)[..., :3], (192, 192), interpolation=cv2.INTER_LINEAR)
    assert plain.std() > 100  # what a bilinear shrink made of it: every sample on a black or a white pixel
    small = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    rgb, scale, px, py = letterbox_rgb(small, 192)
    assert rgb.shape == (144, 192, 3) and (px, py) == (0, 24)
    assert np.array_equal(
        rgb, cv2.cvtColor(cv2.resize(small, (192, 144), interpolation=cv2.INTER_LINEAR_EXACT), cv2.COLOR_BGR2RGB)
    )


def test_the_letterbox_halvings_keep_frame_coordinates_and_match_one_area_resize():
    """The letterbox halves the frame (2x2 means, fast) before its last step; an odd last row or
    column is left out, so input pixels still map back exactly onto frame pixels, and the image
    is the one a single INTER_AREA resize makes, to within a few grey levels."""
    rng = np.random.default_rng(3)
    frame = np.full((723, 1283, 3), 40, np.uint8)
    frame[300:360, 610:670] = 255  # a bright square, centre (639.5, 329.5) in frame pixels
    rgb, scale, _, _ = letterbox_rgb(frame, 192)  # (the padding is added around it in the input tensor)
    ys, xs = np.nonzero(rgb[..., 0].astype(float) - 40 > 0)
    weights = rgb[ys, xs, 0].astype(float) - 40
    cx, cy = (xs + 0.5) @ weights / weights.sum(), (ys + 0.5) @ weights / weights.sum()
    assert abs(cx / scale - 640.0) < 0.5 and abs(cy / scale - 330.0) < 0.5
    textured = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    textured = cv2.GaussianBlur(textured, (0, 0), 3)
    rgb, scale, px, py = letterbox_rgb(textured, 192)
    once = cv2.cvtColor(cv2.resize(textured, (192, 108), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    assert rgb.shape == (108, 192, 3) and scale == 0.15 and (px, py) == (0, 42)
    assert float(np.abs(rgb.astype(int) - once).mean()) < 2.0
