"""The device's periodic stats, version 2, as a model (``docs/schema/stats.v2.json`` is generated
from it; version 1 had no ``worker_errors``). Operational figures only: no count of people below k,
no attribute of anyone."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from kiosk.payloads.wire import Wire, utc_time

NonNegative = Annotated[float, Field(ge=0)]
Counter = Annotated[int, Field(ge=0)]


class Stats(Wire):
    """Published (QoS 0, not retained) every mqtt.stats_interval_s on {prefix}/{store_id}/{device_id}/stats."""

    model_config = ConfigDict(title="kiosk device stats, version 2")

    schema_name: Literal["kiosk.stats"] = Field(alias="schema")
    schema_version: Literal[2]
    device_id: str
    store_id: str
    at: str = utc_time()
    uptime_s: NonNegative | None = None
    frames_per_s: NonNegative | None = Field(None, description="Frames analysed per second over the last interval.")
    faces_per_s: NonNegative | None = Field(None, description="Face detections per second over the last interval.")
    inference_ms: NonNegative | None = Field(None, description="Median time to analyse one frame, recent frames.")
    frames_dropped: Counter | None = Field(
        None,
        description=(
            "Frames read but not analysed (older frames replaced by newer, empty or malformed frames), since start."
        ),
    )
    camera_state: Literal["starting", "online", "offline", "ended"] | None = None
    outbox_backlog: Counter = Field(description="Summaries waiting to be sent.")
    outbox_bytes: Counter
    dropped_summaries: Counter = Field(description="Summaries dropped so far because the outbox was full.")
    disk_free_bytes: Counter | None = Field(None, description="Free space on the database's file system.")
    cpu_temp_c: float | None = Field(None, description="CPU temperature where the device has a sensor.")
    clock_synced: bool | None = None
    clock_jumps: Counter | None = Field(None, description="Wall-clock jumps seen since start.")
    worker_errors: dict[str, Counter] = Field(
        description=(
            "Exceptions that escaped each worker thread (vision, store, publisher) since it started; each was "
            "logged and the thread went on or was restarted."
        )
    )
