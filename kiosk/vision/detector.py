"""BlazeFace face detection (MediaPipe short- and full-range models).

Letterbox the frame to the model's square input, decode the regressors
against SSD anchors, keep sigmoid scores above the threshold, merge
overlapping boxes with weighted NMS, and map everything back to frame pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from kiosk.vision.runtime import TFLiteModel
from kiosk.vision.types import Box, Detection, DetectorOptions


def ssd_anchors(input_size: int, strides: tuple[int, ...], anchors_per_layer: int) -> np.ndarray:
    """Anchor centres (N, 2) in normalized input coordinates, in MediaPipe's order:
    consecutive layers with the same stride share a grid, and each cell holds
    all of their anchors."""
    centres: list[np.ndarray] = []
    i = 0
    while i < len(strides):
        stride = strides[i]
        repeats = 0
        while i < len(strides) and strides[i] == stride:
            repeats += anchors_per_layer
            i += 1
        fm = int(np.ceil(input_size / stride))
        ys, xs = np.meshgrid(np.arange(fm), np.arange(fm), indexing="ij")
        grid = np.stack([(xs + 0.5) / fm, (ys + 0.5) / fm], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(grid, repeats, axis=0))
    return np.concatenate(centres).astype(np.float32)


_ANCHOR_LAYOUT = {128: ((8, 16, 16, 16), 2), 192: ((4,), 1)}


def weighted_nms(rows: np.ndarray, scores: np.ndarray, iou: float, limit: int) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted NMS: each cluster of candidates overlapping the strongest remaining
    one by more than ``iou`` becomes one detection, the score-weighted mean of the cluster's rows,
    scored by its strongest. ``rows`` (N, K) start with the box corners (x0, y0, x1, y1); the other
    columns (keypoints) are averaged alike. Returns at most ``limit`` (row, score) pairs, strongest first.

    The overlaps are computed in plain Python: there are a few candidates per face, and numpy's
    per-call cost is larger than the work.
    """
    order = np.argsort(-scores, kind="stable")
    rows, scores = rows[order], scores[order]
    boxes = rows[:, :4].tolist()
    remaining = list(range(len(boxes)))
    out: list[tuple[np.ndarray, float]] = []
    while remaining and len(out) < limit:
        first = remaining[0]
        top = boxes[first]
        cluster, rest = [first], []
        for i in remaining[1:]:
            (cluster if box_iou(top, boxes[i]) > iou else rest).append(i)
        w = scores[cluster]
        out.append((w @ rows[cluster] / w.sum(), float(scores[first])))
        remaining = rest
    return out


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes given by corners (x0, y0, x1, y1), in plain floats."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / max((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter, 1e-9)


# The detector's 16 regressors per anchor: box centre x, y, width, height, then six keypoints (x, y).
# (centre, size) -> corners, applied to the first four columns; the keypoints pass through.
_TO_CORNERS = np.eye(16)
_TO_CORNERS[:4, :4] = [[1, 0, 1, 0], [0, 1, 0, 1], [-0.5, 0, 0.5, 0], [0, -0.5, 0, 0.5]]
_X_COLS = np.array([1.0, 0, 0, 0] + [1.0, 0] * 6)  # columns that hold an x coordinate (w, h hold none)
_Y_COLS = np.array([0, 1.0, 0, 0] + [0, 1.0] * 6)


class FaceDetector:
    """BlazeFace on whole frames. ``detect(frame_bgr)`` returns detections in frame pixels."""

    # uint8 -> x / 127.5 - 1 in one table look-up (cv2.LUT keeps the table's float32 depth)
    _LUT = (np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)).reshape(256, 1)

    def __init__(self, model: TFLiteModel, options: DetectorOptions) -> None:
        self.options = options
        self._model = model
        spec = model.inputs[0]
        self.input_size = int(spec.shape[1])
        if self.input_size not in _ANCHOR_LAYOUT or spec.shape[1] != spec.shape[2]:
            raise ValueError(f"{model.path.name}: unsupported detector input {spec.shape}")
        strides, per_layer = _ANCHOR_LAYOUT[self.input_size]
        anchors = ssd_anchors(self.input_size, strides, per_layer) * self.input_size
        # Each regressor row is an offset (input pixels) from its anchor centre: the anchor, per column.
        self._anchor_rows = anchors[:, :1] * _X_COLS + anchors[:, 1:] * _Y_COLS
        # The two outputs come in different orders in different files: pick by last dimension.
        last = [o.shape[-1] for o in model.outputs]
        self._reg_out, self._score_out = last.index(16), last.index(1)

    def detect(
        self,
        frame_bgr: np.ndarray,
        min_score: float | None = None,
        *,
        regions: Sequence[int | None] | None = None,
        grid: int = 1,
    ) -> list[Detection]:
        """Faces in a BGR uint8 frame (colour is converted on the small letterboxed image only),
        scoring at least ``min_score`` (default: the configured score threshold).

        With ``tiles`` = n > 1 the detector also runs on an n x n grid of overlapping tiles
        (for small, distant faces, at n * n + 1 times the cost); all candidates are merged
        by one weighted NMS. ``regions`` instead names where to look: ``None`` for the whole
        frame, ``k`` for tile k of a ``grid`` x ``grid`` tiling (a round robin over frames).
        """
        o = self.options
        if regions is None:
            views = [(frame_bgr, 0, 0)]
            if o.tiles > 1:
                views += tile_regions(frame_bgr, o.tiles)
        else:
            tiles = tile_regions(frame_bgr, grid) if grid > 1 else []
            views = [(frame_bgr, 0, 0) if r is None else tiles[r] for r in regions if r is None or r < len(tiles)]
        threshold = o.score_threshold if min_score is None else min_score
        found = [c for c in (self._candidates(img, x0, y0, threshold) for img, x0, y0 in views) if c is not None]
        if not found:
            return []
        if len(found) > 1:
            found = prefer_finer_views(found, o.min_face_px)
        rows = np.concatenate([f[0] for f in found])
        scores = np.concatenate([f[1] for f in found])
        results = []
        kept: list[list[float]] = []
        for row, score in weighted_nms(rows, scores, o.nms_iou, o.max_faces):
            v = row.tolist()
            box = v[:4]
            if min(box[2] - box[0], box[3] - box[1]) < o.min_face_px:
                continue
            if any(_nested(box, other) for other in kept):
                continue  # the same face found again at another scale (tiles), inside a stronger box
            kept.append(box)
            keypoints = tuple(zip(v[4:16:2], v[5:16:2]))
            results.append(Detection(box=Box(*box), score=score, keypoints=keypoints, view_scale=v[16]))
        return results

    def _candidates(self, image: np.ndarray, x0: int, y0: int, threshold: float):
        """Rows (N, 17): box corners then six keypoints (x, y), in frame pixels, then the view's scale
        (input pixels per frame pixel); scores (N,), for the candidates above the threshold; the
        view's scale again and its corners in the frame."""
        size = self.input_size
        rgb, scale, px, py = letterbox_rgb(image, size)
        nh, nw = rgb.shape[:2]
        pad = float(self._LUT[0, 0])  # black, normalised

        def fill(x: np.ndarray) -> None:  # the letterboxed, normalised frame, written into the input tensor
            x[0, :py], x[0, py + nh :], x[0, :, :px], x[0, :, px + nw :] = pad, pad, pad, pad
            inside = x[0, py : py + nh, px : px + nw]
            out = cv2.LUT(rgb, self._LUT, dst=inside)  # written in place (OpenCV takes strided views)
            if out is not inside:
                inside[...] = out

        cut = _logit(threshold)

        def read(*outs):  # only the rows above the threshold are copied out
            raw = outs[self._score_out].reshape(-1)
            keep = raw > cut
            return keep, raw[keep].copy(), outs[self._reg_out].reshape(-1, 16)[keep]

        keep, raw_kept, reg = self._model.run_in_place(fill, read)
        if not keep.any():
            return None
        # input pixels -> frame pixels: (p - pad) / scale + region origin, for every x and y column
        shift = (x0 - px / scale) * _X_COLS + (y0 - py / scale) * _Y_COLS
        rows = (reg + self._anchor_rows[keep]) @ (_TO_CORNERS / scale) + shift @ _TO_CORNERS
        # a last column holds the view's scale: after the weighted NMS, the score-weighted mean of the views merged
        rows = np.hstack([rows, np.full((len(rows), 1), scale)])
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_kept, -80, 80)))
        h, w = image.shape[:2]
        return rows, scores, scale, (x0, y0, x0 + w, y0 + h)


# Below about 11 input pixels the detector cannot measure a face: its box stays about 9-13 input
# pixels wide whatever the face's size, and its centre wanders. Real faces of the group photos, each
# placed at 36-110 px on a 1280x720 frame (5-16 input px of the whole frame), against the box the
# same face gets at 48 input px (bench/view_boxes.py): the whole frame's box is 1.64 / 1.38 / 1.20 /
# 1.07x as wide at 36 / 44 / 52 / 60 px, the quartiles of its centre's height 0.1-0.19 widths off,
# while a tile of the 3x3 grid (2.3x finer) gives 0.96-0.99x and 0.02-0.05 widths. Two boxes that
# far apart overlap too little for the weighted NMS to merge them: one face, two detections, two tracks.
COARSE_INPUT_PX = 11.0
# Where small faces crowd (a group photo's 48 px faces a face width apart) the coarse view also
# gives a box between two of them, beside both finer faces' centres (2008_007676.jpg: 1.5 px
# beside one): a finer face's centre within this share of its width outside the coarse box counts.
COARSE_MARGIN = 0.25


ViewCandidates = tuple[np.ndarray, np.ndarray, float, tuple[int, int, int, int]]  # rows, scores, scale, view corners


def prefer_finer_views(found: list[ViewCandidates], min_face_px: float = 0.0) -> list[ViewCandidates]:
    """The candidates of several views (whole frame, tiles) with each coarse view's box dropped
    where a finer view found a face too small for the coarse view to measure (under
    :data:`COARSE_INPUT_PX` of its input pixels): the finer face's centre inside the coarse box
    (or within :data:`COARSE_MARGIN` of the finer face's width of it),
    which is 0.8-2x as wide, and the finer face not cut by its view's edge. The face is the finer
    view's, with the better of the scores (both saw it). A finer face under ``min_face_px`` (the
    detector's smallest face, which the coarse view's larger box passes) leaves things as they
    were: dropping the box would lose the face (classroom.mp4: 1.73 -> 1.58 faces per frame)."""
    keeps = [np.ones(len(rows), dtype=bool) for rows, _, _, _ in found]
    for j, (frows, fscores, fscale, (vx0, vy0, vx1, vy1)) in enumerate(found):
        fw = frows[:, 2] - frows[:, 0]
        cx, cy = (frows[:, 0] + frows[:, 2]) / 2, (frows[:, 1] + frows[:, 3]) / 2
        whole = (  # a face cut by the view's edge gets a box of its visible part
            (frows[:, 0] >= vx0 + 0.1 * fw)
            & (frows[:, 1] >= vy0 + 0.1 * fw)
            & (frows[:, 2] <= vx1 - 0.1 * fw)
            & (frows[:, 3] <= vy1 - 0.1 * fw)
        )
        for i, (rows, scores, scale, _) in enumerate(found):
            if i == j or scale >= fscale:
                continue
            small = whole & (fw * scale < COARSE_INPUT_PX) & (fw >= min_face_px)
            if not small.any():
                continue
            width = rows[:, 2] - rows[:, 0]
            for k in np.flatnonzero(keeps[i]):
                x0, y0, x1, y1 = rows[k, :4]
                m = COARSE_MARGIN * fw  # the coarse box is off by up to half a width where faces crowd
                there = small & (cx > x0 - m) & (cx < x1 + m) & (cy > y0 - m) & (cy < y1 + m)
                there &= (width[k] >= 0.8 * fw) & (width[k] <= 2.0 * fw)
                if there.any():
                    keeps[i][k] = False
                    fscores[there] = np.maximum(fscores[there], scores[k])  # in place: filtered below
    return [(rows[keep], scores[keep], scale, view) for (rows, scores, scale, view), keep in zip(found, keeps)]


def letterbox_rgb(image: np.ndarray, size: int) -> tuple[np.ndarray, float, int, int]:
    """The BGR image scaled to fit a ``size`` square (RGB), with the scale (frame pixels to input
    pixels) and the padding (x, y) that centre it there. A downscale averages: a plain bilinear
    one skips pixels and aliases small faces away (it cost a third of the faces of one photo at 6x)."""
    small, factor = halve_towards(image, size)
    h, w = small.shape[:2]
    scale = min(size / w, size / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    # the rest is less than 2x: bilinear then reads every pixel (none skipped) at a tenth of the cost
    # of an area step (0.01 against 0.18 ms from 320x180); by area only where more than 2x is left
    # (an image too thin to be halved far enough). INTER_LINEAR_EXACT: the same bilinear, rounded the same
    # on every CPU (plain INTER_LINEAR's SIMD paths differ by a grey level in a quarter of the pixels
    # between x86 and arm64, enough to move a box or an age: scripts/check-arm64)
    interp = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR_EXACT
    rgb = cv2.cvtColor(cv2.resize(small, (nw, nh), interpolation=interp), cv2.COLOR_BGR2RGB)
    return rgb, scale / factor, (size - nw) // 2, (size - nh) // 2


def halve_towards(image: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """The image halved (means of 2x2 pixels) while it still fits a ``size`` square at half its
    size or less, and the factor (a power of two) it was reduced by.

    The same anti-aliasing as one INTER_AREA resize at a fifth of the cost: OpenCV's area resize
    is SIMD-fast at exactly 2x only (1280x720 to 192x108 in one step takes 1.95 ms on the build
    machine; two halvings and an area last step 0.35 ms, a bilinear one less). An odd last row or column is left out before
    each halving, at most ``factor - 1`` pixels at the right and bottom edges (3 at 1280x720), so a
    point of the result times ``factor`` is exactly that point of the frame."""
    h, w = image.shape[:2]
    fit = min(size / w, size / h)
    levels = 0
    while fit * (2 << levels) <= 1.0 and min(w, h) >> (levels + 1) >= 1:
        levels += 1
    return halve(image, levels), 1 << levels


def halve(image: np.ndarray, levels: int) -> np.ndarray:
    """The image halved ``levels`` times (means of 2x2 pixels), its last ``2**levels - 1`` rows and
    columns at most left out so that each halving is exact."""
    if levels <= 0:
        return image
    h, w = image.shape[:2]
    out = image[: (h >> levels) << levels, : (w >> levels) << levels]
    for _ in range(levels):
        out = cv2.resize(out, (out.shape[1] // 2, out.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return out


def tile_regions(frame: np.ndarray, n: int, overlap: float = 0.3) -> list[tuple[np.ndarray, int, int]]:
    """An n x n grid of tiles, each ``overlap`` larger than its cell, as (view, x0, y0)."""
    h, w = frame.shape[:2]
    tw, th = min(w, int(w / n * (1 + overlap))), min(h, int(h / n * (1 + overlap)))
    out = []
    for i in range(n):
        for j in range(n):
            x0 = max(0, min(int((j + 0.5) * w / n - tw / 2), w - tw))
            y0 = max(0, min(int((i + 0.5) * h / n - th / 2), h - th))
            out.append((frame[y0 : y0 + th, x0 : x0 + tw], x0, y0))
    return out


def _nested(box: np.ndarray, other: np.ndarray, share: float = 0.7) -> bool:
    """Whether ``share`` of the smaller of the two boxes lies inside the other."""
    x0, y0 = max(box[0], other[0]), max(box[1], other[1])
    x1, y1 = min(box[2], other[2]), min(box[3], other[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    smaller = min((box[2] - box[0]) * (box[3] - box[1]), (other[2] - other[0]) * (other[3] - other[1]))
    return smaller > 0 and inter / smaller >= share


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))
