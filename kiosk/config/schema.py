"""The configuration schema (pydantic v2, ``extra="forbid"``): a default and a description on every
field, written here once. The stages' options dataclasses take their configurable defaults from
these fields (:func:`default`); :mod:`kiosk.wiring` turns a section into its stage's options.

This package is a leaf: it imports nothing else from kiosk, so the fleet side (collector, watch,
report) loads a config without the vision stack. No validator does I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiosk.config.vocabulary import ATTENTION_BINS, DEFAULT_AGE_BANDS


def default(section: type[BaseModel], name: str) -> Any:
    """The default of one config field (for the options dataclass that mirrors it)."""
    field = section.model_fields[name]
    return field.get_default(call_default_factory=True)


_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9][A-Za-z0-9.-]{0,252})):(?P<port>[0-9]{1,5})$")


def parse_listen(value: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[V6]:PORT`` for an IPv6 address) as (host, port), or None when it is not one."""
    m = _LISTEN.match(value)
    if m is None or not 1 <= int(m["port"]) <= 65535:
        return None
    return (m["v6"] or m["host"]), int(m["port"])


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
    min_face_px: float = Field(
        20.0, ge=0, description="Faces smaller than this (shorter box side, frame pixels) are ignored."
    )
    max_faces: int = Field(20, ge=1, le=200, description="At most this many faces per frame.")
    tiles: int = Field(
        1,
        ge=1,
        le=4,
        description="1: detect on the whole frame. n > 1: also on an n x n grid of overlapping tiles, for small, "
        "distant faces (costs n*n+1 detector runs per frame).",
    )


class VisionConfig(Section):
    num_threads: int = Field(2, ge=1, le=16, description="Threads each TFLite interpreter may use.")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="Face detector settings.")
    emotion: bool = Field(True, description="Infer the 7-class emotion of each face.")
    emotion_model: Literal["emotion", "emotion_kiosk"] = Field(
        "emotion",
        description="Manifest id of the emotion model: emotion (fer's mini-Xception, upstream) or emotion_kiosk "
        "(trained by the project, training/emotion.py; figures in models/reports/emotion_kiosk.md).",
    )
    age: bool = Field(True, description="Estimate age (needs the face mesh).")
    gender: bool = Field(True, description="Estimate gender (needs the face mesh).")
    age_gender_model: Literal["dlib", "age_gender_kiosk"] = Field(
        "dlib",
        description="The age and gender models: dlib (the upstream dlib-models pair, manifest ids age and gender) or "
        "age_gender_kiosk (one two-head model trained by the project, training/age_gender.py; figures in "
        "models/reports/age_gender_kiosk.md).",
    )
    min_presence: float = Field(
        0.5, ge=0, le=1, description="Face-mesh presence below which age and gender are not inferred."
    )
    models_dir: Path | None = Field(
        None, description="Directory holding the model files; default: the project's models/ or $KIOSK_MODELS_DIR."
    )


class TrackingConfig(Section):
    iou_threshold: float = Field(
        0.3, gt=0, lt=1, description="Minimum overlap of a face with a track's predicted box to continue it."
    )
    max_age_s: float = Field(
        2.0,
        gt=0,
        le=30,
        description="Seconds a track survives without its face; then it ends, or waits (reacquire_s) when lost mid-frame.",
    )
    min_hits: int = Field(5, ge=1, le=50, description="Detections before a track counts as a person.")
    detect_every: int = Field(
        1, ge=1, le=10, description="Run the detector on every k-th frame; tracks coast in between."
    )
    attribute_rate_hz: float = Field(
        3.0, gt=0, le=30, description="At most this many emotion/age/gender samples per person per second."
    )
    min_sample_face_px: float = Field(
        32.0, ge=0, description="Faces smaller than this are tracked but not sampled for attributes."
    )
    reacquire_s: float = Field(
        20.0,
        ge=0,
        le=120,
        description="A face lost mid-frame where its person is likely still there (turned to the products, hidden "
        "by someone passing) waits this long for the same person (place and clothing/hair colours) to face the "
        "camera again: one visit, not two. 0: never wait.",
    )
    follow_with_mesh: bool = Field(
        True,
        description="Follow known faces with the face mesh where they were when the detector misses them "
        "(MediaPipe's face pipeline): the detector is needed only to find new faces.",
    )
    search_tiles: int = Field(
        3,
        ge=1,
        le=6,
        description="New faces are also searched in an n x n grid of tiles, one tile at a time in "
        "turn (small, distant faces for a fraction of the cost of every tile on every frame). 1: the whole frame only.",
    )
    search_tile_every: int = Field(
        2, ge=1, le=10, description="With search_tiles > 1: one tile is searched every this many frames."
    )
    whole_frame_every: int = Field(
        1,
        ge=1,
        le=10,
        description="The whole frame is searched every this many frames (known faces are followed "
        "by the face mesh in between).",
    )

    @property
    def visit_latency_s(self) -> float:
        """Longest time from a visit's end to the moment it is known (its track ends)."""
        return max(self.max_age_s, self.reacquire_s)


class VisitsConfig(Section):
    min_dwell_s: float = Field(
        3.0, ge=0, description="A person seen at least this long is a visit; shorter is a passer-by."
    )
    min_attention_s: float = Field(
        1.0,
        ge=0,
        description=(
            "A visit with at least this much attention counts as attentive; one of the attention histogram's "
            "bin edges (0, 1, 2, 5, 10, 20, 30, 60 s), so that the attentive count is a sum of published bins."
        ),
    )
    max_yaw_deg: float = Field(25.0, gt=0, le=90, description="Attention: head turned at most this far left or right.")
    max_pitch_deg: float = Field(20.0, gt=0, le=90, description="Attention: head tilted at most this far up or down.")
    first_reaction_s: float = Field(
        2.0, gt=0, le=10, description="The first reaction is the dominant emotion over this much attention."
    )
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
            raise ValueError(
                f"must be one of the attention histogram's bin edges {list(ATTENTION_BINS)} (s), got {v}: "
                "a threshold inside a bin would let the attentive count narrow a suppressed bin"
            )
        return v

    @field_validator("age_bands")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if not v or any(b <= a for a, b in zip(v, v[1:])) or v[0] <= 0:
            raise ValueError(f"needs positive, strictly increasing lower bounds, got {v}")
        return v


def _first_crossing(points: list[list[float]]) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges that cross, as (i, j) edge indices; None for a simple polygon."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]

    def orient(a: list[float], b: list[float], c: list[float]) -> float:
        return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # adjacent edges share a point
            (a, b), (c, d) = edges[i], edges[j]
            if orient(a, b, c) * orient(a, b, d) < 0 and orient(c, d, a) * orient(c, d, b) < 0:
                return i, j
    return None


class AreaConfig(Section):
    rect: list[float] | None = Field(
        None, description="Rectangle [x0, y0, x1, y1] in normalized frame coordinates (0-1)."
    )
    polygon: list[list[float]] | None = Field(
        None, description="Polygon [[x, y], ...] in normalized frame coordinates, at least 3 points."
    )

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
            raise ValueError(
                f"crosses itself (edge {i + 1}-{i + 2} crosses edge {j + 1}-{(j + 1) % len(v) + 1}); "
                "list the points in order around the area"
            )
        area = 0.5 * abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(v, v[1:] + v[:1])))
        if area < 1e-6:
            raise ValueError("encloses no area (the points are on one line or repeat): nothing could be in it")
        return v

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        if (self.rect is None) == (self.polygon is None):
            raise ValueError("give exactly one of rect or polygon")
        return self


class ZoneConfig(AreaConfig):
    id: str = Field("frame", min_length=1, max_length=64, description="Zone id, unique; used in topics and reports.")
    type: Literal["shelf", "queue"] = Field(
        "shelf", description="shelf: product interest; queue: people waiting (occupancy, waiting time)."
    )
    label: str = Field("", max_length=200, description="The product, SKU or place this zone stands for.")


class ExclusionZoneConfig(AreaConfig):
    label: str = Field(
        "", max_length=200, description="What the area is (for example 'cashier'). Faces inside are never analysed."
    )


class ContentSlotConfig(Section):
    label: str = Field(
        "none", min_length=1, max_length=200, description="Content/campaign label shown during this slot."
    )
    start: dt.datetime | None = Field(
        None, description="First moment (ISO 8601 with a timezone) the slot applies; open when absent."
    )
    end: dt.datetime | None = Field(
        None, description="Moment (ISO 8601 with a timezone) the slot stops applying; open when absent."
    )
    daily_from: dt.time | None = Field(None, description="Local time of day the slot starts (with daily_to).")
    daily_to: dt.time | None = Field(None, description="Local time of day the slot ends (with daily_from).")
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=list, description="Weekdays the slot applies on; all days when empty."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
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
    labels: list[str] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "Further labels the MQTT content command may set (campaigns chosen centrally). Every summary lists "
            "the default, the schedule's labels and these, so that a label's presence says nothing about visitors."
        ),
    )

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


class StoreConfig(Section):
    path: Path = Field(Path("/var/lib/kiosk/kiosk.db"), description="SQLite database of the aggregates.")
    period_s: int = Field(
        300,
        ge=1,
        le=86400,
        description="Aggregation period in seconds, aligned to UTC; must divide a day (under 60 s only for tests and demos).",
    )
    flush_interval_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Aggregates are written once per this interval (power loss loses at most this much).",
    )
    retention_days: float = Field(90.0, gt=0, description="Aggregates older than this are deleted.")
    k_anonymity: int = Field(
        5,
        ge=3,
        le=100,
        description=(
            "No published count is between 1 and k-1 people, directly or by subtraction (kiosk.disclosure). At "
            "least 3: with k = 2 a suppressed count could only be 1."
        ),
    )

    @field_validator("period_s")
    @classmethod
    def _divides_day(cls, v: int) -> int:
        if 86400 % v:
            raise ValueError(f"must divide a day (86400 s) so periods align to UTC, got {v}")
        return v


class MqttConfig(Section):
    host: str = Field("127.0.0.1", min_length=1, description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 is usual with TLS).")
    protocol: Literal[5, 4] = Field(
        5, description="5: MQTT 5 (the outbox needs its PUBACK reason codes); 4: MQTT 3.1.1."
    )
    prefix: str = Field(
        "kiosk", min_length=1, max_length=64, description="Topic prefix: {prefix}/{store_id}/{device_id}/..."
    )
    store_id: str = Field("store", min_length=1, max_length=64, description="Store identifier in topics and payloads.")
    device_id: str = Field(
        "device", min_length=1, max_length=64, description="Device identifier; also the MQTT client id."
    )
    keepalive_s: int = Field(
        30,
        ge=5,
        le=3600,
        description=(
            "MQTT keepalive: a broker that stops answering (a half-open connection) is noticed within 1.5x this."
        ),
    )
    username: str | None = Field(None, description="Username, if the broker wants one.")
    password_file: Path | None = Field(None, description="File holding the password (never logged).")
    password_env: str | None = Field(None, description="Environment variable holding the password (never logged).")
    ca_file: Path | None = Field(None, description="CA certificate for TLS; TLS is on when set.")
    cert_file: Path | None = Field(None, description="Client certificate for mutual TLS.")
    key_file: Path | None = Field(None, description="Client key for mutual TLS.")
    max_inflight: int = Field(
        20, ge=1, le=1000, description="Unacknowledged summaries at a time (paho's memory queue stays bounded)."
    )
    drain_rate_per_s: float = Field(200.0, gt=0, description="Most summaries per second sent from a backlog.")
    outbox_max_rows: int = Field(
        20000, ge=10, description="Outbox bound in summaries; the oldest are dropped beyond it."
    )
    outbox_max_bytes: int = Field(64 * 1024 * 1024, ge=65536, description="Outbox bound in bytes.")
    keep_sent_days: float = Field(
        7.0, ge=0, le=90, description="Sent summaries are kept this long for the republish command."
    )
    stats_interval_s: float = Field(
        60.0, ge=1, le=3600, description="Stats (frames/s, backlog, disk, temperature) are published this often."
    )
    enabled: bool = Field(True, description="false: summaries are kept in the outbox and nothing is sent (no broker).")

    @field_validator("store_id", "device_id")
    @classmethod
    def _topic_level(cls, v: str) -> str:
        """One MQTT topic level (spec 4.7): no wildcard, no level separator, no NUL. A '+' or '#'
        makes the broker refuse the client id and every publish; a '/' moves the summaries to a
        topic the collector's {prefix}/+/+/summary never matches."""
        bad = sorted(
            {c for c in v if c in "+#/\0"} | ({"control characters"} if any(ord(c) < 32 for c in v) else set())
        )
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
    def _credentials(self) -> Self:
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


class CameraConfig(Section):
    source: str = Field(
        "0",
        min_length=1,
        description="picamera2 (Pi camera; picamera2:N for camera N), a USB camera index (0) or path "
        "(/dev/v4l/by-id/...), an rtsp:// or http:// URL, or a video file.",
    )
    width: int = Field(
        640, ge=64, le=4096, description="Frame width asked of the camera; about 640 suits the detector."
    )
    height: int = Field(480, ge=64, le=4096, description="Frame height asked of the camera.")
    fps: float = Field(
        10.0, gt=0, le=60, description="At most this many frames per second are analysed; the latest frame wins."
    )
    loop: bool = Field(False, description="Video files: start again at the end (demos and tests).")
    realtime: bool = Field(True, description="Video files: deliver frames at the file's own rate, like a camera.")
    read_timeout_s: float = Field(
        10.0, ge=1, le=300, description="No frame for this long: the camera is offline and is reopened."
    )
    reopen_max_s: float = Field(
        30.0, ge=1, le=3600, description="Longest wait between attempts to reopen an offline camera."
    )


class ServiceConfig(Section):
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level written to the log (journald)."
    )
    error_log_interval_s: float = Field(
        60.0, ge=0, description="A repeated error is logged at most once per this interval."
    )
    clock_jump_s: float = Field(
        2.0, gt=0, description="A wall-clock change this much beyond the monotonic clock is a jump."
    )
    stop_timeout_s: float = Field(
        4.0, gt=0, le=30, description="Seconds a stop (SIGTERM) may take before threads are abandoned."
    )
    metrics_listen: str | None = Field(
        None,
        description="HOST:PORT to serve Prometheus metrics on (http://HOST:PORT/metrics), for example "
        "127.0.0.1:9108; unset: off. The metrics count faces and visits as they happen (no category, no "
        "person): bind loopback or a management network only.",
    )

    @field_validator("metrics_listen")
    @classmethod
    def _host_port(cls, v: str | None) -> str | None:
        if v is not None and parse_listen(v) is None:
            raise ValueError(
                f"must be HOST:PORT with a port from 1 to 65535, for example 127.0.0.1:9108 (this machine only), "
                f"0.0.0.0:9108 (every interface) or [::1]:9108, got {v!r}"
            )
        return v


class NoticeConfig(Section):
    """Who the store's notice names (``kiosk notice``); the rest of the notice comes from the config."""

    controller: str | None = Field(
        None, max_length=200, description="Who is responsible for the processing (the data controller): legal name."
    )
    address: str | None = Field(None, max_length=300, description="The controller's postal address.")
    contact: str | None = Field(
        None, max_length=200, description="Where people ask about the camera (an e-mail address or a phone number)."
    )
    dpo_contact: str | None = Field(None, max_length=200, description="The data protection officer's contact, if any.")
    details_url: str | None = Field(
        None,
        max_length=300,
        description="Where the full notice (second layer) is published, printed on the sign (for example a web page).",
    )
    location: str = Field(
        "this shelf", min_length=1, max_length=100, description="Where the camera looks, as the sign says it."
    )
    purpose: str = Field(
        "to count, without identifying anyone, how many people stop here, how long they look and how they react, "
        "so that we can improve what we show here",
        min_length=1,
        max_length=400,
        description="Why the analysis is done, as the notice says it.",
    )
    legal_basis: str = Field(
        "our legitimate interest in measuring interest in our displays (GDPR Art. 6(1)(f))",
        min_length=1,
        max_length=300,
        description="The legal basis of the processing, as the notice says it.",
    )
    supervisory_authority: str | None = Field(
        None, max_length=200, description="The data protection authority people may complain to (name and web site)."
    )


class KioskConfig(Section):
    camera: CameraConfig = Field(default_factory=CameraConfig, description="Where frames come from.")
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="How the daemon runs.")
    vision: VisionConfig = Field(default_factory=VisionConfig, description="On-device face analysis.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Following faces over frames.")
    visits: VisitsConfig = Field(default_factory=VisitsConfig, description="Turning tracks into visits.")
    zones: list[ZoneConfig] = Field(
        default_factory=list, description="Zones of the frame; none: the whole frame is one shelf zone 'frame'."
    )
    exclusion_zones: list[ExclusionZoneConfig] = Field(
        default_factory=list, description="Areas whose faces are dropped before any analysis (staff)."
    )
    content: ContentConfig = Field(
        default_factory=ContentConfig, description="What the display beside the shelf shows, for attribution."
    )
    store: StoreConfig = Field(default_factory=StoreConfig, description="Aggregate storage.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Publishing summaries to the central broker.")
    notice: NoticeConfig = Field(
        default_factory=NoticeConfig, description="The controller's details for the notice a store puts up."
    )

    @field_validator("zones")
    @classmethod
    def _unique_ids(cls, v: list[ZoneConfig]) -> list[ZoneConfig]:
        seen = set()
        for z in v:
            if z.id in seen:
                raise ValueError(f"zone id {z.id!r} is used twice")
            seen.add(z.id)
        return v
