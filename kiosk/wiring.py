"""The one place a configuration becomes the device's parts: options for each stage, the visit
chain, the pipeline, the store's outbox and the device's link to the broker.

`kiosk run` (:mod:`kiosk.daemon`), `kiosk publish`, `kiosk analyze --visits`, the benches and the
test fixtures all build through here, so they cannot drift apart. Each stage owns its options
dataclass beside its code; the configurable defaults are written once, in :mod:`kiosk.config`,
and a section becomes its options here, by field name (:func:`options_from`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from pydantic import BaseModel

from kiosk.aggregate import Aggregator, Deltas
from kiosk.config import (
    CameraConfig,
    ContentConfig,
    KioskConfig,
    MqttConfig,
    TrackingConfig,
    VisionConfig,
    VisitsConfig,
)
from kiosk.config.schema import AreaConfig
from kiosk.tracking.observer import AttentionOptions, FaceObserver, ObserverOptions
from kiosk.tracking.tracker import TrackerOptions
from kiosk.vision.pipeline import VisionPipeline
from kiosk.vision.types import DetectorOptions, PipelineOptions
from kiosk.visits import ContentSchedule, ContentSlot, Visit, VisitBuilder, VisitOptions
from kiosk.zones import Area, Zone, ZoneMap

Options = TypeVar("Options")

OCCUPANCY_SAMPLE_S = 1.0
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def options_from(section: BaseModel, options_type: type[Options], **overrides) -> Options:
    """The options dataclass with every field the section has of the same name, then ``overrides``."""
    names = {f.name for f in dataclasses.fields(options_type)}  # type: ignore[arg-type]
    values = {name: getattr(section, name) for name in type(section).model_fields if name in names}
    return options_type(**{**values, **overrides})


# --- the stages' options ---------------------------------------------------------------------------


def pipeline_options(vision: VisionConfig) -> PipelineOptions:
    return options_from(vision, PipelineOptions, detector=options_from(vision.detector, DetectorOptions))


def tracker_options(tracking: TrackingConfig) -> TrackerOptions:
    return options_from(tracking, TrackerOptions)


def observer_options(tracking: TrackingConfig) -> ObserverOptions:
    return options_from(tracking, ObserverOptions)


def attention_options(visits: VisitsConfig) -> AttentionOptions:
    return options_from(visits, AttentionOptions)


def visit_options(visits: VisitsConfig) -> VisitOptions:
    return options_from(visits, VisitOptions, age_bands=tuple(visits.age_bands))


def content_schedule(content: ContentConfig) -> ContentSchedule:
    slots = tuple(
        ContentSlot(
            label=s.label,
            start=s.start,
            end=s.end,
            daily_from=s.daily_from,
            daily_to=s.daily_to,
            days=tuple(WEEKDAYS.index(d) for d in s.days),
        )
        for s in content.schedule
    )
    return ContentSchedule(slots, default=content.default, timezone=content.timezone)


def _area(a: AreaConfig) -> Area:
    if a.rect is not None:
        return Area.rect(*a.rect)
    return Area(tuple((float(x), float(y)) for x, y in a.polygon or ()))


def zone_map(cfg: KioskConfig) -> ZoneMap:
    zones = tuple(Zone(id=z.id, kind=z.type, label=z.label, area=_area(z)) for z in cfg.zones)
    exclusions = tuple(_area(e) for e in cfg.exclusion_zones)
    return ZoneMap(zones=zones, exclusions=exclusions) if zones else ZoneMap(exclusions=exclusions)


def camera_options(camera: CameraConfig):
    from kiosk.camera.types import CameraOptions

    return options_from(camera, CameraOptions, open_timeout_s=camera.read_timeout_s)


def mqtt_options(m: MqttConfig):
    from kiosk.mqtt.client import MqttOptions

    def text(path) -> str | None:
        return str(path) if path else None

    return MqttOptions(
        host=m.host,
        port=m.port,
        client_id=m.device_id,
        protocol=m.protocol,
        keepalive=m.keepalive_s,
        username=m.username,
        password=m.password(),
        ca_file=text(m.ca_file),
        cert_file=text(m.cert_file),
        key_file=text(m.key_file),
        max_inflight=m.max_inflight,
        max_queued=m.max_inflight * 2,
    )


# --- parts -----------------------------------------------------------------------------------------


def config_hash(cfg: KioskConfig) -> str:
    return hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:12]


def open_pipeline(vision: VisionConfig, models_dir=None) -> VisionPipeline:
    """The models, loaded once (each checked against its hash); close it, or use it as a context manager."""
    return VisionPipeline(pipeline_options(vision), models_dir or vision.models_dir)


class VisitChain:
    """Frames in; visits (memory only) out and added to the aggregates."""

    def __init__(self, cfg: KioskConfig, pipeline: VisionPipeline) -> None:
        self.observer = FaceObserver(
            pipeline,
            zones=zone_map(cfg),
            tracker=tracker_options(cfg.tracking),
            attention=attention_options(cfg.visits),
            options=observer_options(cfg.tracking),
        )
        self.builder = VisitBuilder(visit_options(cfg.visits), content_schedule(cfg.content))
        self.aggregator = Aggregator(cfg.store.period_s)
        self._last_occupancy: float | None = None
        self._last_frame_t: float | None = None
        self.frames = 0
        self.faces = 0
        self.excluded = 0
        self.visits = 0  # visits and passers-by ended so far (the daemon's metrics)
        self.passers_by = 0

    def process(self, frame: np.ndarray, t: float, wall: float) -> list[Visit]:
        """One frame at monotonic ``t`` and wall-clock ``wall`` seconds; returns the visits that ended."""
        result = self.observer.process(frame, t, wall)
        self.aggregator.add_frame(wall, 0.0 if self._last_frame_t is None else t - self._last_frame_t)
        self._last_frame_t = t
        self.frames += 1
        self.faces += result.faces
        self.excluded += result.excluded
        if result.occupancy and (self._last_occupancy is None or t - self._last_occupancy >= OCCUPANCY_SAMPLE_S):
            self._last_occupancy = t
            for zone_id, count in result.occupancy.items():
                self.aggregator.add_occupancy(wall, zone_id, count)
        return self._visits(result.ended)

    def finish(self) -> list[Visit]:
        """End every open track (shutdown or the end of a clip)."""
        return self._visits(self.observer.finish())

    def drain(self) -> Deltas:
        return self.aggregator.drain()

    def _visits(self, ended) -> list[Visit]:
        visits = [v for v in (self.builder.build(ft) for ft in ended) if v is not None]
        for v in visits:
            self.aggregator.add(v)
            if v.kind == "visit":
                self.visits += 1
            else:
                self.passers_by += 1
        return visits


def open_outbox(cfg: KioskConfig, db=None):
    """The outbox of ``store.path`` (a connection of its own unless ``db`` is given), with the config's bounds."""
    from kiosk.store.db import open_db
    from kiosk.store.outbox import Outbox

    m = cfg.mqtt
    return Outbox(
        db if db is not None else open_db(cfg.store.path),
        m.outbox_max_rows,
        m.outbox_max_bytes,
        m.keep_sent_days * 86400,
    )


def device_link(
    cfg: KioskConfig,
    outbox,
    *,
    models: dict | None = None,
    stats: Callable[[], dict] | None = None,
    commands: dict | None = None,
):
    """The device's link to the broker (status, stats, commands, the outbox drain) for this config."""
    from kiosk.publishing.link import DeviceLink

    m = cfg.mqtt
    return DeviceLink(
        mqtt_options(m),
        outbox,
        prefix=m.prefix,
        store_id=m.store_id,
        device_id=m.device_id,
        config_hash=config_hash(cfg),
        models=models,
        rate_per_s=m.drain_rate_per_s,
        stats=stats,
        stats_interval_s=m.stats_interval_s,
        commands=commands,
    )
