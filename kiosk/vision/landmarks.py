"""Face mesh on the detected face: five alignment points and head pose.

The ROI follows MediaPipe's face-landmark front end: the detection box centre,
rotated so the eye line is horizontal, square on the long side, scaled by 1.5.
The 468 mesh points come back through the inverse of that warp.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from kiosk.vision.runtime import TFLiteModel
from kiosk.vision.types import Box, Detection, FaceLandmarks, HeadPose

# Mesh indices closest to dlib's 5-point model, in dlib's order:
# left eye outer and inner corner, right eye outer and inner corner, below the nose tip.
ALIGNMENT_INDICES = (263, 362, 33, 133, 2)
_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER, _FOREHEAD, _CHIN = 33, 263, 10, 152
_RIGHT_CHEEK, _LEFT_CHEEK = 234, 454  # the face oval's sides
ROI_SCALE = 1.5
_UNIT_LUT = (np.arange(256, dtype=np.float32) / np.float32(255.0)).reshape(256, 1)  # uint8 -> [0, 1]


@dataclass(frozen=True)
class Roi:
    """A rotated square in frame pixels."""

    cx: float
    cy: float
    size: float
    angle: float  # radians; the frame is rotated by -angle to make the eye line horizontal

    def to_input(self, input_size: int) -> np.ndarray:
        """2x3 affine matrix mapping frame pixels to ROI input pixels:
        input = s * R(-angle) (p - centre) + input_size / 2 (worked in plain floats: numpy on 2x2 costs more)."""
        s = input_size / self.size
        c, si = math.cos(self.angle) * s, math.sin(self.angle) * s
        half = input_size / 2.0
        return np.array([[c, si, half - (c * self.cx + si * self.cy)], [-si, c, half - (-si * self.cx + c * self.cy)]])

    def to_frame(self, input_size: int) -> tuple[float, float, float, float, float, float]:
        """The inverse of :meth:`to_input` as (a, b, tx, c, d, ty): frame x = a*u + b*v + tx, y = c*u + d*v + ty."""
        k = self.size / input_size
        c, si = math.cos(self.angle) * k, math.sin(self.angle) * k
        half = input_size / 2.0
        return (c, -si, self.cx - half * (c - si), si, c, self.cy - half * (si + c))


def roi_from_detection(det: Detection) -> Roi:
    (rx, ry), (lx, ly) = det.keypoints[0], det.keypoints[1]
    angle = math.atan2(ly - ry, lx - rx)
    cx, cy = det.box.center
    size = max(det.box.width, det.box.height) * ROI_SCALE
    return Roi(cx, cy, size, angle)


def roi_from_image(shape: tuple[int, ...]) -> Roi:
    """The whole image as the ROI (an already-cropped face)."""
    h, w = shape[:2]
    return Roi(w / 2.0, h / 2.0, float(max(w, h)), 0.0)


def head_pose(
    right_eye_outer: Sequence[float], left_eye_outer: Sequence[float], forehead: Sequence[float], chin: Sequence[float]
) -> HeadPose:
    """Yaw, pitch and roll (degrees) from the mesh's 3D points (x, y, z) in frame orientation.

    The face's own axes: x along the eye corners, y from forehead to chin.
    For a frontal, upright face all three are about zero. Signs were checked on
    the head-pose clip: yaw follows the nose's offset from the eye midpoint
    (correlation 0.97).
    """
    ex = [b - a for a, b in zip(right_eye_outer, left_eye_outer)]
    ey = [b - a for a, b in zip(forehead, chin)]
    nx = math.sqrt(sum(v * v for v in ex)) + 1e-9
    ex = [v / nx for v in ex]
    along = sum(a * b for a, b in zip(ey, ex))
    ey = [a - b * along for a, b in zip(ey, ex)]
    # yaw, pitch and roll only need directions: ey need not be normalised for atan2
    yaw = math.degrees(math.atan2(ex[2], ex[0]))
    pitch = math.degrees(math.atan2(ey[2], ey[1])) - PITCH_OFFSET_DEG
    roll = math.degrees(math.atan2(ex[1], ex[0]))
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll)


# The forehead-chin line of a frontal face leans back in the mesh's canonical
# shape; this offset (median over the frontal UTKFace dev faces) makes pitch 0 there.
PITCH_OFFSET_DEG = 13.0


class FaceMesh:
    """Runs the 468-point face mesh on a ROI."""

    def __init__(self, model: TFLiteModel) -> None:
        self._model = model
        self.input_size = int(model.inputs[0].shape[1])
        last = [int(np.prod(o.shape)) for o in model.outputs]
        self._mesh_out, self._presence_out = last.index(1404), last.index(1)

    def landmarks(self, frame: np.ndarray, roi: Roi) -> FaceLandmarks:
        """The five alignment points and head pose of the face in ``roi``. ``frame`` is BGR (H, W, 3)
        or RGBA (H, W, 4); RGBA is warped about 2.5 times faster (see :mod:`kiosk.vision.frame`), with
        identical pixels. Only the nine mesh points needed are read, and mapped back in plain floats."""
        raw, presence = self._run(frame, roi, _NEEDED)
        a, b, tx, c, d, ty = roi.to_frame(self.input_size)
        zs = roi.size / self.input_size
        pts = [(a * u + b * v + tx, c * u + d * v + ty, w * zs) for u, v, w in raw.tolist()]
        align = tuple((x, y) for x, y, _ in pts[:5])
        outline = pts[7:11]  # forehead, chin, both cheeks
        xs, ys = [p[0] for p in outline], [p[1] for p in outline]
        return FaceLandmarks(
            alignment_points=align,
            pose=head_pose(*pts[5:9]),
            presence=presence,
            extent=Box(min(xs), min(ys), max(xs), max(ys)),
        )

    def _run(self, frame: np.ndarray, roi: Roi, indices: np.ndarray) -> tuple[np.ndarray, float]:
        """The mesh points ``indices`` in ROI input pixels (x, y, z), and the presence probability."""
        n = self.input_size
        image, matrix = reduced_for(frame, roi, n)
        warped = cv2.warpAffine(image, matrix, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        patch = cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB if frame.shape[2] == 4 else cv2.COLOR_BGR2RGB)

        def fill(x: np.ndarray) -> None:
            cv2.LUT(patch, _UNIT_LUT, dst=x[0])  # straight into the input tensor

        def read(*outs):
            mesh = outs[self._mesh_out].reshape(468, 3)
            return mesh[indices].astype(np.float32), float(outs[self._presence_out].reshape(-1)[0])

        pts, raw_presence = self._model.run_in_place(fill, read)
        return pts, 1.0 / (1.0 + math.exp(-min(max(raw_presence, -80.0), 80.0)))


def reduced_for(frame: np.ndarray, roi: Roi, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The image and matrix to warp the ROI from. A bilinear warp that shrinks by 2x or more skips
    pixels (aliasing, as a plain bilinear downscale does), so the ROI's neighbourhood is first
    halved with ``cv2.pyrDown`` (Gaussian, anti-aliased) until less than 2x is left."""
    matrix = roi.to_input(input_size)
    levels = int(math.log2(roi.size / input_size)) if roi.size >= 2 * input_size else 0
    if levels == 0:
        return frame, matrix
    h, w = frame.shape[:2]
    half = roi.size * 0.7072 + 4  # the rotated square's half-diagonal, and a margin for the filter
    x0, y0 = max(int(roi.cx - half), 0), max(int(roi.cy - half), 0)
    x1, y1 = min(int(roi.cx + half) + 1, w), min(int(roi.cy + half) + 1, h)
    if x1 - x0 < 2 ** (levels + 1) or y1 - y0 < 2 ** (levels + 1):
        return frame, matrix
    small = frame[y0:y1, x0:x1]
    for _ in range(levels):
        small = cv2.pyrDown(small)
    k = float(2**levels)  # frame = (x0, y0) + k * small (pyrDown's sample i sits at source pixel 2i)
    reduced = matrix.copy()
    reduced[:, :2] = matrix[:, :2] * k
    reduced[:, 2] = matrix[:, :2] @ np.array([x0, y0], dtype=np.float64) + matrix[:, 2]
    return small, reduced


_NEEDED = np.array(ALIGNMENT_INDICES + (_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER, _FOREHEAD, _CHIN, _RIGHT_CHEEK, _LEFT_CHEEK))
