"""Prometheus metrics for ``kiosk run`` when ``service.metrics_listen`` is set (off by default).

What is served: counters of frames, faces, visits and passers-by, the analysis rate, a latency
histogram per model stage and per frame, the outbox backlog and the summaries dropped, the
camera's and the publisher's state, disk free, CPU temperature and thread restarts. No metric
carries a category (emotion, age band, gender, zone) or anything about one person: the
demographic and emotion counts leave the device only in k-anonymised summaries. The counters do
show, at the scrape interval, *when* faces were in front of the camera, so the endpoint belongs on
loopback or a management network (the README says so).

The registry is the daemon's own (no process-global state). Counters and the histogram live across
config reloads: the daemon adds the counts of a runtime it replaces to what it carries, so a reload
never makes a counter go back. The HTTP server is one thread (``kiosk-metrics``) serving one request
at a time with a socket timeout: a slow or hostile client can delay a scrape, never the daemon.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger("kiosk.metrics")

STAGES = ("detect", "landmarks", "emotion", "age", "gender", "age_gender", "frame")
# seconds: a Pi 4 runs the detector in about 10-20 ms, a whole frame with 5 faces in about 50-100 ms
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)
CAMERA_STATES = ("starting", "online", "offline", "ended")
PUBLISHER_STATES = ("connected", "disconnected", "disabled")

# counters kept by one runtime (summed over the runtimes of a daemon's life): name -> help
RUNTIME_COUNTERS = {
    "frames_analysed": "Frames analysed (vision, tracking, visits).",
    "frames_dropped": "Frames not analysed: over camera.fps, replaced before the analysis took them, or unreadable.",
    "frames_failed": "Frames whose analysis raised an error (logged).",
    "faces": "Faces in analysed frames, summed over frames (a face in 10 frames counts 10).",
    "faces_excluded": "Faces dropped in exclusion zones before any analysis.",
    "visits": "Visits ended (in a zone for at least visits.min_dwell_s).",
    "passers_by": "Passers-by ended (in a zone for less than visits.min_dwell_s).",
    "summaries_published": "Summaries the broker acknowledged.",
    "mqtt_connects": "Connections the broker accepted.",
}
THREADS = ("vision", "store", "capture")


@dataclass(frozen=True)
class MetricsSnapshot:
    """What one scrape reports; built by the runtime (its counters) and the daemon (the rest)."""

    counters: Mapping[str, int] = field(default_factory=dict)  # RUNTIME_COUNTERS, this runtime's
    thread_restarts: Mapping[str, int] = field(default_factory=dict)  # THREADS
    summaries_dropped: int | None = None  # over the database's life (it is kept there)
    backlog_summaries: int | None = None
    backlog_bytes: int | None = None
    frames_per_s: float = 0.0
    camera_state: str = "starting"
    publisher_state: str = "disabled"
    disk_free_bytes: int | None = None
    cpu_temp_c: float | None = None
    clock_synced: bool = True
    uptime_s: float = 0.0
    problem: bool = False
    info: Mapping[str, str] = field(default_factory=dict)


class DaemonMetrics:
    """The daemon's registry: the stage histogram (fed by the vision thread) and a collector that
    reads a :class:`MetricsSnapshot` at each scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.stage_seconds = Histogram(
            "kiosk_stage_seconds",
            "Wall time of one model stage on one face (detect: one frame), or of one whole frame.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children = {s: self.stage_seconds.labels(stage=s) for s in STAGES}
        self._carried: dict[str, int] = dict.fromkeys(RUNTIME_COUNTERS, 0)
        self._carried_restarts: dict[str, int] = dict.fromkeys(THREADS, 0)
        self._source: Callable[[], MetricsSnapshot] | None = None
        self._lock = threading.Lock()
        self._failed_scrapes = 0
        self.registry.register(_SnapshotCollector(self))

    def observe_stage(self, stage: str, seconds: float) -> None:
        child = self._children.get(stage)
        if child is not None:
            child.observe(seconds)

    def serve(self, source: Callable[[], MetricsSnapshot]) -> None:
        """Read ``source`` at each scrape (the daemon's current runtime)."""
        with self._lock:
            self._source = source

    def carry(self, last: MetricsSnapshot) -> None:
        """A runtime is replaced (config reload): its final counts are kept."""
        with self._lock:
            for k in self._carried:
                self._carried[k] += int(last.counters.get(k, 0))
            for k in self._carried_restarts:
                self._carried_restarts[k] += int(last.thread_restarts.get(k, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def _metrics(self) -> Iterator[Metric]:
        with self._lock:
            source = self._source
            carried, carried_restarts = dict(self._carried), dict(self._carried_restarts)
        if source is None:
            return
        try:
            snap = source()
        except Exception:  # a scrape must never fail the daemon; it shows as missing series
            self._failed_scrapes += 1
            if self._failed_scrapes in (1, 10, 100) or self._failed_scrapes % 1000 == 0:
                log.exception("metrics could not be read (%d times)", self._failed_scrapes)
            return
        for name, doc in RUNTIME_COUNTERS.items():
            yield CounterMetricFamily(f"kiosk_{name}", doc, value=carried[name] + int(snap.counters.get(name, 0)))
        restarts = CounterMetricFamily(
            "kiosk_thread_restarts",
            "Threads restarted after a failure (vision, store) or a camera stuck in a read (capture).",
            labels=["thread"],
        )
        for t in THREADS:
            restarts.add_metric([t], carried_restarts[t] + int(snap.thread_restarts.get(t, 0)))
        yield restarts
        if snap.summaries_dropped is not None:
            yield CounterMetricFamily(
                "kiosk_summaries_dropped",
                "Summaries dropped to keep the outbox inside its bounds (over the database's life).",
                value=snap.summaries_dropped,
            )
        gauges: list[tuple[str, str, float | int | None]] = [
            ("analysis_frames_per_second", "Frames analysed per second over the last 10 s.", snap.frames_per_s),
            ("outbox_backlog_summaries", "Summaries waiting in the outbox to be sent.", snap.backlog_summaries),
            ("outbox_backlog_bytes", "Bytes of the summaries waiting in the outbox.", snap.backlog_bytes),
            ("disk_free_bytes", "Free space on the database's file system.", snap.disk_free_bytes),
            ("cpu_temperature_celsius", "CPU temperature (thermal zone 0).", snap.cpu_temp_c),
            ("clock_synced", "1 when the system clock is synchronised (NTP), else 0.", int(snap.clock_synced)),
            ("uptime_seconds", "Seconds since kiosk started.", snap.uptime_s),
            (
                "problem",
                "1 while the device's status carries an error (camera offline, store, thread, metrics), else 0.",
                int(snap.problem),
            ),
        ]
        for name, doc, value in gauges:
            if value is not None:  # unknown here (no thermal zone, no database yet): left out, not zero
                yield GaugeMetricFamily(f"kiosk_{name}", doc, value=value)
        yield StateSetMetricFamily(
            "kiosk_camera_state",
            "The camera's state.",
            value={s: snap.camera_state == s for s in CAMERA_STATES},
        )
        yield StateSetMetricFamily(
            "kiosk_publisher_state",
            "The MQTT link: connected, disconnected (summaries wait in the outbox) or disabled (mqtt.enabled: false).",
            value={s: snap.publisher_state == s for s in PUBLISHER_STATES},
        )
        if snap.info:
            yield InfoMetricFamily("kiosk_build", "The running kiosk.", value=dict(snap.info))


class _SnapshotCollector:
    def __init__(self, metrics: DaemonMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics._metrics()


class _QuietHandler(WSGIRequestHandler):
    timeout = 5  # seconds a client may take to send its request

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        log.debug("metrics request: " + format, *args)


class _Server(WSGIServer):
    request_queue_size = 8


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """``GET /metrics`` on ``host:port`` in a thread named ``kiosk-metrics``; everything else 404/405."""

    def __init__(self, metrics: DaemonMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host, self.port = host, port
        self.scrapes = 0
        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = make_server(host, port, self._app, server_class=server_class, handler_class=_QuietHandler)
        except OSError as exc:
            raise OSError(
                f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}): another program holds the "
                "port, or the address is not one of this machine's; change service.metrics_listen"
            ) from exc
        self.port = self._server.server_port  # the port given, or the one chosen for port 0
        self._thread = threading.Thread(target=self._serve, name="kiosk-metrics", daemon=True)

    def _app(self, environ: dict, start_response: Callable) -> list[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"kiosk serves /metrics only\n"]
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")])
            return [b"GET /metrics\n"]
        body = self.metrics.render()
        self.scrapes += 1
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [] if method == "HEAD" else [body]

    def _serve(self) -> None:
        while True:
            try:
                self._server.serve_forever(poll_interval=0.5)
                return
            except Exception:  # one broken request must not end the endpoint
                log.exception("metrics server failed; serving again")
                time.sleep(1.0)

    def start(self) -> None:
        self._thread.start()
        log.info("metrics at http://%s:%d/metrics", self.host if ":" not in self.host else f"[{self.host}]", self.port)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
