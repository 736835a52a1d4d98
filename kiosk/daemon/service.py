"""The daemon's service loop (``kiosk run``): signals, systemd notifications (ready, status, the
watchdog fed only while the runtime makes progress), problems announced in the status, and config
reloads on SIGHUP that change nothing unless the new config and its models load. One
:class:`~kiosk.daemon.runtime.Runtime` at a time."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

from kiosk.config import KioskConfig
from kiosk.config.schema import parse_listen
from kiosk.daemon.metrics import DaemonMetrics, MetricsServer, MetricsSnapshot
from kiosk.daemon.runtime import Runtime
from kiosk.vision.pipeline import VisionPipeline
from kiosk.wiring import config_hash, open_pipeline

log = logging.getLogger("kiosk.daemon")


class Daemon:
    """``kiosk run``: signals, systemd notifications, config reload; one :class:`Runtime` at a time."""

    def __init__(self, config_path: Path, cfg: KioskConfig, notifier=None) -> None:
        from kiosk.clock import clock_synced
        from kiosk.daemon.sdnotify import Notifier

        self.config_path = config_path
        self.cfg = cfg
        self.notifier = notifier or Notifier()
        self.clock_synced = clock_synced
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self.runtime: Runtime | None = None
        self.problem: str | None = None  # what the status says is wrong now (None: nothing)
        self.metrics = DaemonMetrics()  # cheap; served only when service.metrics_listen is set
        self.metrics.serve(self._metrics_snapshot)
        self.metrics_server: MetricsServer | None = None
        self.metrics_problem: str | None = None

    def _signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())

    def _build(self, cfg: KioskConfig, pipeline: VisionPipeline | None = None) -> tuple[VisionPipeline, Runtime]:
        if pipeline is None:
            pipeline = open_pipeline(cfg.vision)  # the models: once per config
        runtime = Runtime(
            cfg, pipeline, started=self.started, clock_synced=self.clock_synced, stage_timer=self.metrics.observe_stage
        )
        runtime.start()
        self.runtime = runtime
        runtime.capture.first_attempt.wait(5.0)
        return pipeline, runtime

    def _metrics_snapshot(self) -> MetricsSnapshot:
        runtime = self.runtime
        if runtime is None:
            return MetricsSnapshot(uptime_s=round(time.monotonic() - self.started, 1))
        return runtime.metrics_snapshot(problem=self.problem is not None)

    def _serve_metrics(self, listen: str | None) -> None:
        """Start, move or stop the metrics endpoint for ``service.metrics_listen``. An address that
        cannot be bound is an error in the log and the status; the daemon goes on without metrics."""
        address = parse_listen(listen) if listen else None
        server = self.metrics_server
        if server is not None and address == (server.host, server.port):
            return
        if server is not None:
            server.stop()
            self.metrics_server = None
        self.metrics_problem = None
        if address is None:
            return
        try:
            self.metrics_server = MetricsServer(self.metrics, *address)
        except OSError as exc:
            self.metrics_problem = f"metrics_unavailable: {exc}"
            log.error("%s; kiosk runs on without its metrics", exc)
            return
        self.metrics_server.start()

    def run(self) -> int:
        self._signals()
        pipeline, runtime = self._build(self.cfg)
        self._serve_metrics(self.cfg.service.metrics_listen)
        self.notifier.ready(runtime.status_line())
        log.info(
            "kiosk running: camera %s, device %s, config %s",
            runtime.capture.state,
            self.cfg.mqtt.device_id,
            config_hash(self.cfg),
        )
        watchdog = self.notifier.watchdog_s
        tick = min(1.0, watchdog / 3) if watchdog else 1.0
        next_status = 0.0
        last_problem = None
        while not self._stop.wait(tick):
            if runtime.capture.stuck():
                runtime.replace_stuck_capture()
            if watchdog and runtime.healthy(watchdog / 2):
                self.notifier.watchdog()  # only while frames flow or the camera thread is alive
            camera = (
                None
                if runtime.capture.state in ("starting", "online", "ended")
                else (f"camera_offline: {runtime.capture.error or 'no frame within camera.read_timeout_s'}")
            )
            problem = (
                "; ".join(p for p in (camera, runtime.store.problem, runtime.worker_problem, self.metrics_problem) if p)
                or None
            )
            self.problem = problem
            if problem != last_problem and runtime.link is not None:
                last_problem = runtime.link.problem = problem
                runtime.link.announce()
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + 5
                self.notifier.status(runtime.status_line())
            if self._reload.is_set():
                self._reload.clear()
                pipeline, runtime = self._reload_config(pipeline, runtime)
                last_problem = None
        self.notifier.stopping()
        log.info("stopping")
        runtime.stop(self.cfg.service.stop_timeout_s)
        pipeline.close()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        log.info("stopped")
        return 0

    @staticmethod
    def _refuse_reload(runtime: Runtime, kept: str, detail: str, shown: str) -> None:
        """A reload that is refused changes nothing: say so in the log and in the status."""
        log.error("config reload refused, still running on %s: %s", kept, detail)
        if runtime.link is not None:
            runtime.link.problem = f"config reload refused: {shown}"[:300]
            runtime.link.announce()

    def _reload_config(self, pipeline: VisionPipeline, runtime: Runtime) -> tuple[VisionPipeline, Runtime]:
        from kiosk.config import ConfigError, environment_problems, load_config

        try:
            cfg = load_config(self.config_path)
            problems = environment_problems(cfg)
            if problems:
                raise ConfigError("\n".join(problems))
        except ConfigError as exc:
            self._refuse_reload(runtime, "the previous config", str(exc).replace("\n", "; "), str(exc).splitlines()[0])
            return pipeline, runtime
        # the new models are loaded (each checked against its hash) while the old pipeline still runs:
        # a model file swapped or cut short refuses the reload and changes nothing
        try:
            new_pipeline = open_pipeline(cfg.vision)
        except Exception as exc:
            self._refuse_reload(runtime, "the previous config and models", str(exc), str(exc))
            return pipeline, runtime
        self.notifier.reloading()
        log.info("config reloaded (%s -> %s): restarting the pipeline", config_hash(self.cfg), config_hash(cfg))
        runtime.stop(self.cfg.service.stop_timeout_s, offline=False)
        self.metrics.carry(runtime.metrics_snapshot())
        self.runtime = None
        try:
            new_pipeline, runtime = self._build(cfg, new_pipeline)
        except Exception as exc:  # the database or camera the new config names: back to the old config
            log.error("the reloaded config could not start (%s); going back to the previous config", exc)
            new_pipeline.close()
            pipeline, runtime = self._build(self.cfg, pipeline)
            if runtime.link is not None:
                runtime.link.problem = f"config reload failed: {exc}"[:300]
            self.notifier.ready(runtime.status_line())
            return pipeline, runtime
        pipeline.close()
        pipeline = new_pipeline
        self.cfg = cfg
        self._serve_metrics(cfg.service.metrics_listen)
        self.notifier.ready(runtime.status_line())
        return pipeline, runtime
