"""What every wire-format model shares: a strict, frozen base, the UTC timestamp field, and the JSON
Schema written for it (draft 2020-12, with the payload's ``$id``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def utc_time(*default: Any, **kwargs: Any) -> Any:
    """An ISO 8601 UTC timestamp ending in ``Z``, as the device writes them."""
    return Field(*default, pattern="Z$", json_schema_extra={"format": "date-time"}, **kwargs)


def json_schema(model: type[BaseModel], schema_id: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        **model.model_json_schema(by_alias=True),
    }
