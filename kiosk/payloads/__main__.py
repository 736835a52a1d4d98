"""``python -m kiosk.payloads [DIR]``: write the generated JSON schemas (default ``docs/schema``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from kiosk.payloads.commands import COMMANDS
from kiosk.payloads.stats import Stats
from kiosk.payloads.status import Status
from kiosk.payloads.summary import Summary
from kiosk.payloads.wire import json_schema

GENERATED: dict[str, tuple[type[BaseModel], str]] = {
    "summary.v2.json": (Summary, "kiosk.summary/2"),
    "status.v1.json": (Status, "kiosk.status/1"),
    "stats.v2.json": (Stats, "kiosk.stats/2"),
    # what a device accepts on .../cmd/<name>
    **{f"command.{name}.v1.json": (model, f"kiosk.command.{name}/1") for name, model in COMMANDS.items()},
}


def render(name: str) -> str:
    return json.dumps(json_schema(*GENERATED[name]), indent=2) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "docs" / "schema"
    for name in GENERATED:
        (out / name).write_text(render(name))
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
