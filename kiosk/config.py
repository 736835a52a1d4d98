"""Configuration schema (pydantic v2, ``extra="forbid"``): a default and a description on every field.

This holds the sections the vision stage needs; the daemon's sections
(camera, tracking, zones, store, mqtt) join them as they are built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kiosk.vision.types import DetectorOptions, PipelineOptions


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorConfig(Section):
    model: Literal["face_detector_short", "face_detector_full", "face_detector_full_sparse"] = Field(
        "face_detector_full_sparse",
        description="BlazeFace variant: short range (faces within ~2 m, 128 px input) or full range "
        "(up to ~5 m, 192 px input; the sparse file is smaller and as accurate).",
    )
    score_threshold: float = Field(0.5, gt=0, lt=1, description="Minimum detection confidence.")
    nms_iou: float = Field(0.3, gt=0, lt=1, description="Overlap above which detections are merged (weighted NMS).")
    min_face_px: float = Field(20.0, ge=0, description="Faces smaller than this (shorter box side, frame pixels) are ignored.")
    max_faces: int = Field(20, ge=1, le=200, description="At most this many faces per frame.")


class VisionConfig(Section):
    num_threads: int = Field(2, ge=1, le=16, description="Threads each TFLite interpreter may use.")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="Face detector settings.")
    emotion: bool = Field(True, description="Infer the 7-class emotion of each face.")
    age: bool = Field(True, description="Estimate age (needs the face mesh).")
    gender: bool = Field(True, description="Estimate gender (needs the face mesh).")
    min_presence: float = Field(
        0.5, ge=0, le=1, description="Face-mesh presence below which age and gender are not inferred."
    )
    models_dir: Path | None = Field(
        None, description="Directory holding the model files; default: the project's models/ or $KIOSK_MODELS_DIR."
    )

    def pipeline_options(self) -> PipelineOptions:
        d = self.detector
        return PipelineOptions(
            detector=DetectorOptions(
                model=d.model,
                score_threshold=d.score_threshold,
                nms_iou=d.nms_iou,
                min_face_px=d.min_face_px,
                max_faces=d.max_faces,
            ),
            num_threads=self.num_threads,
            emotion=self.emotion,
            age=self.age,
            gender=self.gender,
            min_presence=self.min_presence,
        )


class KioskConfig(Section):
    vision: VisionConfig = Field(default_factory=VisionConfig, description="On-device face analysis.")


class ConfigError(ValueError):
    """An invalid configuration; the message lists every problem by YAML path."""


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_config(data: object, source: str = "<config>") -> KioskConfig:
    try:
        return KioskConfig.model_validate(data or {})
    except ValidationError as exc:
        lines = [f"{source}: {_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def load_config(path: Path) -> KioskConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, str(path))
