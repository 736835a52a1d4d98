"""``kiosk setup``'s web server: bottle (one file, no dependency: 55 ms to import and 13 MB on this
machine, against Flask's 130 ms, 22 MB and five packages) on the standard library's threaded WSGI
server. Binds 127.0.0.1 unless told otherwise; any other address needs the token printed at start.
Requests whose Host is not this server (DNS rebinding) or, for a POST, that are not JSON from this
page's origin (cross-site requests) are refused. Stops after ``idle_s`` without a request.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import secrets
import socketserver
import threading
import time
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from kiosk.config import KioskConfig
from kiosk.setup.advice import DEFAULT_HFOV_DEG, FaceSizes, SizeOptions, placement_advice
from kiosk.setup.preview import Preview
from kiosk.setup.zonefile import MAX_REQUEST_BYTES, parse_update, save_zones

log = logging.getLogger("kiosk.setup")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def zones_of(cfg: KioskConfig) -> dict:
    """The config's zones as the page edits them."""
    return {
        "zones": [z.model_dump(exclude_none=True) for z in cfg.zones],
        "exclusion_zones": [z.model_dump(exclude_none=True) for z in cfg.exclusion_zones],
    }


class SetupSite:
    """The page, its state and its one write (the zones)."""

    def __init__(
        self,
        config_path: Path,
        cfg: KioskConfig,
        preview: Preview,
        sizes: FaceSizes,
        token: str | None,
        hfov_deg: float = DEFAULT_HFOV_DEG,
    ):
        self.config_path = config_path
        self.cfg = cfg
        self.preview = preview
        self.sizes = sizes
        self.token = token
        self.hfov_deg = hfov_deg  # the lens's horizontal field of view (placement advice: the reach)
        self.last_request = time.monotonic()
        self.allowed_hosts: set[str] = set()
        self._save_lock = threading.Lock()

    def app(self):
        import bottle

        app = bottle.Bottle()
        app.config["autojson"] = False

        @app.hook("before_request")
        def _guard() -> None:
            self.last_request = time.monotonic()
            r = bottle.request
            host = (r.get_header("Host") or "").lower()
            if self.allowed_hosts and host not in self.allowed_hosts:
                bottle.abort(421, "kiosk setup answers only to its own address")
            if self.token is not None:
                given = r.query.get("token") or r.get_header("X-Kiosk-Token") or ""
                if not hmac.compare_digest(given.encode(), self.token.encode()):
                    bottle.abort(403, "this page needs the token that kiosk setup printed when it started (?token=...)")
            if r.method == "POST":
                origin = r.get_header("Origin")
                if origin is not None and origin.lower().split("://", 1)[-1] != host:
                    bottle.abort(403, "cross-site request refused")
                if (r.content_type or "").split(";")[0].strip() != "application/json":
                    bottle.abort(415, "send application/json")

        @app.hook("after_request")
        def _headers() -> None:
            bottle.response.set_header("Cache-Control", "no-store")
            bottle.response.set_header("X-Content-Type-Options", "nosniff")
            bottle.response.set_header("Referrer-Policy", "no-referrer")
            bottle.response.set_header(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                "connect-src 'self'; frame-ancestors 'none'",
            )

        @app.get("/")
        def page() -> str:
            bottle.response.content_type = "text/html; charset=utf-8"
            return resources.files("kiosk.setup").joinpath("page.html").read_text(encoding="utf-8")

        @app.get("/frame.jpg")
        def frame() -> bytes:
            latest = self.preview.latest
            if latest is None:
                bottle.abort(503, "no frame yet")
            bottle.response.content_type = "image/jpeg"
            bottle.response.set_header("X-Frame-Seq", str(latest.seq))
            bottle.response.set_header("X-Frame-Index", str(latest.index))
            return latest.jpeg

        @app.get("/api/state")
        def state() -> str:
            latest = self.preview.latest
            with self._save_lock:
                cfg = self.cfg
            body = {
                "frame": None
                if latest is None
                else {
                    "seq": latest.seq,
                    "index": latest.index,
                    "width": latest.width,
                    "height": latest.height,
                    "analysed_ms": latest.analysed_ms,
                    "faces": [asdict(f) for f in latest.faces],
                },
                "camera": self.preview.camera(),
                "advice": placement_advice(
                    self.sizes.recent(), SizeOptions.of(cfg, self.hfov_deg, latest.width if latest else None)
                ),
                "config": {
                    "path": str(self.config_path),
                    "writable": os.access(self.config_path, os.W_OK),
                    **zones_of(cfg),
                },
            }
            bottle.response.content_type = "application/json"
            return json.dumps(body)

        @app.post("/api/zones")
        def zones() -> str:
            length = bottle.request.content_length
            if length > MAX_REQUEST_BYTES:  # refused unread (bottle would spool a large body to a file)
                bottle.abort(413, f"over {MAX_REQUEST_BYTES // 1024} KiB")
            update = parse_update(bottle.request.environ["wsgi.input"].read(max(0, length)))
            bottle.response.content_type = "application/json"
            if isinstance(update, list):
                bottle.response.status = 400
                return json.dumps({"ok": False, "written": False, "message": "not saved", "errors": update})
            with self._save_lock:
                result = save_zones(self.config_path, update)
                if result.config is not None:
                    self.cfg = result.config
                    self.preview.set_config(result.config)
            log.info("zones: %s", result.message)
            return json.dumps(
                {
                    "ok": result.ok,
                    "written": result.written,
                    "message": result.message,
                    "errors": result.errors,
                    "snippet": result.snippet,
                }
            )

        return app


class _Handler(WSGIRequestHandler):
    timeout = 10

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        log.debug("setup request: " + format, *args)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 16


class _ThreadingServer6(_ThreadingServer):
    import socket as _socket

    address_family = _socket.AF_INET6


def serve(
    config_path: Path,
    cfg: KioskConfig,
    host: str,
    port: int,
    idle_s: float,
    stop: threading.Event,
    announce=print,
    hfov_deg: float = DEFAULT_HFOV_DEG,
) -> int:
    """Run the page until ``stop`` is set or nobody has asked for anything for ``idle_s``."""
    token = None if is_loopback(host) else secrets.token_urlsafe(18)
    sizes = FaceSizes()
    preview = Preview(cfg, sizes)
    site = SetupSite(config_path, cfg, preview, sizes, token, hfov_deg)
    server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
    try:
        server = make_server(host, port, site.app(), server_class=server_class, handler_class=_Handler)
    except OSError as exc:
        preview.pipeline.close()
        raise OSError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): another program holds the port, or the "
            "address is not one of this machine's; choose another with --listen"
        ) from exc
    port = server.server_port
    shown = f"[{host}]" if ":" in host else host
    if token is None:  # loopback: only a page of this address (DNS rebinding); elsewhere the token guards
        site.allowed_hosts = {f"{n}:{port}" for n in (shown, "localhost", "127.0.0.1", "[::1]")}
    preview.start()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="kiosk-setup-http", daemon=True
    )
    thread.start()
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    announce(
        f"kiosk setup: open {url} (stops after {idle_s / 60:g} minutes without a request; Ctrl-C stops it now). "
        "Nothing is recorded; every face in the live view is blurred."
    )
    try:
        while not stop.wait(1.0):
            if time.monotonic() - site.last_request > idle_s:
                announce(f"kiosk setup: no request for {idle_s / 60:g} minutes; stopping")
                break
    finally:
        server.shutdown()
        server.server_close()
        preview.stop()
    return 0
