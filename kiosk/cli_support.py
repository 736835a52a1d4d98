"""What the device's and the fleet's commands share: the config loaded or a clear exit, the
``--broker`` address, a stop event set by signals."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import click

from kiosk.config import ConfigError, KioskConfig, load_config

EX_CONFIG = 78  # sysexits.h: configuration error


def broker_address(broker: str) -> tuple[str, int]:
    """``mqtt://host:port`` (the --broker option) as (host, port)."""
    from urllib.parse import urlparse

    url = urlparse(broker)
    if url.scheme not in ("mqtt", "") or not url.hostname:
        raise click.BadParameter(f"{broker!r}: expected mqtt://host:port", param_hint="--broker")
    return url.hostname, url.port or 1883


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (installed before the work starts, so no signal is missed)."""
    import signal

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    return done


def load_config_or_exit(path: Path | None) -> KioskConfig:
    """The config at ``path`` (the defaults when None); a config error is printed and exits 78."""
    if path is None:
        return KioskConfig()
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EX_CONFIG)


def exit_on_problems(config_path: Path, problems: list[str]) -> None:
    """Each problem on stderr, prefixed by the file, then exit 78 (EX_CONFIG); nothing when there is none."""
    if problems:
        for line in problems:
            click.echo(f"{config_path}: {line}", err=True)
        sys.exit(EX_CONFIG)
