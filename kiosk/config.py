"""Configuration schema (pydantic v2, ``extra="forbid"``): a default and a description on every field.

Loading: the YAML is composed into nodes first, so that every error names the
YAML path and line, a duplicated key is an error, an unknown key gets a
did-you-mean hint, and fields declared as strings (ids, labels, the camera
source) keep the text as written even where YAML 1.1 would read a boolean or
a number (``store_id: no``, ``device_id: 0012``). No validator does I/O;
:func:`environment_problems` checks the files and variables a config names.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kiosk.aggregate import ATTENTION_BINS
from kiosk.tracking.observer import AttentionOptions, ObserverOptions
from kiosk.tracking.tracker import TrackerOptions
from kiosk.vision.types import DetectorOptions, PipelineOptions
from kiosk.visits import DEFAULT_AGE_BANDS, ContentSchedule, ContentSlot, VisitOptions
from kiosk.zones import Area, Zone, ZoneMap


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
    tiles: int = Field(
        1, ge=1, le=4,
        description="1: detect on the whole frame. n > 1: also on an n x n grid of overlapping tiles, for small, "
        "distant faces (costs n*n+1 detector runs per frame).",
    )


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
                tiles=d.tiles,
            ),
            num_threads=self.num_threads,
            emotion=self.emotion,
            age=self.age,
            gender=self.gender,
            min_presence=self.min_presence,
        )


class TrackingConfig(Section):
    iou_threshold: float = Field(0.3, gt=0, lt=1, description="Minimum overlap of a face with a track's predicted box to continue it.")
    max_age_s: float = Field(2.0, gt=0, le=30, description="Seconds a track survives without its face; then it ends, or waits (reacquire_s) when lost mid-frame.")
    min_hits: int = Field(5, ge=1, le=50, description="Detections before a track counts as a person.")
    detect_every: int = Field(1, ge=1, le=10, description="Run the detector on every k-th frame; tracks coast in between.")
    attribute_rate_hz: float = Field(3.0, gt=0, le=30, description="At most this many emotion/age/gender samples per person per second.")
    min_sample_face_px: float = Field(32.0, ge=0, description="Faces smaller than this are tracked but not sampled for attributes.")
    reacquire_s: float = Field(
        20.0, ge=0, le=120,
        description="A face lost mid-frame where its person is likely still there (turned to the products, hidden "
        "by someone passing) waits this long for the same person (place and clothing/hair colours) to face the "
        "camera again: one visit, not two. 0: never wait.")
    follow_with_mesh: bool = Field(
        True, description="Follow known faces with the face mesh where they were when the detector misses them "
        "(MediaPipe's face pipeline): the detector is needed only to find new faces.")
    search_tiles: int = Field(
        3, ge=1, le=6, description="New faces are also searched in an n x n grid of tiles, one tile at a time in "
        "turn (small, distant faces for a fraction of the cost of every tile on every frame). 1: the whole frame only.")
    search_tile_every: int = Field(
        2, ge=1, le=10, description="With search_tiles > 1: one tile is searched every this many frames.")
    whole_frame_every: int = Field(
        1, ge=1, le=10, description="The whole frame is searched every this many frames (known faces are followed "
        "by the face mesh in between).")

    def tracker_options(self) -> TrackerOptions:
        return TrackerOptions(iou_threshold=self.iou_threshold, max_age_s=self.max_age_s, min_hits=self.min_hits,
                              reacquire_s=self.reacquire_s)

    @property
    def visit_latency_s(self) -> float:
        """Longest time from a visit's end to the moment it is known (its track ends)."""
        return max(self.max_age_s, self.reacquire_s)

    def observer_options(self) -> ObserverOptions:
        return ObserverOptions(detect_every=self.detect_every, attribute_rate_hz=self.attribute_rate_hz,
                               min_sample_face_px=self.min_sample_face_px, follow_with_mesh=self.follow_with_mesh,
                               search_tiles=self.search_tiles, search_tile_every=self.search_tile_every,
                               whole_frame_every=self.whole_frame_every)


class VisitsConfig(Section):
    min_dwell_s: float = Field(3.0, ge=0, description="A person seen at least this long is a visit; shorter is a passer-by.")
    min_attention_s: float = Field(1.0, ge=0, description=(
        "A visit with at least this much attention counts as attentive; one of the attention histogram's "
        "bin edges (0, 1, 2, 5, 10, 20, 30, 60 s), so that the attentive count is a sum of published bins."))
    max_yaw_deg: float = Field(25.0, gt=0, le=90, description="Attention: head turned at most this far left or right.")
    max_pitch_deg: float = Field(20.0, gt=0, le=90, description="Attention: head tilted at most this far up or down.")
    first_reaction_s: float = Field(2.0, gt=0, le=10, description="The first reaction is the dominant emotion over this much attention.")
    age_bands: list[int] = Field(
        default_factory=lambda: list(DEFAULT_AGE_BANDS),
        description="Lower bounds of the age bands after 0; the default gives 0-17, 18-24, 25-34, 35-44, 45-54, 55-64, 65+.",
    )
    gender_min_confidence: float = Field(0.7, ge=0.5, le=1, description="Below this confidence gender is 'unknown'.")
    gender_min_age: float = Field(13.0, ge=0, description="Faces estimated younger than this get gender 'unknown'.")

    @field_validator("min_attention_s")
    @classmethod
    def _attention_edge(cls, v: float) -> float:
        if v not in ATTENTION_BINS:
            raise ValueError(f"must be one of the attention histogram's bin edges {list(ATTENTION_BINS)} (s), got {v}: "
                             "a threshold inside a bin would let the attentive count narrow a suppressed bin")
        return v

    @field_validator("age_bands")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if not v or any(b <= a for a, b in zip(v, v[1:])) or v[0] <= 0:
            raise ValueError(f"needs positive, strictly increasing lower bounds, got {v}")
        return v

    def visit_options(self) -> VisitOptions:
        return VisitOptions(min_dwell_s=self.min_dwell_s, min_attention_s=self.min_attention_s,
                            age_bands=tuple(self.age_bands), gender_min_confidence=self.gender_min_confidence,
                            gender_min_age=self.gender_min_age)

    def attention_options(self) -> AttentionOptions:
        return AttentionOptions(max_yaw_deg=self.max_yaw_deg, max_pitch_deg=self.max_pitch_deg,
                                first_reaction_s=self.first_reaction_s)


def _first_crossing(points: list[list[float]]) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges that cross, as (i, j) edge indices; None for a simple polygon."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]

    def orient(a, b, c) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # adjacent edges share a point
            (a, b), (c, d) = edges[i], edges[j]
            if orient(a, b, c) * orient(a, b, d) < 0 and orient(c, d, a) * orient(c, d, b) < 0:
                return i, j
    return None


class AreaConfig(Section):
    rect: list[float] | None = Field(None, description="Rectangle [x0, y0, x1, y1] in normalized frame coordinates (0-1).")
    polygon: list[list[float]] | None = Field(None, description="Polygon [[x, y], ...] in normalized frame coordinates, at least 3 points.")

    @field_validator("rect")
    @classmethod
    def _rect(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if len(v) != 4:
            raise ValueError(f"needs 4 numbers [x0, y0, x1, y1], got {len(v)}")
        x0, y0, x1, y1 = v
        if not all(0 <= c <= 1 for c in v):
            raise ValueError(f"coordinates are fractions of the frame (0-1), got {v}")
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"needs x0 < x1 and y0 < y1, got {v}")
        return v

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, v: list[list[float]] | None) -> list[list[float]] | None:
        if v is None:
            return v
        if len(v) < 3:
            raise ValueError(f"needs at least 3 points, got {len(v)}")
        for p in v:
            if len(p) != 2 or not all(0 <= c <= 1 for c in p):
                raise ValueError(f"points are [x, y] fractions of the frame (0-1), got {p}")
        crossing = _first_crossing(v)
        if crossing is not None:
            i, j = crossing
            raise ValueError(f"crosses itself (edge {i + 1}-{i + 2} crosses edge {j + 1}-{(j + 1) % len(v) + 1}); "
                             "list the points in order around the area")
        area = 0.5 * abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(v, v[1:] + v[:1])))
        if area < 1e-6:
            raise ValueError("encloses no area (the points are on one line or repeat): nothing could be in it")
        return v

    @model_validator(mode="after")
    def _one_shape(self):
        if (self.rect is None) == (self.polygon is None):
            raise ValueError("give exactly one of rect or polygon")
        return self

    def area(self) -> Area:
        if self.rect is not None:
            return Area.rect(*self.rect)
        return Area(tuple((float(x), float(y)) for x, y in self.polygon))


class ZoneConfig(AreaConfig):
    id: str = Field("frame", min_length=1, max_length=64, description="Zone id, unique; used in topics and reports.")
    type: Literal["shelf", "queue"] = Field("shelf", description="shelf: product interest; queue: people waiting (occupancy, waiting time).")
    label: str = Field("", max_length=200, description="The product, SKU or place this zone stands for.")


class ExclusionZoneConfig(AreaConfig):
    label: str = Field("", max_length=200, description="What the area is (for example 'cashier'). Faces inside are never analysed.")


class ContentSlotConfig(Section):
    label: str = Field("none", min_length=1, max_length=200, description="Content/campaign label shown during this slot.")
    start: dt.datetime | None = Field(None, description="First moment (ISO 8601 with a timezone) the slot applies; open when absent.")
    end: dt.datetime | None = Field(None, description="Moment (ISO 8601 with a timezone) the slot stops applying; open when absent.")
    daily_from: dt.time | None = Field(None, description="Local time of day the slot starts (with daily_to).")
    daily_to: dt.time | None = Field(None, description="Local time of day the slot ends (with daily_from).")
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=list, description="Weekdays the slot applies on; all days when empty."
    )

    @model_validator(mode="after")
    def _check(self):
        for name in ("start", "end"):
            v = getattr(self, name)
            if v is not None and v.tzinfo is None:
                raise ValueError(f"{name} needs a timezone, for example 2026-11-01T08:00:00Z")
        if (self.daily_from is None) != (self.daily_to is None):
            raise ValueError("give both daily_from and daily_to, or neither")
        return self


class ContentConfig(Section):
    default: str = Field("none", min_length=1, max_length=200, description="Label when no slot applies.")
    timezone: str = Field("UTC", description="IANA timezone of the daily times (for example Europe/Paris).")
    schedule: list[ContentSlotConfig] = Field(default_factory=list, description="Slots, first match wins.")
    labels: list[str] = Field(default_factory=list, max_length=100, description=(
        "Further labels the MQTT content command may set (campaigns chosen centrally). Every summary lists "
        "the default, the schedule's labels and these, so that a label's presence says nothing about visitors."))

    @field_validator("labels")
    @classmethod
    def _label_lengths(cls, v: list[str]) -> list[str]:
        for label in v:
            if not 0 < len(label) <= 200:
                raise ValueError(f"each label needs 1-200 characters, got {label!r}")
        return v

    def all_labels(self) -> tuple[str, ...]:
        """Every label a visit can be attributed to, in order, once each."""
        return tuple(dict.fromkeys([self.default] + [s.label for s in self.schedule] + list(self.labels)))

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r}; use an IANA name such as Europe/Paris or UTC") from None
        return v

    def schedule_object(self) -> ContentSchedule:
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        slots = tuple(
            ContentSlot(label=s.label, start=s.start, end=s.end, daily_from=s.daily_from, daily_to=s.daily_to,
                        days=tuple(days.index(d) for d in s.days))
            for s in self.schedule
        )
        return ContentSchedule(slots, default=self.default, timezone=self.timezone)


class StoreConfig(Section):
    path: Path = Field(Path("/var/lib/kiosk/kiosk.db"), description="SQLite database of the aggregates.")
    period_s: int = Field(300, ge=1, le=86400, description="Aggregation period in seconds, aligned to UTC; must divide a day (under 60 s only for tests and demos).")
    flush_interval_s: float = Field(10.0, gt=0, le=600, description="Aggregates are written once per this interval (power loss loses at most this much).")
    retention_days: float = Field(90.0, gt=0, description="Aggregates older than this are deleted.")
    k_anonymity: int = Field(5, ge=3, le=100, description=(
        "No published count is between 1 and k-1 people, directly or by subtraction (kiosk.disclosure). At "
        "least 3: with k = 2 a suppressed count could only be 1."))

    @field_validator("period_s")
    @classmethod
    def _divides_day(cls, v: int) -> int:
        if 86400 % v:
            raise ValueError(f"must divide a day (86400 s) so periods align to UTC, got {v}")
        return v


class MqttConfig(Section):
    host: str = Field("127.0.0.1", min_length=1, description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 is usual with TLS).")
    protocol: Literal[5, 4] = Field(5, description="5: MQTT 5 (the outbox needs its PUBACK reason codes); 4: MQTT 3.1.1.")
    prefix: str = Field("kiosk", min_length=1, max_length=64, description="Topic prefix: {prefix}/{store_id}/{device_id}/...")
    store_id: str = Field("store", min_length=1, max_length=64, description="Store identifier in topics and payloads.")
    device_id: str = Field("device", min_length=1, max_length=64, description="Device identifier; also the MQTT client id.")
    keepalive_s: int = Field(30, ge=5, le=3600, description=(
        "MQTT keepalive: a broker that stops answering (a half-open connection) is noticed within 1.5x this."))
    username: str | None = Field(None, description="Username, if the broker wants one.")
    password_file: Path | None = Field(None, description="File holding the password (never logged).")
    password_env: str | None = Field(None, description="Environment variable holding the password (never logged).")
    ca_file: Path | None = Field(None, description="CA certificate for TLS; TLS is on when set.")
    cert_file: Path | None = Field(None, description="Client certificate for mutual TLS.")
    key_file: Path | None = Field(None, description="Client key for mutual TLS.")
    max_inflight: int = Field(20, ge=1, le=1000, description="Unacknowledged summaries at a time (paho's memory queue stays bounded).")
    drain_rate_per_s: float = Field(200.0, gt=0, description="Most summaries per second sent from a backlog.")
    outbox_max_rows: int = Field(20000, ge=10, description="Outbox bound in summaries; the oldest are dropped beyond it.")
    outbox_max_bytes: int = Field(64 * 1024 * 1024, ge=65536, description="Outbox bound in bytes.")
    keep_sent_days: float = Field(7.0, ge=0, le=90, description="Sent summaries are kept this long for the republish command.")
    stats_interval_s: float = Field(60.0, ge=1, le=3600, description="Stats (frames/s, backlog, disk, temperature) are published this often.")
    enabled: bool = Field(True, description="false: summaries are kept in the outbox and nothing is sent (no broker).")

    @field_validator("store_id", "device_id")
    @classmethod
    def _topic_level(cls, v: str) -> str:
        """One MQTT topic level (spec 4.7): no wildcard, no level separator, no NUL. A '+' or '#'
        makes the broker refuse the client id and every publish; a '/' moves the summaries to a
        topic the collector's {prefix}/+/+/summary never matches."""
        bad = sorted({c for c in v if c in "+#/\0"} | ({"control characters"} if any(ord(c) < 32 for c in v) else set()))
        if bad:
            shown = ", ".join(repr(c) if len(c) == 1 else c for c in bad).replace("'\\x00'", "NUL")
            raise ValueError(f"must be one MQTT topic level: no {shown} (use letters, digits, '-', '_' or '.')")
        return v

    @field_validator("prefix")
    @classmethod
    def _topic_prefix(cls, v: str) -> str:
        """Topic levels joined by '/' (spec 4.7): no wildcard, no NUL, no empty level, not '$...'."""
        if any(c in "+#\0" or ord(c) < 32 for c in v):
            raise ValueError("must be MQTT topic levels: no '+', '#', NUL or control characters")
        if v.startswith("$"):
            raise ValueError("must not start with '$' (topics starting with '$' belong to the broker, like $SYS)")
        if "" in v.split("/"):
            raise ValueError("must not start or end with '/' nor hold '//' (an empty topic level)")
        return v

    @model_validator(mode="after")
    def _credentials(self):
        if self.password_file is not None and self.password_env:
            raise ValueError("give password_file or password_env, not both")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("mutual TLS needs both cert_file and key_file")
        if self.cert_file is not None and self.ca_file is None:
            raise ValueError("cert_file and key_file need ca_file (TLS is on only with a CA)")
        return self

    def password(self) -> str | None:
        """Read at connect time, from the file or the environment; never stored in the config object's repr."""
        import os

        if self.password_file is not None:
            return self.password_file.read_text().strip()
        if self.password_env:
            return os.environ.get(self.password_env)
        return None

    def client_options(self):
        from kiosk.mqtt.client import MqttOptions

        return MqttOptions(host=self.host, port=self.port, client_id=self.device_id, protocol=self.protocol,
                           keepalive=self.keepalive_s, username=self.username, password=self.password(),
                           ca_file=str(self.ca_file) if self.ca_file else None,
                           cert_file=str(self.cert_file) if self.cert_file else None,
                           key_file=str(self.key_file) if self.key_file else None, max_inflight=self.max_inflight,
                           max_queued=self.max_inflight * 2)


class CameraConfig(Section):
    source: str = Field(
        "0", min_length=1,
        description="picamera2 (Pi camera; picamera2:N for camera N), a USB camera index (0) or path "
        "(/dev/v4l/by-id/...), an rtsp:// or http:// URL, or a video file.",
    )
    width: int = Field(640, ge=64, le=4096, description="Frame width asked of the camera; about 640 suits the detector.")
    height: int = Field(480, ge=64, le=4096, description="Frame height asked of the camera.")
    fps: float = Field(10.0, gt=0, le=60, description="At most this many frames per second are analysed; the latest frame wins.")
    loop: bool = Field(False, description="Video files: start again at the end (demos and tests).")
    realtime: bool = Field(True, description="Video files: deliver frames at the file's own rate, like a camera.")
    read_timeout_s: float = Field(10.0, ge=1, le=300, description="No frame for this long: the camera is offline and is reopened.")
    reopen_max_s: float = Field(30.0, ge=1, le=3600, description="Longest wait between attempts to reopen an offline camera.")

    def options(self):
        from kiosk.camera.sources import CameraOptions

        return CameraOptions(source=self.source, width=self.width, height=self.height, fps=self.fps, loop=self.loop,
                             realtime=self.realtime, open_timeout_s=self.read_timeout_s,
                             read_timeout_s=self.read_timeout_s, reopen_max_s=self.reopen_max_s)


class ServiceConfig(Section):
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Lowest level written to the log (journald).")
    error_log_interval_s: float = Field(60.0, ge=0, description="A repeated error is logged at most once per this interval.")
    clock_jump_s: float = Field(2.0, gt=0, description="A wall-clock change this much beyond the monotonic clock is a jump.")
    stop_timeout_s: float = Field(4.0, gt=0, le=30, description="Seconds a stop (SIGTERM) may take before threads are abandoned.")


class KioskConfig(Section):
    camera: CameraConfig = Field(default_factory=CameraConfig, description="Where frames come from.")
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="How the daemon runs.")
    vision: VisionConfig = Field(default_factory=VisionConfig, description="On-device face analysis.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Following faces over frames.")
    visits: VisitsConfig = Field(default_factory=VisitsConfig, description="Turning tracks into visits.")
    zones: list[ZoneConfig] = Field(default_factory=list, description="Zones of the frame; none: the whole frame is one shelf zone 'frame'.")
    exclusion_zones: list[ExclusionZoneConfig] = Field(default_factory=list, description="Areas whose faces are dropped before any analysis (staff).")
    content: ContentConfig = Field(default_factory=ContentConfig, description="What the display beside the shelf shows, for attribution.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="Aggregate storage.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Publishing summaries to the central broker.")

    @field_validator("zones")
    @classmethod
    def _unique_ids(cls, v: list[ZoneConfig]) -> list[ZoneConfig]:
        seen = set()
        for z in v:
            if z.id in seen:
                raise ValueError(f"zone id {z.id!r} is used twice")
            seen.add(z.id)
        return v

    def zone_map(self) -> ZoneMap:
        zones = tuple(Zone(id=z.id, kind=z.type, label=z.label, area=z.area()) for z in self.zones)
        exclusions = tuple(e.area() for e in self.exclusion_zones)
        return ZoneMap(zones=zones, exclusions=exclusions) if zones else ZoneMap(exclusions=exclusions)


class ConfigError(ValueError):
    """An invalid configuration; the message lists every problem by YAML path (and line)."""


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The config model that holds the key at ``loc`` (for did-you-mean hints)."""
    model: type[BaseModel] | None = KioskConfig
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _submodel(field.annotation) if field else None
    return model


def _submodel(annotation) -> type[BaseModel] | None:
    import typing

    for ann in (annotation, *typing.get_args(annotation)):
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            return ann
    return None


def _is_text(annotation) -> bool:
    import typing

    args = typing.get_args(annotation)
    return annotation is str or (str in args and all(a in (str, type(None)) for a in args))


def _message(e: dict) -> str:
    import difflib

    msg = e["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if e["type"] == "extra_forbidden":
        model = _model_at(e["loc"])
        key = str(e["loc"][-1])
        known = list(model.model_fields) if model else []
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys here: {', '.join(known)}"
        return f"unknown key {key!r}; {hint}"
    if e["type"] == "missing":
        return "missing"
    value = e.get("input")
    if isinstance(value, (str, int, float, bool)) and not isinstance(e["loc"][-1], int) and len(repr(value)) < 60:
        if e["type"] not in ("value_error", "assertion_error"):
            msg += f" (got {value!r})"
    return msg


def parse_config(data: object, source: str = "<config>", lines: dict | None = None) -> KioskConfig:
    """Validate already-parsed data; ``lines`` maps YAML paths (tuples) to line numbers for the messages."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections (vision:, camera:, ...), "
                          f"got {type(data).__name__}")
    try:
        return KioskConfig.model_validate(data or {})
    except ValidationError as exc:
        out = []
        for e in exc.errors():
            loc = tuple(e["loc"])
            line = None
            for n in range(len(loc), -1, -1):  # the nearest enclosing key that has a line
                if lines and loc[:n] in lines:
                    line = lines[loc[:n]]
                    break
            where = f"{source}:{line}" if line else source
            out.append(f"{where}: {_path(loc)}: {_message(e)}")
        raise ConfigError("\n".join(out)) from None


_PLAIN_TAGS = frozenset({"map", "seq", "str", "int", "float", "bool", "null", "timestamp"})


MAX_CONFIG_BYTES = 1 << 20  # a kiosk config is a few kilobytes
MAX_CONFIG_NODES = 20_000  # values after aliases are expanded (a "billion laughs" file expands to 10^9)
MAX_CONFIG_DEPTH = 32


class _Reader:
    """YAML nodes to plain data, keeping string fields as written and recording each key's line.
    Bounded: at most MAX_CONFIG_NODES values once aliases are expanded, MAX_CONFIG_DEPTH levels,
    and no alias that contains itself."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[tuple, int] = {}
        self._nodes = 0
        self._open: set[int] = set()  # the nodes being read (an alias back to one of them is a cycle)

    def read(self, node, model: type[BaseModel] | None, loc: tuple):
        where = f"{self.source}:{node.start_mark.line + 1}: {_path(loc)}"
        self._nodes += 1
        if self._nodes > MAX_CONFIG_NODES:
            raise ConfigError(f"{where}: the config expands to over {MAX_CONFIG_NODES} values (aliases repeating "
                              "aliases?); write the values out, a kiosk config needs a few hundred")
        if len(loc) > MAX_CONFIG_DEPTH:
            raise ConfigError(f"{where}: nested over {MAX_CONFIG_DEPTH} levels deep; a kiosk config needs a few")
        if id(node) in self._open:
            raise ConfigError(f"{where}: an alias (*name) refers to a value that contains it; write the value out")
        self._open.add(id(node))
        try:
            return self._read(node, model, loc)
        finally:
            self._open.discard(id(node))

    def _read(self, node, model: type[BaseModel] | None, loc: tuple):
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if node.tag.removeprefix("tag:yaml.org,2002:") not in _PLAIN_TAGS:
            raise ConfigError(f"{self.source}:{node.start_mark.line + 1}: {_path(loc)}: not valid YAML for a config: "
                              f"the tag {node.tag} is not allowed (plain values, lists and mappings only)")
        if isinstance(node, yaml.MappingNode):
            out, seen = {}, {}
            for key_node, value_node in node.value:
                key = self._plain(key_node)
                if not isinstance(key, str):
                    key = str(key)
                if key in seen:
                    raise ConfigError(f"{self.source}:{key_node.start_mark.line + 1}: {_path(loc + (key,))}: "
                                      f"the key appears twice (first on line {seen[key]}); keep one")
                seen[key] = key_node.start_mark.line + 1
                field = model.model_fields.get(key) if model else None
                self.lines[loc + (key,)] = key_node.start_mark.line + 1
                if field is not None and _is_text(field.annotation) and isinstance(value_node, yaml.ScalarNode):
                    out[key] = None if value_node.tag.endswith(":null") and not value_node.style else value_node.value
                else:
                    out[key] = self.read(value_node, _submodel(field.annotation) if field else None, loc + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, model, loc + (i,)) for i, item in enumerate(node.value)]
        return self._plain(node)

    @staticmethod
    def _plain(node):
        # the safe loader's own constructor on the node itself (serialising and parsing it again cost
        # about 100 us a value: two seconds for a file at the node bound)
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def load_config(path: Path) -> KioskConfig:
    if Path(path).is_dir():
        raise ConfigError(f"{path}: is a directory; give the YAML file, for example {Path(path) / 'kiosk.yaml'}")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str = "<config>") -> KioskConfig:
    if len(text.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: the file is over {MAX_CONFIG_BYTES // 1024} KiB; a kiosk config is a few "
                          "kilobytes (is it the right file?)")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem} (check indentation, colons and quotes)") from None
    if node is None:
        return parse_config(None, source)
    reader = _Reader(source)
    try:
        data = reader.read(node, KioskConfig, ())
    except yaml.YAMLError as exc:  # an unknown tag, for example
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    return parse_config(data, source, reader.lines)


def _tls_problems(m: MqttConfig) -> list[str]:
    """Builds the TLS context the client will build: an unreadable file, a directory or a file that
    is not PEM is named here, not found by a traceback at start."""
    import ssl

    if m.ca_file is None:
        return [f"mqtt.{n}: set without mqtt.ca_file (TLS is on only with a CA)" for n in ("cert_file", "key_file")
                if getattr(m, n) is not None]
    problems = []
    for name in ("ca_file", "cert_file", "key_file"):
        f = getattr(m, name)
        if f is not None and not f.is_file():
            problems.append(f"mqtt.{name}: cannot read {f} ({'a directory' if f.is_dir() else 'no such file'}); "
                            "it must be a PEM file")
    if problems:
        return problems
    try:
        ctx = ssl.create_default_context(cafile=str(m.ca_file))
    except (OSError, ssl.SSLError) as exc:
        return [f"mqtt.ca_file: {m.ca_file} is not a usable CA certificate (PEM): {exc}"]
    if m.cert_file is not None:
        try:
            ctx.load_cert_chain(str(m.cert_file), str(m.key_file) if m.key_file else None)
        except (OSError, ssl.SSLError) as exc:
            return [f"mqtt.cert_file / key_file: {m.cert_file} with {m.key_file or 'its own key'} is not a usable "
                    f"certificate and key (PEM, matching): {exc}"]
    elif m.key_file is not None:
        return ["mqtt.key_file: set without mqtt.cert_file"]
    return []


def _store_problems(path: Path) -> list[str]:
    """Whether the daemon will be able to create and write the database at store.path."""
    import os

    if str(path).strip() in ("", "."):
        return ["store.path: empty; give the database file, for example /var/lib/kiosk/kiosk.db"]
    if path.is_dir():
        return [f"store.path: {path} is a directory; give the database file inside it, for example {path / 'kiosk.db'}"]
    if path.exists():
        return [] if os.access(path, os.R_OK | os.W_OK) else [f"store.path: {path} cannot be written by this user"]
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return [f"store.path: {ancestor} is a file, so {path} cannot be created below it"]
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return [f"store.path: cannot create {path}: {ancestor} is not writable (read-only mount, or owned by another "
                "user: with systemd the unit's StateDirectory= gives /var/lib/kiosk)"]
    return []


def environment_problems(cfg: KioskConfig) -> list[str]:
    """What a valid config names but this machine lacks (files, variables): checked by ``check-config``
    and at start, never inside a validator."""
    import os

    problems = []
    m = cfg.mqtt
    if m.enabled and "device_id" not in m.model_fields_set:
        problems.append("mqtt.device_id is not set: give this device a unique id (it is its MQTT client id and part "
                        "of every topic), or set mqtt.enabled: false for a device without a broker")
    problems += _tls_problems(m) + _store_problems(cfg.store.path)
    if m.password_file is not None:
        try:
            m.password_file.read_text()
        except OSError as exc:
            problems.append(f"mqtt.password_file: cannot read {m.password_file} ({exc.strerror}); "
                            "check the path and that the kiosk user may read it")
    if m.password_env and m.password_env not in os.environ:
        problems.append(f"mqtt.password_env: the environment variable {m.password_env} is not set "
                        "(with systemd: Environment= or EnvironmentFile= in a drop-in)")
    if cfg.vision.models_dir is not None and not cfg.vision.models_dir.is_dir():
        problems.append(f"vision.models_dir: {cfg.vision.models_dir} is not a directory (run 'kiosk models install')")
    return problems
