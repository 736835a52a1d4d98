"""The retained device status, version 1, as a model (``docs/schema/status.v1.json`` is generated
from it). The device builds every status through this model, and the collector checks each one
it receives with it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CommandAnswer(_Wire):
    """The answer to the last command received on .../cmd/<name> (ping is answered here)."""

    name: str
    id: str | None = Field(None, description="The id the command carried, echoed.")
    ok: bool
    detail: str
    at: str = Field(pattern="Z$", json_schema_extra={"format": "date-time"})


class Status(_Wire):
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
    models: dict[str, str] = Field(default_factory=dict, description="Model id -> the first 12 hex digits of its sha256.")
    started_at: str = Field(pattern="Z$", json_schema_extra={"format": "date-time"})
    error: str | None = Field(None, description=(
        "What is wrong now, if anything: the last publishing error (for example an ACL denial), a camera that "
        "is offline, a refused config reload, a thread that failed, another client using this device's id."))
    last_command: CommandAnswer | None = None


def json_schema() -> dict:
    schema = Status.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "kiosk.status/1", **schema}
