"""The commands a device accepts on ``{prefix}/{store_id}/{device_id}/cmd/<name>``, as models.

Everything that arrives from the network is checked here before anything uses it: its size,
its nesting depth (a few kilobytes of ``[`` made the JSON parser recurse until it failed), that
it is a JSON object, and every field against its command's model (types, ranges, lengths, no
unknown keys). A payload that fails is answered "ignored" with the reason; it never reaches a
handler.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_COMMAND_BYTES = 4096
MAX_DEPTH = 8
MAX_SEQ = 2**63 - 1  # SQLite's largest integer: the outbox's seqs are stored there


class CommandError(ValueError):
    """A command payload that is refused, with the reason an operator can act on."""


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str | None = Field(None, max_length=100, description="Echoed in the status's last_command.")


class Republish(_Command):
    from_seq: int = Field(ge=1, le=MAX_SEQ, description="Queue the kept summaries from this seq again.")


class Ping(_Command):
    pass


class Content(_Command):
    label: str | None = Field(
        min_length=1,
        max_length=200,
        description="Content label for attribution from now on; null returns to the schedule.",
    )


COMMANDS: dict[str, type[_Command]] = {"republish": Republish, "ping": Ping, "content": Content}


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects, strings skipped (no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_command(name: str, raw: bytes) -> _Command:
    """The validated command ``name`` from its raw payload (empty means ``{}``); CommandError otherwise."""
    model = COMMANDS.get(name)
    if model is None:
        raise CommandError(f"unknown command; known: {', '.join(sorted(COMMANDS))}")
    if len(raw) > MAX_COMMAND_BYTES:
        raise CommandError(f"payload of {len(raw)} bytes, over {MAX_COMMAND_BYTES}")
    try:
        text = (raw or b"{}").decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError("payload is not UTF-8 text") from None
    if _depth(text) > MAX_DEPTH:
        raise CommandError(f"payload nested deeper than {MAX_DEPTH} levels")
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"payload is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise CommandError("payload must be a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise CommandError(f"{where}: {first['msg']}") from None
