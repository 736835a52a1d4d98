"""dlib-exact face chips."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from kiosk.vision.facechip import TEMPLATE_5, _bilinear, chip_geometry, extract_chip, face_chip, pyramid_down2


def test_template_points_map_to_an_axis_aligned_chip():
    size, padding = 64, 0.2
    pts = (padding + TEMPLATE_5) / (2 * padding + 1) * size * 3 + [100, 50]  # 3x larger, shifted
    g = chip_geometry(pts, size, padding)
    assert g.angle == pytest.approx(0.0, abs=1e-9)
    assert g.rect[2] - g.rect[0] == pytest.approx(3 * size - 1)  # dlib's one-pixel-narrower box
    # centred on the image point the chip centre maps to: 3 * size / 2 from the shift
    assert (g.rect[0] + g.rect[2]) / 2 == pytest.approx(100 + 3 * size / 2)
    assert (g.rect[1] + g.rect[3]) / 2 == pytest.approx(50 + 3 * size / 2)


def test_rotation_is_recovered():
    size = 32
    base = (0.2 + TEMPLATE_5) / 1.4 * size * 2
    a = np.deg2rad(20)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    g = chip_geometry(base @ rot.T + 200, size)
    assert np.rad2deg(g.angle) == pytest.approx(20, abs=1e-6)


def test_pyramid_down_sizes_and_constant_images():
    img = np.full((100, 81, 3), 200, np.uint8)
    out = pyramid_down2(img)
    assert out.shape == ((100 - 3) // 2, (81 - 3) // 2, 3)
    assert np.all(out == 199) or np.all(out == 200)  # integer filter truncates
    assert pyramid_down2(np.zeros((8, 50, 3), np.uint8)).shape[:2] == (0, 0)


@pytest.mark.parametrize("shape", [(9, 9, 3), (10, 11, 4), (37, 24, 3), (40, 53, 4)])
def test_pyramid_down_matches_dlibs_integer_filter(shape):
    """Each output pixel is the [1 4 6 4 1] x [1 4 6 4 1] sum over the 5x5 window whose top-left
    corner is (2i, 2j), divided by 256 and truncated (dlib's pyramid_down<2>)."""
    img = np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8)
    out = pyramid_down2(img)
    k = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1])
    assert out.shape == ((shape[0] - 3) // 2, (shape[1] - 3) // 2, shape[2])
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            window = img[2 * i : 2 * i + 5, 2 * j : 2 * j + 5].astype(np.int64)
            assert out[i, j].tolist() == ((window * k[:, :, None]).sum(axis=(0, 1)) // 256).tolist(), (i, j)


def test_chip_of_a_large_face_uses_the_pyramid_and_keeps_content():
    rng = np.random.default_rng(1)
    img = np.zeros((800, 800, 3), np.uint8)
    img[200:600, 200:600] = rng.integers(100, 200, (400, 400, 3))
    pts = (0.2 + TEMPLATE_5) / 1.4 * 400 + 200
    chip = face_chip(img, pts, 64)
    assert chip.shape == (64, 64, 3)
    assert 100 <= chip[8:56, 8:56].mean() <= 200


def test_chip_outside_the_image_is_black():
    img = np.full((50, 50, 3), 255, np.uint8)
    pts = (0.2 + TEMPLATE_5) / 1.4 * 40 + 1000
    assert extract_chip(img, chip_geometry(pts, 32)).max() == 0


_FACES = (
    np.array([[260, 120], [230, 122], [150, 118], [180, 121], [205, 170]]),  # inside the image
    np.array([[110, 40], [80, 42], [0, 38], [30, 41], [55, 90]]),  # its chip leaves the image (top left)
    np.array([[351, 225], [270, 230], [81, 220], [162, 228], [230, 360]]),  # large: pyramid steps
)


def test_matches_dlib_when_available():
    dlib = pytest.importorskip(
        "dlib", reason="dlib is not installed here; converters/check_facechip.py runs this check"
    )
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    for pts in _FACES:
        shape = dlib.full_object_detection(dlib.rectangle(0, 0, 400, 300), [dlib.point(int(x), int(y)) for x, y in pts])
        for size in (32, 64):
            ref = dlib.extract_image_chip(img, dlib.get_face_chip_details(shape, size, 0.2))
            ours = face_chip(img, pts.astype(float), size)
            assert np.abs(ref.astype(int) - ours.astype(int)).max() <= 1, (pts.tolist(), size)


def test_rgba_frame_gives_the_same_chip_in_rgb_order():
    """The pipeline cuts chips from the RGBA frame (sampled in place, or after pyramid steps): the
    same pixels as from the BGR frame, channels reversed."""
    rng = np.random.default_rng(3)
    bgr = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    rgba = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA)
    for pts in _FACES:
        for size in (32, 64):
            assert np.array_equal(face_chip(rgba, pts, size), face_chip(bgr, pts, size)[:, :, ::-1])


def test_bilinear_matches_dlibs_formula_sample_by_sample():
    """The vectorised sampler against dlib's interpolate_bilinear written out per sample,
    with samples inside, on the border and outside the window."""
    rng = np.random.default_rng(4)
    img4 = rng.integers(0, 256, (40, 50, 4), dtype=np.uint8)
    x0, y0, nr, nc = 5, 3, 30, 40
    xs, ys = rng.uniform(-3, nc + 2, 500), rng.uniform(-3, nr + 2, 500)
    xs[:4], ys[:4] = [0.0, nc - 1.0, nc - 1.5, 0.25], [0.0, 0.5, nr - 1.0, nr - 1.5]
    ours = _bilinear(img4, x0, y0, nr, nc, xs, ys)
    for k, (x, y) in enumerate(zip(xs.tolist(), ys.tolist())):
        left, top = math.floor(x), math.floor(y)
        if not (0 <= left < nc - 1 and 0 <= top < nr - 1):
            assert not ours[k].any()
            continue
        fx, fy = x - left, y - top
        win = img4[y0 + top : y0 + top + 2, x0 + left : x0 + left + 2].astype(float)
        for ch in range(3):
            tl, tr, bl, br = win[0, 0, ch], win[0, 1, ch], win[1, 0, ch], win[1, 1, ch]
            v = (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
            assert ours[k, ch] == int(v), (x, y, ch)
