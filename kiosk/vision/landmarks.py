"""Face mesh on the detected face: five alignment points and head pose.

The ROI follows MediaPipe's face-landmark front end: the detection box centre,
rotated so the eye line is horizontal, square on the long side, scaled by 1.5.
The 468 mesh points come back through the inverse of that warp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from kiosk.vision.runtime import TFLiteModel
from kiosk.vision.types import Detection, FaceLandmarks, HeadPose

# Mesh indices closest to dlib's 5-point model, in dlib's order:
# left eye outer and inner corner, right eye outer and inner corner, below the nose tip.
ALIGNMENT_INDICES = (263, 362, 33, 133, 2)
_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER, _FOREHEAD, _CHIN = 33, 263, 10, 152
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
        """2x3 affine matrix mapping frame pixels to ROI input pixels."""
        s = input_size / self.size
        c, si = math.cos(self.angle), math.sin(self.angle)
        # input = s * R(-angle) (p - centre) + input_size/2
        m = np.array([[c, si], [-si, c]]) * s
        t = np.array([input_size / 2.0, input_size / 2.0]) - m @ np.array([self.cx, self.cy])
        return np.hstack([m, t[:, None]]).astype(np.float64)


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


def head_pose(right_eye_outer: np.ndarray, left_eye_outer: np.ndarray, forehead: np.ndarray, chin: np.ndarray) -> HeadPose:
    """Yaw, pitch and roll (degrees) from the mesh's 3D points in frame orientation.

    The face's own axes: x along the eye corners, y from forehead to chin.
    For a frontal, upright face all three are about zero. Signs were checked on
    the head-pose clip: yaw follows the nose's offset from the eye midpoint
    (correlation 0.97).
    """
    ex = (left_eye_outer - right_eye_outer).tolist()
    ey = (chin - forehead).tolist()
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

    def mesh(self, frame_bgr: np.ndarray, roi: Roi, indices: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Mesh points in frame pixels, z in the same scale as x (all 468, or only ``indices``),
        and the face-presence probability."""
        n = self.input_size
        m = roi.to_input(n)
        patch = cv2.cvtColor(cv2.warpAffine(frame_bgr, m, (n, n), flags=cv2.INTER_LINEAR,
                                            borderMode=cv2.BORDER_CONSTANT), cv2.COLOR_BGR2RGB)

        def fill(x: np.ndarray) -> None:
            cv2.LUT(patch, _UNIT_LUT, dst=x[0])  # straight into the input tensor

        def read(*outs):
            mesh = outs[self._mesh_out].reshape(468, 3)
            return (mesh[indices] if indices is not None else mesh).astype(np.float32), float(
                outs[self._presence_out].reshape(-1)[0])

        pts, raw_presence = self._model.run_in_place(fill, read)
        logit = min(max(raw_presence, -80.0), 80.0)
        presence = 1.0 / (1.0 + math.exp(-logit))
        inv = cv2.invertAffineTransform(m)
        out = np.empty(pts.shape, dtype=np.float64)
        out[:, :2] = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        out[:, 2] = pts[:, 2] * (roi.size / n)
        return out, presence

    def landmarks(self, frame_bgr: np.ndarray, roi: Roi) -> FaceLandmarks:
        """The five alignment points and head pose (only the mesh points they need are mapped back)."""
        pts, presence = self.mesh(frame_bgr, roi, _NEEDED)
        align = tuple((float(x), float(y)) for x, y in pts[:5, :2].tolist())
        pose = head_pose(pts[5], pts[6], pts[7], pts[8])
        return FaceLandmarks(alignment_points=align, pose=pose, presence=presence)


_NEEDED = np.array(ALIGNMENT_INDICES + (_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER, _FOREHEAD, _CHIN))
