"""dlib's ``get_face_chip_details`` + ``extract_image_chip`` in numpy.

The age and gender models were trained on chips cut by dlib; a plain
bilinear warp of the same face shifts their outputs a lot (p(female) 0.994 vs
0.871 on one face), so this reproduces dlib's steps:

* the similarity transform from dlib's 5-point template (with padding) to the
  landmarks gives an angle and a scale; the crop rectangle is the chip square
  scaled and centred on the mapped chip centre, one pixel narrower
  (``centered_drect``);
* when the crop is much larger than the chip, the crop is first shrunk with
  ``pyramid_down<2>`` (a 5-tap [1 4 6 4 1] filter, 2:1, integer arithmetic)
  as many times as dlib would;
* the chip is sampled bilinearly, black outside the image, truncated to uint8.

Checked against dlib 20.0.1 (``converters/check_facechip.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# dlib's 5-point template in the unit square (interpolation.h, get_face_chip_details):
# left eye outer, left eye inner, right eye outer, right eye inner, nose base.
TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)


@dataclass(frozen=True)
class ChipGeometry:
    """dlib's ``chip_details``: the crop rectangle (inclusive l, t, r, b), angle and chip size."""

    rect: tuple[float, float, float, float]
    angle: float
    size: int


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity mapping src points onto dst (dst ~ m @ src + b).

    In 2D the least-squares rotation+scale has a closed form (the same solution
    as dlib's SVD-based ``find_similarity_transform`` for non-degenerate points).
    Done with plain floats: for five points numpy's per-call cost dominates.
    """
    ps, pd = src.tolist(), dst.tolist()
    n = len(ps)
    msx, msy = sum(p[0] for p in ps) / n, sum(p[1] for p in ps) / n
    mdx, mdy = sum(p[0] for p in pd) / n, sum(p[1] for p in pd) / n
    norm = dot = cross = 0.0
    for (sx, sy), (dx, dy) in zip(ps, pd):
        sx, sy, dx, dy = sx - msx, sy - msy, dx - mdx, dy - mdy
        norm += sx * sx + sy * sy
        dot += sx * dx + sy * dy
        cross += sx * dy - sy * dx
    a, c = (dot / norm, cross / norm) if norm else (1.0, 0.0)
    m = np.array([[a, -c], [c, a]])
    return m, np.array([mdx - (a * msx - c * msy), mdy - (c * msx + a * msy)])


def chip_geometry(points: np.ndarray, size: int, padding: float = 0.2) -> ChipGeometry:
    """``get_face_chip_details(det, size, padding)`` for 5 points in dlib's order."""
    chip_pts = (padding + TEMPLATE_5) * (1.0 / (2 * padding + 1)) * size
    m, b = similarity_transform(chip_pts, np.asarray(points, dtype=np.float64))
    px, py = float(m[0, 0]), float(m[1, 0])
    angle = math.atan2(py, px)
    scale = math.hypot(px, py)
    half_size = size / 2.0
    cx = px * half_size + float(m[0, 1]) * half_size + float(b[0])
    cy = py * half_size + float(m[1, 1]) * half_size + float(b[1])
    half = (size * scale - 1) / 2.0
    return ChipGeometry((cx - half, cy - half, cx + half, cy + half), angle, size)


def _area(r: tuple[float, float, float, float]) -> float:
    w, h = r[2] - r[0] + 1, r[3] - r[1] + 1
    return 0.0 if w <= 0 or h <= 0 else w * h


def _rect_down(r: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    # pyramid_down<2>::point_down(p) = p/2 - (1.25, 0.75)
    return (r[0] / 2 - 1.25, r[1] / 2 - 0.75, r[2] / 2 - 1.25, r[3] / 2 - 0.75)


def _rotate(cx: float, cy: float, x: float, y: float, c: float, s: float) -> tuple[float, float]:
    """dlib's rotate_point(center, p, angle) with c, s = cos(angle), sin(angle)."""
    dx, dy = x - cx, y - cy
    return cx + c * dx - s * dy, cy + s * dx + c * dy


def pyramid_down2(img: np.ndarray) -> np.ndarray:
    """One ``pyramid_down<2>`` step on an (H, W, C) uint8 image.

    dlib filters with [1 4 6 4 1] in both directions without a border, keeps
    every second sample starting at the third, and truncates the integer sum
    divided by 256. OpenCV's ``pyrDown`` applies the same kernel and keeps
    every second sample starting at the first, so dlib's samples are its
    second onwards; those never reach the image border. In float32 the sums
    (at most 65,280) and the division by 256 are exact, so truncating
    reproduces dlib's integer result.
    """
    rows, cols = img.shape[:2]
    if rows <= 8 or cols <= 8:
        return np.zeros((0, 0) + img.shape[2:], dtype=np.uint8)
    oc, orr = (cols - 3) // 2, (rows - 3) // 2
    out = cv2.pyrDown(img.astype(np.float32))
    if out.ndim == 2:  # OpenCV drops a single channel's axis
        out = out[:, :, None]
    return out[1 : 1 + orr, 1 : 1 + oc].astype(np.uint8)


_GRIDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    if size not in _GRIDS:
        cc, rr = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))
        _GRIDS[size] = (cc.reshape(-1), rr.reshape(-1))
    return _GRIDS[size]


def _bilinear(
    img4: np.ndarray, x0: int, y0: int, nr: int, nc: int, xs: np.ndarray, ys: np.ndarray, corners: tuple[int, ...] = ()
) -> np.ndarray:
    """dlib's interpolate_bilinear at (xs, ys) (1-D arrays) in the window of ``nr`` x ``nc`` pixels
    whose top-left corner is (x0, y0) of ``img4``, a C-contiguous (H, W, 4) uint8 image.

    Samples whose 2x2 neighbourhood leaves the window are black; values are
    truncated to uint8; the result holds the first three channels, in the
    image's order. Each pixel is gathered as one 32-bit word (no copy of the
    window) and the arithmetic runs per channel in float64, in dlib's order of
    operations. When the samples lie on an affine grid, ``corners`` (the indices
    of its four corners) lets the bounds be checked on those four alone.
    """
    n = xs.shape[0]
    if nr < 2 or nc < 2:
        return np.zeros((n, 3), dtype=np.uint8)
    left, top = np.floor(xs), np.floor(ys)
    if corners:
        sel = list(corners)
        everywhere = all(0 <= v < nc - 1 for v in left[sel].tolist()) and all(
            0 <= v < nr - 1 for v in top[sel].tolist()
        )
    else:
        everywhere = False
    li, ti = left.astype(np.intp), top.astype(np.intp)
    inside = None
    if not everywhere:
        inside = (li >= 0) & (ti >= 0) & (li < nc - 1) & (ti < nr - 1)
        li, ti = np.where(inside, li, 0), np.where(inside, ti, 0)
    width = img4.shape[1]
    words = img4.reshape(-1).view("<u4")
    idx = ti * width + li
    idx += y0 * width + x0
    px = [np.take(words, idx + offset).view(np.uint8).reshape(n, 4) for offset in (0, 1, width, width + 1)]
    fx, fy = xs - left, ys - top
    gx, gy = 1 - fx, 1 - fy
    out = np.empty((n, 3), dtype=np.uint8)
    for ch in range(3):
        tl, tr, bl, br = (p[:, ch] for p in px)  # uint8 operands are widened to float64 exactly by the ufuncs
        out[:, ch] = gy * (gx * tl + fx * tr) + fy * (gx * bl + fx * br)  # truncated, as dlib
    if inside is not None:
        out[~inside] = 0
    return out


def _four_channels(img: np.ndarray) -> np.ndarray:
    """A C-contiguous 4-channel copy of a 3-channel image (channel order kept), or the image itself."""
    if img.shape[2] == 4 and img.flags.c_contiguous:
        return img
    if img.shape[2] == 4:
        return np.ascontiguousarray(img)
    return cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)  # appends a channel; swaps nothing


def extract_chip(image: np.ndarray, geom: ChipGeometry) -> np.ndarray:
    """``extract_image_chip(image, details)`` for a rotated/scaled chip of an (H, W, 3) or (H, W, 4)
    uint8 image; the chip has three channels in the image's order (RGBA in, RGB out).

    A contiguous 4-channel image (see :class:`kiosk.vision.frame.VisionFrame`) is sampled in
    place when no pyramid step is needed. The geometry is scalar work, done with plain floats
    (numpy on 2-vectors costs more than it saves).
    """
    size = geom.size
    chip_area = float(size * size)
    l, t, r, b = geom.rect
    h, w = image.shape[:2]
    grow, down = 2.0, _rect_down(geom.rect)
    while _area(down) > chip_area:
        down = _rect_down(down)
        grow = grow * 2 + 2
    c, s = math.cos(geom.angle), math.sin(geom.angle)
    cx, cy = (l + r) / 2, (t + b) / 2
    rot = [_rotate(cx, cy, x, y, c, s) for x, y in ((l, t), (r, t), (l, b), (r, b))]
    xs_, ys_ = [p[0] for p in rot], [p[1] for p in rot]
    gl, gt = max(min(xs_) - grow, 0.0), max(min(ys_) - grow, 0.0)
    gr, gb = min(max(xs_) + grow, w - 1.0), min(max(ys_) + grow, h - 1.0)
    if gl > gr or gt > gb:
        return np.zeros((size, size, 3), dtype=np.uint8)
    bl, bt, br, bb = (math.floor(v + 0.5) for v in (gl, gt, gr, gb))
    local = (l - bl, t - bt, r - bl, b - bt)
    level = -1
    while _area(_rect_down(local)) > chip_area:
        level += 1
        local = _rect_down(local)
    if level < 0:
        src, x0, y0 = _four_channels(image), bl, bt
        nr, nc = min(bb + 1, h) - bt, min(br + 1, w) - bl
    else:
        src = image[bt : bb + 1, bl : br + 1]
        for _ in range(level + 1):
            src = pyramid_down2(src)
        src, x0, y0 = _four_channels(src), 0, 0
        nr, nc = src.shape[:2]
    ll, lt, lr, lb = local
    lcx, lcy = (ll + lr) / 2, (lt + lb) / 2
    tlx, tly = _rotate(lcx, lcy, ll, lt, c, s)
    trx, try_ = _rotate(lcx, lcy, lr, lt, c, s)
    blx, bly = _rotate(lcx, lcy, ll, lb, c, s)
    # Affine map chip (col, row) -> source: three corner correspondences determine it exactly.
    k = 1.0 / (size - 1)
    axx, axy = (trx - tlx) * k, (try_ - tly) * k
    ayx, ayy = (blx - tlx) * k, (bly - tly) * k
    cc, rr = _grid(size)
    xs = tlx + axx * cc + ayx * rr
    ys = tly + axy * cc + ayy * rr
    corners = (0, size - 1, size * (size - 1), size * size - 1)
    return _bilinear(src, x0, y0, nr, nc, xs, ys, corners).reshape(size, size, 3)


def face_chip(image: np.ndarray, points: np.ndarray, size: int, padding: float = 0.2) -> np.ndarray:
    """The dlib face chip of ``size`` x ``size`` pixels for 5 landmarks in dlib's order,
    from an (H, W, 3) or (H, W, 4) image; three channels in the image's order."""
    return extract_chip(image, chip_geometry(points, size, padding))
