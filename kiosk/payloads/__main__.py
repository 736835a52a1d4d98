"""``python -m kiosk.payloads [DIR]``: write the generated JSON schemas (default ``docs/schema``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kiosk.payloads import stats, status, summary

GENERATED = {"summary.v2.json": summary.json_schema, "status.v1.json": status.json_schema,
             "stats.v2.json": stats.json_schema}


def render(name: str) -> str:
    return json.dumps(GENERATED[name](), indent=2) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "docs" / "schema"
    for name in GENERATED:
        (out / name).write_text(render(name))
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
