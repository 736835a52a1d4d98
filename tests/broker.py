"""A real Mosquitto broker on a free loopback port, started and stopped by tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(
        self, workdir: Path, port: int | None = None, extra: str = "", users: dict[str, str] | None = None
    ) -> None:
        """``users`` (name -> password): only they may connect (a password file made with
        mosquitto_passwd; anonymous clients refused). ``extra`` is appended to the configuration."""
        exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if exe is None:
            pytest.skip("mosquitto is not installed (scripts/test installs the Debian package)")
        self.exe = exe
        self.port = port or free_port()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "mosquitto.conf"
        # started as root, mosquitto would switch to user "mosquitto", who cannot read pytest's private tmp dirs
        run_as = "user root\n" if os.geteuid() == 0 else ""
        anonymous = "true"
        if users:
            passwd = self.dir / "passwd"
            passwd.unlink(missing_ok=True)
            for name, password in users.items():
                flags = ["-b"] if passwd.exists() else ["-b", "-c"]
                subprocess.run(
                    ["mosquitto_passwd", *flags, str(passwd), name, password], check=True, capture_output=True
                )
            anonymous = "false"
            extra = f"password_file {passwd}\n{extra}"
        self.conf.write_text(
            f"{run_as}listener {self.port} 127.0.0.1\nallow_anonymous {anonymous}\npersistence true\n"
            f"persistence_location {self.dir}/\nlog_dest file {self.dir}/mosquitto.log\n{extra}"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()}") from None
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # saves persistent sessions
            self.proc.wait(10)
        self.proc = None
