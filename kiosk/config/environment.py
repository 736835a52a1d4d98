"""What a valid config names but this machine lacks (files, variables, a writable store, a usable
TLS context): checked by ``check-config`` and at start, never inside a validator."""

from __future__ import annotations

from pathlib import Path

from kiosk.config.schema import KioskConfig, MqttConfig


def _tls_problems(m: MqttConfig) -> list[str]:
    """Builds the TLS context the client will build: an unreadable file, a directory or a file that
    is not PEM is named here, not found by a traceback at start."""
    import ssl

    if m.ca_file is None:
        return [
            f"mqtt.{n}: set without mqtt.ca_file (TLS is on only with a CA)"
            for n in ("cert_file", "key_file")
            if getattr(m, n) is not None
        ]
    problems = []
    for name in ("ca_file", "cert_file", "key_file"):
        f = getattr(m, name)
        if f is not None and not f.is_file():
            problems.append(
                f"mqtt.{name}: cannot read {f} ({'a directory' if f.is_dir() else 'no such file'}); "
                "it must be a PEM file"
            )
    if problems:
        return problems
    try:
        ctx = ssl.create_default_context(cafile=str(m.ca_file))
    except (OSError, ssl.SSLError) as exc:
        return [f"mqtt.ca_file: {m.ca_file} is not a usable CA certificate (PEM): {exc}"]
    if m.cert_file is not None:
        try:
            ctx.load_cert_chain(str(m.cert_file), str(m.key_file) if m.key_file else None)
        except (OSError, ssl.SSLError) as exc:
            return [
                f"mqtt.cert_file / key_file: {m.cert_file} with {m.key_file or 'its own key'} is not a usable "
                f"certificate and key (PEM, matching): {exc}"
            ]
    elif m.key_file is not None:
        return ["mqtt.key_file: set without mqtt.cert_file"]
    return []


def _store_problems(path: Path) -> list[str]:
    """Whether the daemon will be able to create and write the database at store.path."""
    import os

    if str(path).strip() in ("", "."):
        return ["store.path: empty; give the database file, for example /var/lib/kiosk/kiosk.db"]
    if path.is_dir():
        return [f"store.path: {path} is a directory; give the database file inside it, for example {path / 'kiosk.db'}"]
    if path.exists():
        return [] if os.access(path, os.R_OK | os.W_OK) else [f"store.path: {path} cannot be written by this user"]
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return [f"store.path: {ancestor} is a file, so {path} cannot be created below it"]
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return [
            f"store.path: cannot create {path}: {ancestor} is not writable (read-only mount, or owned by another "
            "user: with systemd the unit's StateDirectory= gives /var/lib/kiosk)"
        ]
    return []


def environment_problems(cfg: KioskConfig) -> list[str]:
    """What a valid config names but this machine lacks (files, variables): checked by ``check-config``
    and at start, never inside a validator."""
    import os

    problems = []
    m = cfg.mqtt
    if m.enabled and "device_id" not in m.model_fields_set:
        problems.append(
            "mqtt.device_id is not set: give this device a unique id (it is its MQTT client id and part "
            "of every topic), or set mqtt.enabled: false for a device without a broker"
        )
    problems += _tls_problems(m) + _store_problems(cfg.store.path)
    if m.password_file is not None:
        try:
            m.password_file.read_text()
        except OSError as exc:
            problems.append(
                f"mqtt.password_file: cannot read {m.password_file} ({exc.strerror}); "
                "check the path and that the kiosk user may read it"
            )
    if m.password_env and m.password_env not in os.environ:
        problems.append(
            f"mqtt.password_env: the environment variable {m.password_env} is not set "
            "(with systemd: Environment= or EnvironmentFile= in a drop-in)"
        )
    if cfg.vision.models_dir is not None and not cfg.vision.models_dir.is_dir():
        problems.append(f"vision.models_dir: {cfg.vision.models_dir} is not a directory (run 'kiosk models install')")
    return problems
