"""Zones drawn on the setup page, written into the config file.

The request is bounded and validated first (at most 32 zones and 32 exclusion zones of at most 64
points, by a schema of its own); then the file is edited with ruamel.yaml's round trip, which keeps
its comments, and the edited text is validated exactly as ``kiosk check-config`` reads a file. It is
written (atomically: a temporary file beside it, then a rename) only when it is valid and every
other setting reads back unchanged. A file this user cannot write is left alone: the answer holds
the YAML snippet to paste instead.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kiosk.config import ConfigError, KioskConfig, load_config, parse_yaml

MAX_ZONES = 32
MAX_POINTS = 64
MAX_REQUEST_BYTES = 64 * 1024

Point = Annotated[list[float], Field(min_length=2, max_length=2)]


class _AreaEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rect: list[float] | None = Field(None, max_length=4, description="[x0, y0, x1, y1], fractions of the frame.")
    polygon: list[Point] | None = Field(None, max_length=MAX_POINTS, description="[[x, y], ...], fractions.")


class ZoneEdit(_AreaEdit):
    id: str = Field(min_length=1, max_length=64, description="Zone id.")
    type: Literal["shelf", "queue"] = Field("shelf", description="shelf or queue.")
    label: str = Field("", max_length=200, description="The product or place.")


class ExclusionEdit(_AreaEdit):
    label: str = Field("", max_length=200, description="What the area is (cashier, staff door).")


class ZonesUpdate(BaseModel):
    """What the page sends: every zone and exclusion zone, in order."""

    model_config = ConfigDict(extra="forbid")
    zones: list[ZoneEdit] = Field(default_factory=list, max_length=MAX_ZONES, description="Zones, in order.")
    exclusion_zones: list[ExclusionEdit] = Field(
        default_factory=list, max_length=MAX_ZONES, description="Exclusion zones."
    )


@dataclass(frozen=True)
class SaveResult:
    ok: bool  # valid (written, or to be pasted)
    written: bool
    message: str
    errors: list[str] = field(default_factory=list)
    snippet: str = ""
    config: KioskConfig | None = None  # the config as it now reads (ok only)


def _yaml():
    from ruamel.yaml import YAML

    y = YAML()  # round trip: comments, order and quoting kept
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    return y


def _flow(values: list) -> object:
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def _num(c: float) -> float | int:
    """A coordinate as the file shows it: 4 decimals, 0 and 1 without them."""
    r = round(c, 4)
    return int(r) if r == int(r) else r


def _areas(update: ZonesUpdate) -> tuple[list, list]:
    from ruamel.yaml.comments import CommentedMap

    def shape(a: _AreaEdit, m: CommentedMap) -> CommentedMap:
        if a.rect is not None:
            m["rect"] = _flow([_num(c) for c in a.rect])
        if a.polygon is not None:
            m["polygon"] = _flow([_flow([_num(x), _num(y)]) for x, y in a.polygon])
        return m

    zones = [shape(z, CommentedMap(id=z.id, type=z.type, label=z.label)) for z in update.zones]
    exclusions = [shape(z, CommentedMap(label=z.label)) for z in update.exclusion_zones]
    return zones, exclusions


def _request_errors(exc: ValidationError) -> list[str]:
    out = []
    for e in exc.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".")
        out.append(f"{where or 'request'}: {e['msg']}")
    return out


def parse_update(raw: bytes) -> ZonesUpdate | list[str]:
    """The request body as an update, or the problems (its size, JSON, the schema)."""
    if len(raw) > MAX_REQUEST_BYTES:
        return [f"request: over {MAX_REQUEST_BYTES // 1024} KiB; {MAX_ZONES} zones of {MAX_POINTS} points fit in less"]
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return ["request: not JSON"]
    try:
        return ZonesUpdate.model_validate(data)
    except ValidationError as exc:
        return _request_errors(exc)


def save_zones(path: Path, update: ZonesUpdate) -> SaveResult:
    """Validate ``update`` as part of the config at ``path`` and write it there (or give the snippet)."""
    try:
        before = load_config(path)
        text = path.read_text(encoding="utf-8")
    except (ConfigError, OSError) as exc:
        return SaveResult(False, False, f"cannot read {path}: {exc}", [str(exc)])
    y = _yaml()
    data = y.load(text)
    if data is None:
        from ruamel.yaml.comments import CommentedMap

        data = CommentedMap()
    zones, exclusions = _areas(update)
    data["zones"] = zones
    data["exclusion_zones"] = exclusions
    out = io.StringIO()
    y.dump(data, out)
    new_text = out.getvalue()
    try:
        after = parse_yaml(new_text, path.name)
    except ConfigError as exc:  # the same schema as check-config: errors by YAML path
        errors = [line.split(": ", 1)[1] if ": " in line else line for line in str(exc).splitlines()]
        return SaveResult(False, False, "not saved: the zones are not valid", errors)
    unchanged = after.model_copy(update={"zones": before.zones, "exclusion_zones": before.exclusion_zones})
    if unchanged != before:
        return SaveResult(
            False,
            False,
            "not saved: rewriting the file would change other settings; edit the zones by hand",
            ["the file reads differently after a round trip (unusual YAML)"],
        )
    snippet_out = io.StringIO()
    y.dump({"zones": zones, "exclusion_zones": exclusions}, snippet_out)
    snippet = snippet_out.getvalue()
    try:
        _write_atomically(path, new_text)
    except OSError as exc:
        return SaveResult(
            True,
            False,
            f"{path} cannot be written by this user ({exc.strerror or exc}): replace its zones: and "
            f"exclusion_zones: with the snippet below (sudoedit {path}), then run kiosk check-config {path}",
            snippet=snippet,
            config=after,
        )
    return SaveResult(
        True,
        True,
        f"saved {len(update.zones)} zone(s) and {len(update.exclusion_zones)} exclusion zone(s) to {path}",
        snippet=snippet,
        config=after,
    )


def _write_atomically(path: Path, text: str) -> None:
    if not os.access(path, os.W_OK):
        raise PermissionError(13, "permission denied")
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
