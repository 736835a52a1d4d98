"""`kiosk run` as a subprocess, and what it publishes: shared by the tests that run the daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from kiosk.mqtt.client import MqttClient, MqttOptions


class Feed:
    """Everything the device publishes, by kind."""

    def __init__(self, port: int) -> None:
        self.msgs: dict[str, list[dict]] = {"summary": [], "status": [], "stats": []}
        self.lock = threading.Lock()
        self.client = MqttClient(
            MqttOptions(port=port, client_id=f"feed-{os.getpid()}-{time.monotonic_ns()}"), on_message=self._on
        )
        self.client.subscribe("kiosk/+/+/+")
        self.client.start()
        assert self.client.wait_subscribed(10)

    def _on(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.msgs[topic.rsplit("/", 1)[-1]].append(json.loads(payload))

    def last(self, kind: str) -> dict | None:
        with self.lock:
            return self.msgs[kind][-1] if self.msgs[kind] else None

    def stop(self) -> None:
        self.client.stop()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def write_config(path: Path, tmp: Path, port: int, source: Path | str, **extra: str) -> Path:
    sections = {
        "camera": f"  source: {source}\n  loop: true\n  read_timeout_s: 2\n  reopen_max_s: 2\n",
        "store": f"  path: {tmp / 'device.db'}\n  period_s: 1\n  flush_interval_s: 0.5\n",
        "mqtt": f"  port: {port}\n  store_id: store-1\n  device_id: dev-1\n  stats_interval_s: 1\n  keepalive_s: 5\n",
        "tracking": "  max_age_s: 1.0\n  reacquire_s: 2.0\n",  # the plumbing: periods close 4.5 s after their end
        "vision": "  num_threads: 1\n",
        "service": "  error_log_interval_s: 0\n",
    }
    for section, body in extra.items():
        sections[section] = body
    path.write_text("".join(f"{k}:\n{v}" for k, v in sections.items()))
    return path


def start_daemon(cfg: Path, env: dict | None = None) -> subprocess.Popen:
    log = open(cfg.parent / "daemon.log", "a")  # a file: an unread pipe could block the daemon
    return subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "run", "--config", str(cfg)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )


@contextmanager
def running_daemon(cfg: Path, env: dict | None = None):
    """`kiosk run` as a subprocess, killed on the way out if a test left it running."""
    proc = start_daemon(cfg, env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


def daemon_log(cfg: Path) -> str:
    return (cfg.parent / "daemon.log").read_text()
