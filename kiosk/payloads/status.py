"""The retained device status, version 1, as a model (``docs/schema/status.v1.json`` is generated
from it). The device builds every status through this model, and the collector checks each one
it receives with it."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from kiosk.payloads.wire import Wire, utc_time


class CommandAnswer(Wire):
    """The answer to the last command received on .../cmd/<name> (ping is answered here)."""

    name: str
    id: str | None = Field(None, description="The id the command carried, echoed.")
    ok: bool
    detail: str
    at: str = utc_time()


class Status(Wire):
    """Retained on {prefix}/{store_id}/{device_id}/status. 'online' on connect; the broker publishes
    the Will ('offline') when the device vanishes; a clean stop publishes 'offline' itself."""

    model_config = ConfigDict(title="kiosk device status, version 1")

    schema_name: Literal["kiosk.status"] = Field(alias="schema")
    schema_version: Literal[1]
    state: Literal["online", "offline"]
    device_id: str
    store_id: str
    version: str = Field("", description="The kiosk package version the device runs.")
    config_hash: str = Field("", description="A hash of the device's config (it changes when the config does).")
    models: dict[str, str] = Field(
        default_factory=dict, description="Model id -> the first 12 hex digits of its sha256."
    )
    started_at: str = utc_time()
    error: str | None = Field(
        None,
        description=(
            "What is wrong now, if anything: the last publishing error (for example an ACL denial), a camera that "
            "is offline, a refused config reload, a thread that failed, another client using this device's id."
        ),
    )
    last_command: CommandAnswer | None = None
