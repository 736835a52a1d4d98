"""Options and results of the vision stage, as frozen dataclasses.

Results carry numbers only (boxes, points, angles, probabilities): never an
image, a crop or an embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kiosk.config.schema import DetectorConfig, VisionConfig, default
from kiosk.config.vocabulary import EMOTIONS, GENDERS

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in frame pixels (x0, y0 top-left; x1, y1 bottom-right)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center(self) -> Point:
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    def as_list(self) -> list[float]:
        return [round(self.x0, 1), round(self.y0, 1), round(self.x1, 1), round(self.y1, 1)]


@dataclass(frozen=True)
class Detection:
    """One face found by the detector: box, confidence and 6 keypoints
    (right eye, left eye, nose tip, mouth, right ear, left ear; the subject's sides)."""

    box: Box
    score: float
    keypoints: tuple[Point, ...]
    # input pixels per frame pixel of the detector view that found it (the whole frame or a tile);
    # 0 where the box is not the detector's (made from a face mesh, or given)
    view_scale: float = 0.0


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees: yaw (turning left/right, positive = towards the
    image's right), pitch (positive = looking up), roll (positive = clockwise in the image)."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class FaceLandmarks:
    """What the face mesh gives: the five dlib-order alignment points, head pose and presence."""

    alignment_points: tuple[Point, ...]  # left eye outer, left eye inner, right eye outer, right eye inner, nose
    pose: HeadPose
    presence: float
    extent: Box | None = None  # the face outline (forehead, chin, both cheeks) in frame pixels


@dataclass(frozen=True)
class AnalysedFace:
    """Everything the pipeline infers about one face in one frame."""

    detection: Detection
    landmarks: FaceLandmarks | None
    emotion: tuple[float, ...] | None  # probabilities in EMOTIONS order
    age: float | None  # years
    gender: tuple[float, ...] | None  # probabilities in GENDERS order

    @property
    def dominant_emotion(self) -> str | None:
        if self.emotion is None:
            return None
        return EMOTIONS[max(range(len(self.emotion)), key=self.emotion.__getitem__)]

    def to_dict(self) -> dict:
        d: dict = {
            "box": self.detection.box.as_list(),
            "score": round(self.detection.score, 3),
            "keypoints": [[round(x, 1), round(y, 1)] for x, y in self.detection.keypoints],
        }
        if self.landmarks is not None:
            p = self.landmarks.pose
            d["pose"] = {"yaw": round(p.yaw, 1), "pitch": round(p.pitch, 1), "roll": round(p.roll, 1)}
        if self.emotion is not None:
            d["emotion"] = {k: round(v, 4) for k, v in zip(EMOTIONS, self.emotion)}
            d["dominant_emotion"] = self.dominant_emotion
        if self.age is not None:
            d["age"] = round(self.age, 1)
        if self.gender is not None:
            d["gender"] = {k: round(v, 4) for k, v in zip(GENDERS, self.gender)}
        return d


@dataclass(frozen=True)
class DetectorOptions:
    """Each field's default and meaning: the ``vision.detector`` section of the config."""

    model: str = default(DetectorConfig, "model")  # manifest id
    score_threshold: float = default(DetectorConfig, "score_threshold")
    nms_iou: float = default(DetectorConfig, "nms_iou")
    min_face_px: float = default(DetectorConfig, "min_face_px")
    max_faces: int = default(DetectorConfig, "max_faces")
    tiles: int = default(DetectorConfig, "tiles")


@dataclass(frozen=True)
class PipelineOptions:
    detector: DetectorOptions = field(default_factory=DetectorOptions)
    num_threads: int = default(VisionConfig, "num_threads")
    landmarks: bool = True  # not configurable: attention needs the face mesh
    emotion: bool = default(VisionConfig, "emotion")
    emotion_model: str = default(VisionConfig, "emotion_model")  # manifest id of a model of role emotion
    age: bool = default(VisionConfig, "age")
    gender: bool = default(VisionConfig, "gender")
    age_gender_model: str = default(VisionConfig, "age_gender_model")  # "dlib" or a manifest id of role age_gender
    min_presence: float = default(VisionConfig, "min_presence")  # face-mesh presence below this: no attributes
