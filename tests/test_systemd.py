"""The systemd unit as installed: it verifies, and its exposure stays at or under 2.5."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def unit(tmp_path) -> Path:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is absent (no systemd on this machine)")
    prefix = tmp_path / "opt"
    (prefix / "venv" / "bin").mkdir(parents=True)
    (prefix / "venv" / "bin" / "kiosk").symlink_to(Path(sys.executable).parent / "kiosk")  # ExecStart must exist
    text = subprocess.run(
        [str(PROJECT / "systemd" / "install.sh"), "--render-unit", str(prefix)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = tmp_path / "kiosk.service"
    path.write_text(text)
    return path


def test_unit_verifies_and_has_what_the_daemon_relies_on(unit):
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "kiosk.service" not in result.stderr, result.stderr  # no warning about our unit
    text = unit.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "RestartSec=5",
        "StartLimitIntervalSec=0",
        "RestartPreventExitStatus=78",
        "StateDirectory=kiosk",
        "ConfigurationDirectory=kiosk",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "DevicePolicy=closed",
        "DeviceAllow=char-video4linux rw",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "LimitCORE=0",
        "MemoryMax=",
    ):
        assert line in text, line


def test_unit_exposure_is_at_most_2_5(unit):
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)], capture_output=True, text=True
    )
    match = re.search(r"Overall exposure level for kiosk.service: (\d+\.\d+)", result.stdout)
    if match is None:
        pytest.skip(f"this systemd-analyze cannot rate a unit offline: {result.stderr.strip()[:200]}")
    assert float(match.group(1)) <= 2.5, result.stdout[-3000:]
