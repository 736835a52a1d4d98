"""The vision pipeline: one frame in, analysed faces out.

Models are loaded once, when the pipeline is built, and released when it is
closed (it is a context manager). Crops and chips are made and consumed
inside :meth:`VisionPipeline.analyze`; only numbers leave it.

Callers that make several calls on one frame (the tracker: detection, then the
mesh and attributes of each tracked face) wrap it once in a
:class:`~kiosk.vision.frame.VisionFrame`, so it is validated and converted once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from kiosk.modelfiles.manifest import Manifest, ModelFileError, ModelSpec, check_file, default_models_dir, load_manifest
from kiosk.vision.classifiers import (
    AGE_CHIP,
    CHIP_PADDING,
    GENDER_CHIP,
    AgeEstimator,
    AgeGenderEstimator,
    EmotionClassifier,
    GenderClassifier,
    crop_square,
    fer_crop_box,
)
from kiosk.vision.detector import FaceDetector
from kiosk.vision.facechip import face_chip
from kiosk.vision.frame import VisionFrame
from kiosk.vision.landmarks import FaceMesh, roi_from_detection, roi_from_image
from kiosk.vision.runtime import TFLiteModel
from kiosk.vision.types import AnalysedFace, Box, Detection, FaceLandmarks, PipelineOptions

# The detector's box against the mesh outline (forehead, chin, cheeks), median over 539 faces of
# three real clips: 1.15 times as wide, as high, its centre 2% of the height lower.
MESH_BOX_WIDTH, MESH_BOX_HEIGHT, MESH_BOX_DROP = 1.15, 1.0, 0.02


def detection_from_mesh(lm: FaceLandmarks) -> Detection:
    """A detection-like box, square as the detector's, and keypoints (right eye, left eye, nose) from a mesh."""
    e = lm.extent
    cx, cy = e.center
    cy += MESH_BOX_DROP * e.height
    side = max(MESH_BOX_WIDTH * e.width, MESH_BOX_HEIGHT * e.height)
    pts = lm.alignment_points  # left eye outer, inner, right eye outer, inner, nose
    left = ((pts[0][0] + pts[1][0]) / 2, (pts[0][1] + pts[1][1]) / 2)
    right = ((pts[2][0] + pts[3][0]) / 2, (pts[2][1] + pts[3][1]) / 2)
    return Detection(
        Box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), lm.presence, (right, left, pts[4])
    )


_ROLES = {"detect": "face_detection", "landmarks": "face_landmarks"}
_OPTION = {
    "detect": "vision.detector.model",
    "emotion": "vision.emotion_model",
    "age_gender": "vision.age_gender_model",
}
UPSTREAM_AGE_GENDER = "dlib"  # vision.age_gender_model's name for the two upstream models (ids age, gender)


def _chosen_model(manifest: Manifest, stage: str, model_id: str) -> ModelSpec:
    """The manifest entry of the model chosen for a stage, which must exist and do that stage's job
    (the message names the option)."""
    role = _ROLES.get(stage, stage)
    choices = ", ".join(m.id for m in manifest.models if m.role == role)
    where = _OPTION.get(stage, stage)
    try:
        spec = manifest.model(model_id)
    except KeyError:
        raise ModelFileError(f"{where}: no model {model_id!r} in {manifest.source}; choose one of: {choices}") from None
    if spec.role != role:
        raise ModelFileError(f"{where}: {model_id!r} is a {spec.role} model, not {role}; choose one of: {choices}")
    return spec


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
            wanted["emotion"] = o.emotion_model
        if o.age_gender_model != UPSTREAM_AGE_GENDER and (o.age or o.gender):
            wanted["age_gender"] = o.age_gender_model  # one model, both heads
        else:
            if o.age:
                wanted["age"] = "age"
            if o.gender:
                wanted["gender"] = "gender"
        if (o.age or o.gender) and not o.landmarks:
            raise ValueError("age and gender need the face mesh (landmarks) for alignment")
        specs = {stage: _chosen_model(manifest, stage, model_id) for stage, model_id in wanted.items()}
        # Every file is checked against its pinned sha256 before an interpreter sees it.
        paths = {stage: check_file(spec, models_dir) for stage, spec in specs.items()}
        self.model_ids = {stage: spec.id for stage, spec in specs.items()}
        self.model_versions = {spec.id: spec.sha256[:12] for spec in specs.values()}
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
        self.age = AgeEstimator(self._models["age"]) if "age" in self._models else None
        self.gender = GenderClassifier(self._models["gender"]) if "gender" in self._models else None
        self.age_gender = AgeGenderEstimator(self._models["age_gender"]) if "age_gender" in self._models else None
        # told each model stage's wall time (stage, seconds) when set: the daemon's latency metrics
        self.stage_timer: Callable[[str, float], None] | None = None

    def _timed(self, stage: str, started: float) -> None:
        if self.stage_timer is not None:
            self.stage_timer(stage, time.perf_counter() - started)

    def __enter__(self) -> VisionPipeline:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    def analyze(self, frame: np.ndarray | VisionFrame) -> list[AnalysedFace]:
        """Detect every face in a frame and infer its attributes."""
        vf = VisionFrame.of(frame)
        return [self._attributes(vf, d, d.box) for d in self.detector.detect(vf.bgr)]

    def detect(
        self,
        frame: np.ndarray | VisionFrame,
        min_score: float | None = None,
        regions: Sequence[int | None] | None = None,
        grid: int = 1,
    ) -> list[Detection]:
        """Detection only (the tracker runs attributes at a lower rate); ``min_score`` below the
        configured threshold returns weaker candidates too (the tracker uses them to continue tracks).
        ``regions`` (None: as configured) lists where to look this time: ``None`` for the whole
        frame, ``k`` for tile k of a ``grid`` x ``grid`` tiling (the tracker's round robin)."""
        started = time.perf_counter()
        found = self.detector.detect(VisionFrame.of(frame).bgr, min_score, regions=regions, grid=grid)
        self._timed("detect", started)
        return found

    def follow(
        self, frame: np.ndarray | VisionFrame, last: Detection, shift: tuple[float, float] = (0.0, 0.0)
    ) -> tuple[Detection, FaceLandmarks] | None:
        """Follow a known face without the detector (as MediaPipe's face pipeline does): the face
        mesh on the ROI of its last detection, moved by ``shift`` pixels. Returns a detection made
        from the mesh (its outline, eyes and nose) and the landmarks, or None when the mesh's
        presence says the face is no longer there (turned away, hidden, gone)."""
        vf = VisionFrame.of(frame)
        moved = Detection(
            Box(last.box.x0 + shift[0], last.box.y0 + shift[1], last.box.x1 + shift[0], last.box.y1 + shift[1]),
            last.score,
            tuple((x + shift[0], y + shift[1]) for x, y in last.keypoints),
        )
        lm = self.landmarks_for(vf, moved)
        if lm.presence < self.options.min_presence or lm.extent is None:
            return None
        return detection_from_mesh(lm), lm

    def analyze_face_crop(self, image: np.ndarray | VisionFrame) -> AnalysedFace:
        """Treat the whole image as one already-cropped face: no detection; the
        emotion crop is the whole image and the mesh ROI is the whole image."""
        vf = VisionFrame.of(image)
        h, w = vf.shape[:2]
        det = Detection(box=Box(0.0, 0.0, float(w), float(h)), score=1.0, keypoints=())
        return self._attributes(vf, det, None)

    def landmarks_for(self, frame: np.ndarray | VisionFrame, det: Detection) -> FaceLandmarks:
        """Face mesh on one detection: alignment points and pose."""
        started = time.perf_counter()
        lm = self.mesh.landmarks(VisionFrame.of(frame).rgba, roi_from_detection(det))
        self._timed("landmarks", started)
        return lm

    def attributes_for(
        self,
        frame: np.ndarray | VisionFrame,
        det: Detection,
        landmarks: FaceLandmarks | None,
        *,
        whole_image: bool = False,
    ) -> AnalysedFace:
        """Emotion, age and gender of one face (those enabled in the options).

        Age and gender need landmarks with enough presence; emotion needs only the box
        (or the whole image when ``whole_image``, for already-cropped faces).
        """
        vf = VisionFrame.of(frame)
        # Every input is cut first and the models run afterwards, back to back: a model's run
        # evicts the CPU caches, and Python work right after one runs about twice as slow.
        gray = chip64 = chip32 = None
        if self.emotion is not None:
            crop = vf.bgr if whole_image else crop_square(vf.bgr, fer_crop_box(det.box))
            if crop.size:
                gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        if landmarks is not None and landmarks.presence >= self.options.min_presence:
            pts = np.asarray(landmarks.alignment_points)
            # RGB chips, cut from the RGBA frame (per channel, so the same pixels as from BGR)
            if self.age is not None or self.age_gender is not None:
                chip64 = face_chip(vf.rgba, pts, AGE_CHIP, CHIP_PADDING)
            if self.gender is not None:
                chip32 = face_chip(vf.rgba, pts, GENDER_CHIP, CHIP_PADDING)
        emotion = age = gender = None
        if gray is not None:
            started = time.perf_counter()
            emotion = self.emotion.classify(gray)
            self._timed("emotion", started)
        if chip64 is not None and self.age_gender is not None:
            started = time.perf_counter()
            age, gender = self.age_gender.estimate(chip64)
            self._timed("age_gender", started)
            age, gender = (age if self.options.age else None), (gender if self.options.gender else None)
        elif chip64 is not None:
            started = time.perf_counter()
            age = self.age.estimate(chip64)
            self._timed("age", started)
        if chip32 is not None:
            started = time.perf_counter()
            gender = self.gender.classify(chip32)
            self._timed("gender", started)
        return AnalysedFace(detection=det, landmarks=landmarks, emotion=emotion, age=age, gender=gender)

    def _attributes(self, vf: VisionFrame, det: Detection, box: Box | None) -> AnalysedFace:
        landmarks = None
        if self.options.landmarks:
            if box is None:
                landmarks = self.mesh.landmarks(vf.rgba, roi_from_image(vf.shape))
            else:
                landmarks = self.landmarks_for(vf, det)
        return self.attributes_for(vf, det, landmarks, whole_image=box is None)
