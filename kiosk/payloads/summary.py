"""The summary payload, version 2, as a model (``docs/schema/summary.v2.json`` is generated from it).

Every count is 0, at least ``k``, or ``null`` (suppressed by :mod:`kiosk.disclosure`); every key
is present in every summary. The model states the shape; the disclosure rules are tested by
attacking the payloads (``tests/test_disclosure.py``), since "0 or at least k" depends on ``k``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from kiosk.payloads.wire import Wire, utc_time

Count = Annotated[int, Field(ge=0)]
Hidden = Annotated[int | None, Field(ge=0, description="0, at least k, or null (suppressed).")]
Seconds = Annotated[float | None, Field(ge=0)]


class Histogram(Wire):
    bins_s: list[float] = Field(
        description=(
            "Lower bounds (s) of the published bins: the fixed bins, with neighbours merged where one held 1..k-1 "
            "visits (so the edges can differ between summaries); the last bin is open."
        )
    )
    counts: list[Hidden] = Field(
        description="Visits per bin, summing to the zone's visits; all null when the visits are."
    )


class TimeStats(Wire):
    sum: Seconds = Field(description="Total seconds over the visits; null when the visits are.")
    mean: Seconds = Field(description="sum / visits; null when sum is, or when there were no visits.")
    histogram: Histogram


class EmotionCounts(Wire):
    """Visits per emotion; ``none``: visits without a usable emotion. They sum to the visits."""

    angry: Hidden
    disgust: Hidden
    fear: Hidden
    happy: Hidden
    sad: Hidden
    surprise: Hidden
    neutral: Hidden
    none: Hidden


class GenderCounts(Wire):
    """Visits per estimated gender; they sum to the visits."""

    female: Hidden
    male: Hidden
    unknown: Hidden


class Queue(Wire):
    samples: Count = Field(description="Occupancy samples (about one per second while frames arrive).")
    occupancy_mean: Seconds = Field(description="Mean head count over the samples; null when the peak is.")
    occupancy_peak: Hidden = Field(description="Largest head count; 0, at least k, or null.")


class Coverage(Wire):
    """How much of the period was watched: a period with the camera off is not one in which nobody came."""

    analysed_s: float = Field(
        ge=0, description="Seconds of the period covered by analysed frames (each covers up to 1 s before it)."
    )
    frames: Count = Field(description="Frames analysed in the period.")
    camera_changes: Count = Field(description="Times the camera went offline or came back in the period.")


class Zone(Wire):
    zone: str = Field(min_length=1)
    visits: Hidden = Field(description="People who stayed at least visits.min_dwell_s.")
    passers_by: Hidden = Field(description="People seen for less than visits.min_dwell_s.")
    attentive: Hidden = Field(
        description="Visits with at least attentive_min_s of attention: the attention bins from that edge up."
    )
    dwell_s: TimeStats
    attention_s: TimeStats
    dominant_emotion: EmotionCounts
    first_reaction: EmotionCounts
    age_bands: dict[str, Hidden] = Field(description="Every configured band and 'unknown'; they sum to the visits.")
    gender: GenderCounts
    content: dict[str, Hidden] = Field(
        description="Every configured content label and 'other'; they sum to the visits."
    )
    queue: Queue | None = Field(None, description="Queue zones only (present in every summary of a queue zone).")


class Summary(Wire):
    """One message per closed period (QoS 1, not retained) on {prefix}/{store_id}/{device_id}/summary.
    Every zone configured is listed in every summary; each count is 0, at least k, or null, and no
    null can be narrowed to one value from the rest of the message (complementary suppression)."""

    model_config = ConfigDict(title="kiosk per-period summary, version 2")

    schema_name: Literal["kiosk.summary"] = Field(alias="schema")
    schema_version: Literal[2]
    device_id: str = Field(min_length=1)
    store_id: str = Field(min_length=1)
    seq: int = Field(ge=1, description="Per device, persisted, strictly increasing, never reused.")
    period_start: str = utc_time()
    period_end: str = utc_time()
    clock_synced: bool = Field(description="Whether the device clock was synchronised (NTP) when the period closed.")
    models: dict[str, str] = Field(description="Model id -> first 12 hex digits of its sha256.")
    k: int = Field(ge=2, description="The smallest count published other than 0.")
    attentive_min_s: float = Field(ge=0, description="visits.min_attention_s: a bin edge of the attention histogram.")
    coverage: Coverage | None = Field(
        description=(
            "How much of the period was watched; null when the device recorded none (data from before kiosk 0.2)."
        )
    )
    suppressed_cells: Count = Field(description="Counts published as null in this summary.")
    dropped_summaries: Count = Field(
        description=(
            "Summaries this device dropped from its full outbox so far, oldest first (cumulative). The newest "
            "summary's count equals the number of earlier seqs that will never arrive."
        )
    )
    zones: list[Zone]
