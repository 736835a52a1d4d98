"""The vision pipeline: one frame in, analysed faces out.

Models are loaded once, when the pipeline is built, and released when it is
closed (it is a context manager). Crops and chips are made and consumed
inside :meth:`VisionPipeline.analyze`; only numbers leave it.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from kiosk.modelfiles.manifest import Manifest, check_file, default_models_dir, load_manifest
from kiosk.vision.classifiers import (
    AGE_CHIP,
    CHIP_PADDING,
    GENDER_CHIP,
    AgeEstimator,
    EmotionClassifier,
    GenderClassifier,
    crop_square,
    fer_crop_box,
)
from kiosk.vision.detector import FaceDetector
from kiosk.vision.facechip import face_chip
from kiosk.vision.landmarks import FaceMesh, roi_from_detection, roi_from_image
from kiosk.vision.runtime import TFLiteModel
from kiosk.vision.types import AnalysedFace, Box, Detection, FaceLandmarks, PipelineOptions

MAX_FRAME_PIXELS = 40_000_000  # refuse absurd frames rather than exhaust memory on the device


class FrameError(ValueError):
    """The frame cannot be analysed (empty, wrong type, wrong shape). The message says why."""


@dataclass(frozen=True)
class StageTimes:
    """Cumulative seconds spent inside each model's invoke()."""

    detect: float
    landmarks: float
    emotion: float
    age: float
    gender: float


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """Validate a frame (BGR, BGRA or grayscale uint8) and return it as BGR, without a copy when it is BGR."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame must be uint8, got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise FrameError(f"frame must be HxW, HxWx3 or HxWx4, got shape {frame.shape}")
    h, w = frame.shape[:2]
    if h == 0 or w == 0:
        raise FrameError(f"frame is empty ({w}x{h})")
    if h * w > MAX_FRAME_PIXELS:
        raise FrameError(f"frame is {w}x{h}, more than {MAX_FRAME_PIXELS} pixels; downscale it first")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


class VisionPipeline:
    """Detector, face mesh and the attribute models, each loaded once."""

    def __init__(
        self,
        options: PipelineOptions | None = None,
        models_dir: Path | None = None,
        manifest: Manifest | None = None,
    ) -> None:
        self.options = options or PipelineOptions()
        models_dir = models_dir or default_models_dir()
        manifest = manifest or load_manifest()
        o = self.options
        wanted = {"detect": o.detector.model, "landmarks": "face_landmarks"}
        if o.emotion:
            wanted["emotion"] = "emotion"
        if o.age:
            wanted["age"] = "age"
        if o.gender:
            wanted["gender"] = "gender"
        if (o.age or o.gender) and not o.landmarks:
            raise ValueError("age and gender need the face mesh (landmarks) for alignment")
        # Every file is checked against its pinned sha256 before an interpreter sees it.
        paths = {stage: check_file(manifest.model(model_id), models_dir) for stage, model_id in wanted.items()}
        self.model_ids = {stage: manifest.model(model_id).id for stage, model_id in wanted.items()}
        self.model_versions = {manifest.model(m).id: manifest.model(m).sha256[:12] for m in wanted.values()}
        self._stack = ExitStack()
        try:
            self._models = {s: self._stack.enter_context(TFLiteModel(p, o.num_threads)) for s, p in paths.items()}
        except BaseException:
            self._stack.close()
            raise
        self.runtime = self._models["detect"].runtime
        self.detector = FaceDetector(self._models["detect"], o.detector)
        self.mesh = FaceMesh(self._models["landmarks"])
        self.emotion = EmotionClassifier(self._models["emotion"]) if o.emotion else None
        self.age = AgeEstimator(self._models["age"]) if o.age else None
        self.gender = GenderClassifier(self._models["gender"]) if o.gender else None

    def __enter__(self) -> VisionPipeline:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    def stage_times(self) -> StageTimes:
        get = lambda s: self._models[s].invoke_seconds if s in self._models else 0.0  # noqa: E731
        return StageTimes(get("detect"), get("landmarks"), get("emotion"), get("age"), get("gender"))

    def analyze(self, frame_bgr: np.ndarray) -> list[AnalysedFace]:
        """Detect every face in a frame and infer its attributes."""
        bgr = as_bgr(frame_bgr)
        return [self._attributes(bgr, d, d.box) for d in self.detector.detect(bgr)]

    def analyze_detections(self, frame_bgr: np.ndarray, detections: list[Detection]) -> list[AnalysedFace]:
        """Infer attributes for detections made elsewhere (for example a tracker's chosen faces)."""
        if not detections:
            return []
        bgr = as_bgr(frame_bgr)
        return [self._attributes(bgr, d, d.box) for d in detections]

    def detect(self, frame_bgr: np.ndarray, min_score: float | None = None) -> list[Detection]:
        """Detection only (the tracker runs attributes at a lower rate); ``min_score`` below the
        configured threshold returns weaker candidates too (the tracker uses them to continue tracks)."""
        return self.detector.detect(as_bgr(frame_bgr), min_score)

    def analyze_face_crop(self, image_bgr: np.ndarray) -> AnalysedFace:
        """Treat the whole image as one already-cropped face: no detection; the
        emotion crop is the whole image and the mesh ROI is the whole image."""
        bgr = as_bgr(image_bgr)
        h, w = bgr.shape[:2]
        det = Detection(box=Box(0.0, 0.0, float(w), float(h)), score=1.0, keypoints=())
        return self._attributes(bgr, det, None)

    def landmarks_for(self, bgr: np.ndarray, det: Detection) -> FaceLandmarks:
        """Face mesh on one detection of a validated BGR frame (see :func:`as_bgr`): alignment points and pose."""
        return self.mesh.landmarks(bgr, roi_from_detection(det))

    def attributes_for(
        self,
        bgr: np.ndarray,
        det: Detection,
        landmarks: FaceLandmarks | None,
        *,
        whole_image: bool = False,
    ) -> AnalysedFace:
        """Emotion, age and gender of one face (those enabled in the options).

        Age and gender need landmarks with enough presence; emotion needs only the box
        (or the whole image when ``whole_image``, for already-cropped faces).
        """
        emotion = age = gender = None
        if self.emotion is not None:
            crop = bgr if whole_image else crop_square(bgr, fer_crop_box(det.box))
            if crop.size:
                emotion = self.emotion.classify(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY))
        if landmarks is not None and landmarks.presence >= self.options.min_presence:
            pts = np.asarray(landmarks.alignment_points)
            # Chips are cut from the BGR frame (per channel, so identical); the classifiers take BGR.
            if self.age is not None:
                age = self.age.estimate(face_chip(bgr, pts, AGE_CHIP, CHIP_PADDING))
            if self.gender is not None:
                gender = self.gender.classify(face_chip(bgr, pts, GENDER_CHIP, CHIP_PADDING))
        return AnalysedFace(detection=det, landmarks=landmarks, emotion=emotion, age=age, gender=gender)

    def _attributes(self, bgr: np.ndarray, det: Detection, box: Box | None) -> AnalysedFace:
        landmarks = None
        if self.options.landmarks:
            if box is None:
                landmarks = self.mesh.landmarks(bgr, roi_from_image(bgr.shape))
            else:
                landmarks = self.landmarks_for(bgr, det)
        return self.attributes_for(bgr, det, landmarks, whole_image=box is None)
