"""The import graph: the configuration package is a leaf, and the fleet side (collector, watch,
report) never loads OpenCV, the vision stack or a TFLite runtime (checked with ``python -X importtime``
in a fresh interpreter, as the commands run)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import kiosk.config

HEAVY = re.compile(
    r"^(cv2|kiosk\.vision|kiosk\.tracking|kiosk\.camera|kiosk\.wiring|kiosk\.daemon|kiosk\.publishing|ai_edge_litert|"
    r"tflite_runtime|picamera2)(\.|$)"
)


def imported(code: list[str]) -> dict[str, int]:
    """Module -> cumulative import time (us) of running ``python -X importtime`` with these arguments."""
    out = subprocess.run([sys.executable, "-X", "importtime", *code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    modules = {}
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s+(\S+)", line)
        if m:
            modules[m.group(2).strip()] = int(m.group(1))
    return modules


KIOSK = Path(kiosk.config.__file__).parents[1]


def imports_of(source: Path) -> set[str]:
    """Every kiosk module ``source`` names in an import, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)  # from kiosk import logs
    return {n for n in names if n == "kiosk" or n.startswith("kiosk.")}


def under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_config_package_imports_nothing_else_from_kiosk():
    for source in (KIOSK / "config").glob("*.py"):
        for name in imports_of(source):
            assert under(name, "kiosk.config"), (source.name, name)
    loaded = [m for m in imported(["-c", "import kiosk.config"]) if m.startswith("kiosk")]
    assert set(loaded) <= {"kiosk"} | {m for m in loaded if m.startswith("kiosk.config")}, loaded


def test_the_device_side_and_the_fleet_side_stand_apart():
    """The device never imports the fleet (only the CLI offers both); the fleet imports no stage,
    neither the daemon nor the publishing package: it shares the wire formats, the MQTT client and the
    store's readers (a report on a device database)."""
    device_only = ("kiosk.camera", "kiosk.vision", "kiosk.tracking", "kiosk.daemon", "kiosk.publishing")
    device_only += ("kiosk.wiring", "kiosk.analyze", "kiosk.visits", "kiosk.zones", "kiosk.aggregate")
    checked = 0
    for source in KIOSK.rglob("*.py"):
        module = ".".join(source.relative_to(KIOSK.parent).with_suffix("").parts)
        if under(module, "kiosk.testing") or module == "kiosk.cli":
            continue
        checked += 1
        for name in imports_of(source):
            if under(module, "kiosk.fleet"):
                assert not under(name, *device_only), (module, name)
            else:
                assert not under(name, "kiosk.fleet"), (module, name)
    assert checked > 50


def test_collect_watch_and_report_do_not_load_the_vision_stack(tmp_path):
    from kiosk.store.db import open_db
    from tests.helpers import fill

    db = open_db(tmp_path / "device.db")
    fill(db, 3)
    db.conn.close()
    commands = {
        # what each command imports when it runs (kiosk.cli imports them inside the command)
        "collect": [
            "-c",
            "import kiosk.cli, kiosk.logs, kiosk.fleet.database, kiosk.mqtt.client, kiosk.fleet.collector",
        ],
        "watch": ["-c", "import kiosk.cli, kiosk.mqtt.client, kiosk.fleet.watch"],
        # and the report command run for real on a device database
        "report": ["-m", "kiosk.cli", "report", "--db", str(tmp_path / "device.db"), "--out", str(tmp_path / "r.html")],
    }
    for name, code in commands.items():
        modules = imported(code)
        heavy = sorted(m for m in modules if HEAVY.match(m))
        assert heavy == [], (name, heavy)
        assert "kiosk.config" in modules, name  # the config is loaded, without what it configures
    assert (tmp_path / "r.html").stat().st_size > 0
