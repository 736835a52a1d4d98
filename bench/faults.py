"""The fault matrix's slow rows in full (the tests run them shortened): 200 SIGKILLs at random points
of flushes, period closing and outbox marking; a broker restarted every 5 s for 3 minutes.
Prints JSON.

    .venv/bin/python bench/faults.py [--kills 200] [--restart-minutes 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults import broker_restarts, kill_storm  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--restart-minutes", type=float, default=3.0)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between broker restarts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = {}
        if args.kills:
            out["kill_storm"] = kill_storm(Path(tmp) / "storm", args.kills)
        if args.restart_minutes:
            out["broker_restarts"] = broker_restarts(Path(tmp) / "restarts", args.restart_minutes * 60, args.every)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
