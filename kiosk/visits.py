"""From finished tracks to visits: dwell, attention, reactions and broad demographics.

A track that lasted at least ``min_dwell_s`` is a visit; a shorter one is a
passer-by. A visit is a frozen record in memory: it is added to the
aggregates and then dropped. It is never stored or sent on its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

from kiosk.config.schema import VisitsConfig, default
from kiosk.config.vocabulary import DEFAULT_AGE_BANDS, EMOTIONS

if TYPE_CHECKING:  # the type only: the counting side does not load the vision stack
    from kiosk.tracking.observer import FinishedTrack


def age_band_labels(bounds: tuple[int, ...]) -> tuple[str, ...]:
    edges = (0,) + tuple(bounds)
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:])]
    return tuple(labels + [f"{edges[-1]}+"])


def age_band(age: float | None, bounds: tuple[int, ...]) -> str:
    if age is None:
        return "unknown"
    labels = age_band_labels(bounds)
    for i, lo in enumerate(bounds):
        if age < lo:
            return labels[i]
    return labels[-1]


@dataclass(frozen=True)
class VisitOptions:
    """Turning tracks into visits: the ``visits`` section of the config."""

    min_dwell_s: float = default(VisitsConfig, "min_dwell_s")
    min_attention_s: float = default(VisitsConfig, "min_attention_s")
    age_bands: tuple[int, ...] = DEFAULT_AGE_BANDS
    gender_min_confidence: float = default(VisitsConfig, "gender_min_confidence")  # below: "unknown"
    gender_min_age: float = default(VisitsConfig, "gender_min_age")  # younger: "unknown" (children: ~65% right)


@dataclass(frozen=True)
class Visit:
    """One person's stop (kind "visit") or pass (kind "passer_by") in a zone."""

    kind: str
    zone_id: str
    content: str
    wall_start: float
    wall_end: float
    dwell_s: float
    attention_s: float
    attentive: bool
    first_reaction: str | None
    dominant_emotion: str | None
    age_band: str
    gender: str

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "zone": self.zone_id,
            "content": self.content,
            "start": _iso(self.wall_start),
            "end": _iso(self.wall_end),
            "dwell_s": round(self.dwell_s, 2),
            "attention_s": round(self.attention_s, 2),
            "attentive": self.attentive,
            "first_reaction": self.first_reaction,
            "dominant_emotion": self.dominant_emotion,
            "age_band": self.age_band,
            "gender": self.gender,
        }


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _dominant(probs: tuple[float, ...] | None) -> str | None:
    return None if probs is None else EMOTIONS[int(np.argmax(probs))]


@dataclass(frozen=True)
class ContentSlot:
    """A content/campaign label active from ``start`` to ``end`` (UTC, either open),
    optionally only between ``daily_from`` and ``daily_to`` local time on ``days`` (0 = Monday)."""

    label: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    daily_from: dt.time | None = None
    daily_to: dt.time | None = None
    days: tuple[int, ...] = ()

    def active(self, when: dt.datetime, tz: ZoneInfo) -> bool:
        if self.start is not None and when < self.start:
            return False
        if self.end is not None and when >= self.end:
            return False
        local = when.astimezone(tz)
        if self.days and local.weekday() not in self.days:
            return False
        if self.daily_from is not None and self.daily_to is not None:
            t = local.time()
            if self.daily_from <= self.daily_to:
                return self.daily_from <= t < self.daily_to
            return t >= self.daily_from or t < self.daily_to  # over midnight
        return True


class ContentSchedule:
    """What the display next to the shelf shows at a given time: the first active slot,
    unless an operator override (the MQTT ``content`` command) is set."""

    def __init__(self, slots: tuple[ContentSlot, ...] = (), default: str = "none", timezone: str = "UTC") -> None:
        self.slots = slots
        self.default = default
        self.tz = ZoneInfo(timezone)
        self._override: str | None = None

    def override(self, label: str | None) -> None:
        self._override = label

    def label_at(self, wall: float) -> str:
        if self._override is not None:
            return self._override
        when = dt.datetime.fromtimestamp(wall, dt.timezone.utc)
        for slot in self.slots:
            if slot.active(when, self.tz):
                return slot.label
        return self.default


class VisitBuilder:
    def __init__(self, options: VisitOptions | None = None, content: ContentSchedule | None = None) -> None:
        self.options = options or VisitOptions()
        self.content = content or ContentSchedule()

    def build(self, track: FinishedTrack) -> Visit | None:
        """A visit or passer-by, or None for a track outside every zone."""
        if track.zone_id is None:
            return None
        o = self.options
        kind = "visit" if track.dwell_s >= o.min_dwell_s else "passer_by"
        gender = "unknown"
        if track.gender is not None and (track.age is None or track.age >= o.gender_min_age):
            p_female, p_male = track.gender
            if max(p_female, p_male) >= o.gender_min_confidence:
                gender = "female" if p_female > p_male else "male"
        return Visit(
            kind=kind,
            zone_id=track.zone_id,
            content=self.content.label_at(track.wall_start),
            wall_start=track.wall_start,
            wall_end=track.wall_end,
            dwell_s=track.dwell_s,
            attention_s=track.attention_s,
            attentive=track.attention_s >= o.min_attention_s,
            first_reaction=_dominant(track.first_reaction),
            dominant_emotion=_dominant(track.emotion),
            age_band=age_band(track.age, o.age_bands),
            gender=gender,
        )
