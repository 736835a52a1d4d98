"""Debian's headless Chromium opening a local page (the report, the notice): a screenshot or a PDF."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (scripts/test installs the Debian packages chromium, chromium-driver)")
    return exe


def open_headless(page: Path, *args: str) -> str:
    """Open ``page`` with ``args`` (``--screenshot=...``, ``--print-to-pdf=...``); returns Chromium's
    log, whose ``CONSOLE`` lines are the page's console messages (errors included)."""
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--enable-logging=stderr",
            "--v=0",
            *args,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stderr
