"""The daemon's runtime: one config's worth of camera -> vision -> tracking -> visits/aggregate ->
store -> publish, and the threads that run it.

Its parts are built by :mod:`kiosk.wiring` (the one place a config becomes parts); every
other module gets its own config section and knows nothing of the modules after it. This
module owns the daemon's threads:

- ``kiosk-capture``: camera reads into a one-frame slot (kiosk.camera.capture);
- ``kiosk-vision``: vision, tracking, visits, aggregates; hands deltas to the store thread
  and never waits on the disk or the network;
- ``kiosk-store`` (kiosk.store.worker, which runs and is tested without any model): writes
  the deltas (one transaction per flush), closes periods into the outbox, watches the wall clock;
- ``kiosk-publisher`` (kiosk.publishing.link) and paho's network thread.

The main thread runs :mod:`kiosk.daemon.service` (signals, systemd notifications, config reloads).
"""

from __future__ import annotations

import logging
import shutil
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from kiosk.config import KioskConfig
from kiosk.vision.pipeline import VisionPipeline
from kiosk.wiring import VisitChain, camera_options, config_hash, device_link, open_outbox

log = logging.getLogger("kiosk.daemon")


def cpu_temperature() -> float | None:
    try:
        return round(int(Path("/sys/class/thermal/thermal_zone0/temp").read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def disk_free(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path.parent if path.parent.exists() else Path(".")).free
    except OSError:
        return None


class Runtime:
    """One configuration's worth of running parts and their threads; built, run, then torn down
    (at stop, or to apply a reloaded config)."""

    def __init__(
        self,
        cfg: KioskConfig,
        pipeline: VisionPipeline,
        *,
        started: float,
        clock_synced,
        stage_timer: Callable[[str, float], None] | None = None,
    ) -> None:
        from kiosk.camera.capture import Capture
        from kiosk.periods import PeriodCloser
        from kiosk.store.db import open_db
        from kiosk.store.worker import StoreWorker
        from kiosk.summary import context_from_config

        self.cfg = cfg
        self.started = started
        self.clock_synced = clock_synced
        self.chain = VisitChain(cfg, pipeline)
        self.stage_timer = stage_timer  # (stage, seconds): the metrics' latency histogram
        pipeline.stage_timer = stage_timer
        self.capture = Capture(camera_options(cfg.camera))
        self.capture_replacements = 0
        # two connections: the store thread's and the publisher's (SQLite WAL lets them work side by side)
        self.store_db = open_db(cfg.store.path)
        self.outbox = open_outbox(cfg, self.store_db)
        ctx = context_from_config(cfg, pipeline.model_versions)
        # a visit reaches the store by then: its track ends (a wait for the face included), then a flush
        grace = cfg.tracking.visit_latency_s + 2 * cfg.store.flush_interval_s + 1.0
        self.store = StoreWorker(
            self.store_db,
            PeriodCloser(self.store_db, self.outbox, ctx, grace, clock_synced),
            path=cfg.store.path,
            period_s=cfg.store.period_s,
            retention_days=cfg.store.retention_days,
            clock_jump_s=cfg.service.clock_jump_s,
            request_flush=self._request_flush,
        )
        self.link = None
        if cfg.mqtt.enabled:
            self.link = device_link(
                cfg,
                open_outbox(cfg),
                models=pipeline.model_versions,
                stats=self.stats,
                commands={"content": self._content_command},
            )
        self._vision_stop = threading.Event()
        self._store_stop = threading.Event()
        self._flush_now = threading.Event()
        self.vision_heartbeat = time.monotonic()
        self.frames_skipped = 0  # over the fps cap
        self.frame_ms: deque[float] = deque(maxlen=200)
        self.frame_done: deque[float] = deque(maxlen=2048)  # when frames were analysed (the metrics' rate)
        self._metrics_lock = threading.Lock()
        self._stopped = False
        self._metrics_outbox = None  # a connection of the metrics' own, opened at the first scrape
        self._begun = time.monotonic()  # this runtime's start (``started`` is the daemon's, across reloads)
        self._stats_last = (self._begun, 0, 0)
        self.failed_frames = 0  # frames the analysis raised on (logged, rate-limited)
        self.worker_errors: dict[str, int] = {"vision": 0, "store": 0}
        self.worker_problem: str | None = None  # the last thread failure (and how many), shown in status
        self._threads = [
            threading.Thread(
                target=self._supervised("vision", self._vision_loop, self._vision_stop),
                name="kiosk-vision",
                daemon=True,
            ),
            threading.Thread(
                target=self._supervised("store", lambda: self.store.run(self._store_stop), self._store_stop),
                name="kiosk-store",
                daemon=True,
            ),
        ]

    def _supervised(self, name: str, loop: Callable[[], None], stop: threading.Event) -> Callable[[], None]:
        """``loop`` run until it returns (told to stop); an exception that escapes it is logged, counted
        (stats ``worker_errors``), shown in status, and the loop is started again after a backoff
        (0.5 s doubling to 30 s). While it is down its heartbeat stops, so the watchdog is not fed."""

        def run() -> None:
            failures = 0
            while True:
                try:
                    loop()
                    return
                except Exception as exc:
                    failures += 1
                    self.worker_errors[name] += 1
                    self.worker_problem = f"thread_failed: {name}: {exc!r} ({failures}x; restarted)"[:300]
                    log.exception("the %s thread failed (%d times); restarting it", name, failures)
                    if stop.wait(min(30.0, 0.5 * 2 ** min(failures - 1, 6))):
                        return

        return run

    # --- commands and stats (called from the publisher thread) ---------------------------------

    def _content_command(self, payload: dict) -> str:
        label = payload["label"]  # validated by kiosk.payloads.commands.Content: 1-200 characters, or null
        known = self.cfg.content.all_labels()
        if label is not None and label not in known:
            raise ValueError(
                f"label {label!r} is not in the config ({', '.join(map(repr, known))}); add it to "
                "content.labels so that every summary lists it (a label that appears only when "
                "someone came would tell that someone did)"
            )
        self.chain.builder.content.override(label)
        return f"content label set to {label!r}" if label else "content label override cleared (schedule applies)"

    def stats(self) -> dict:
        now = time.monotonic()
        t0, frames0, faces0 = self._stats_last
        frames, faces = self.chain.frames, self.chain.faces
        self._stats_last = (now, frames, faces)
        dt_s = max(1e-3, now - t0)
        times = list(self.frame_ms)
        return {
            "uptime_s": round(now - self.started, 1),
            "frames_per_s": round((frames - frames0) / dt_s, 2),
            "faces_per_s": round((faces - faces0) / dt_s, 2),
            "inference_ms": round(statistics.median(times), 1) if times else None,
            "frames_dropped": self.capture.replaced + self.capture.bad + self.frames_skipped,
            "camera_state": self.capture.state,
            "disk_free_bytes": disk_free(self.cfg.store.path),
            "cpu_temp_c": cpu_temperature(),
            "clock_synced": self.clock_synced(),
            "clock_jumps": self.store.jumps.jumps,
            "worker_errors": dict(self.worker_errors),
        }

    def metrics_snapshot(self, *, problem: bool = False):
        """This runtime's part of a metrics scrape (called from the ``kiosk-metrics`` thread)."""
        from kiosk import __version__
        from kiosk.daemon.metrics import MetricsSnapshot

        now = time.monotonic()
        recent = [t for t in list(self.frame_done) if now - t <= 10.0]
        window = min(10.0, max(1e-3, now - self._begun))
        link = self.link
        counters = {
            "frames_analysed": self.chain.frames,
            "frames_dropped": self.capture.replaced + self.capture.bad + self.frames_skipped,
            "frames_failed": self.failed_frames,
            "faces": self.chain.faces,
            "faces_excluded": self.chain.excluded,
            "visits": self.chain.visits,
            "passers_by": self.chain.passers_by,
            "summaries_published": link.drainer.published if link is not None else 0,
            "mqtt_connects": link.client.connects if link is not None else 0,
        }
        backlog = dropped = None
        with self._metrics_lock:
            if not self._stopped:
                try:
                    if self._metrics_outbox is None:
                        self._metrics_outbox = open_outbox(self.cfg)
                    backlog = self._metrics_outbox.backlog()
                    dropped = self._metrics_outbox.dropped_total()
                except Exception as exc:  # the database unreadable: the other metrics still go out
                    log.warning("metrics: the outbox cannot be read: %s", exc)
        return MetricsSnapshot(
            counters=counters,
            thread_restarts={**self.worker_errors, "capture": self.capture_replacements},
            summaries_dropped=dropped,
            backlog_summaries=backlog[0] if backlog else None,
            backlog_bytes=backlog[1] if backlog else None,
            frames_per_s=round(len(recent) / window, 2),
            camera_state=self.capture.state,
            publisher_state="disabled" if link is None else ("connected" if link.client.connected else "disconnected"),
            disk_free_bytes=disk_free(self.cfg.store.path),
            cpu_temp_c=cpu_temperature(),
            clock_synced=bool(self.clock_synced()),
            uptime_s=round(now - self.started, 1),
            problem=problem,
            info={
                "version": __version__,
                "store_id": self.cfg.mqtt.store_id,
                "device_id": self.cfg.mqtt.device_id,
                "config_hash": config_hash(self.cfg),
            },
        )

    # --- threads -------------------------------------------------------------------------------

    def start(self) -> None:
        now = time.time()
        self.chain.aggregator.note_watching(now)
        self.store.begin(now, self.chain.drain())  # the period it starts in is on disk at once
        self.capture.start()
        for t in self._threads:
            t.start()
        if self.link is not None:
            self.link.start()

    def _vision_loop(self) -> None:
        min_gap = 1.0 / self.cfg.camera.fps
        flush_every = self.cfg.store.flush_interval_s
        next_flush = time.monotonic() + min(flush_every, 1.0)  # the first soon: a short life is recorded too
        last_t = None
        camera_state = "starting"
        while not self._vision_stop.is_set():
            self.vision_heartbeat = time.monotonic()
            self.chain.aggregator.note_watching(time.time())
            state = self.capture.state
            if state != camera_state:  # offline and back again: the period's coverage says so
                if (camera_state, state) != ("starting", "online"):
                    self.chain.aggregator.add_camera_change(time.time())
                camera_state = state
            frame = self.capture.wait_frame(0.5)
            if frame is not None:
                if last_t is not None and frame.t - last_t < min_gap * 0.9:
                    self.frames_skipped += 1
                else:
                    last_t = frame.t
                    started = time.perf_counter()
                    try:
                        self.chain.process(frame.image, frame.t, frame.wall)
                    except Exception:  # one bad frame must not end the analysis
                        self.failed_frames += 1
                        log.exception("frame %d could not be analysed", frame.index)
                    elapsed = time.perf_counter() - started
                    self.frame_ms.append(elapsed * 1000)
                    self.frame_done.append(time.monotonic())
                    if self.stage_timer is not None:
                        self.stage_timer("frame", elapsed)
            if time.monotonic() >= next_flush or self._flush_now.is_set():
                self._flush_now.clear()
                next_flush = time.monotonic() + flush_every
                self.store.submit(self.chain.drain())
        self.chain.finish()  # stop: every open track ends as a visit now
        self.store.submit(self.chain.drain())

    def _request_flush(self, timeout: float) -> bool:
        """The store thread asks for what the vision thread holds now (after a clock jump); True once handed over."""
        self._flush_now.set()
        deadline = time.monotonic() + timeout
        while self._flush_now.is_set() and time.monotonic() < deadline and not self._vision_stop.is_set():
            time.sleep(0.05)
        return not self._flush_now.is_set()

    MAX_CAPTURE_REPLACEMENTS = 3

    def replace_stuck_capture(self) -> bool:
        """A camera stuck in a read: start a fresh capture thread beside the stuck one, up to
        MAX_CAPTURE_REPLACEMENTS times; beyond that, stop feeding the watchdog so that systemd
        restarts the process (threads stuck in a driver cannot be ended from inside)."""
        from kiosk.camera.capture import Capture

        if self.capture_replacements >= self.MAX_CAPTURE_REPLACEMENTS:
            return False
        self.capture_replacements += 1
        log.warning(
            "camera stuck in a read for over %.0f s: reopening it in a new thread (%d of %d)",
            self.cfg.camera.read_timeout_s,
            self.capture_replacements,
            self.MAX_CAPTURE_REPLACEMENTS,
        )
        old, new = self.capture, Capture(camera_options(self.cfg.camera))
        old.abandon()
        new.start()
        self.capture = new  # the vision thread takes frames from the new one from its next wait
        if self.capture_replacements == self.MAX_CAPTURE_REPLACEMENTS:
            log.error(
                "camera stuck %d times: if it hangs again the watchdog is no longer fed and the service "
                "manager restarts kiosk",
                self.capture_replacements,
            )
        return True

    def healthy(self, window_s: float) -> bool:
        """Progress in the last ``window_s``: the vision and store threads looping, frames arriving or
        the camera thread alive (reopening), and the publisher thread looping (allowed a PUBACK's wait
        more: a slow broker is not a reason to restart the device)."""
        now = time.monotonic()
        vision_alive = now - self.vision_heartbeat < window_s
        store_alive = now - self.store.heartbeat < window_s
        capture_alive = now - self.capture.heartbeat < window_s or self.capture.state == "ended"
        publisher_alive = self.link is None or self.link.alive(window_s)
        return vision_alive and store_alive and capture_alive and publisher_alive

    def status_line(self) -> str:
        fps = self.chain.frames / max(1e-3, time.monotonic() - self._begun)
        backlog = self.outbox.backlog()[0]
        return f"camera {self.capture.state}, {fps:.1f} frames/s, {self.chain.faces} faces, outbox {backlog}"

    def stop(self, timeout: float, offline: bool = True) -> None:
        deadline = time.monotonic() + timeout
        self.capture.stop(min(1.0, timeout / 4))
        self._vision_stop.set()
        self._threads[0].join(max(0.1, deadline - time.monotonic() - 1.5))
        self._store_stop.set()
        self._threads[1].join(max(0.1, deadline - time.monotonic() - 1.0))
        if self.link is not None:
            if offline:
                # the summaries of the periods closed just now go out before the offline status
                sent = self.link.flush(deadline - time.monotonic() - 1.5)
                log.info("summaries closed at stop %s", "sent" if sent else "kept in the outbox for the next start")
                self.link.stop(timeout=max(0.2, min(1.0, deadline - time.monotonic())))
            else:
                self.link.stop(timeout=0.5, final_status=False)
            self.link.outbox.close()
        self.outbox.close()  # the store thread's connection
        with self._metrics_lock:
            self._stopped = True
            if self._metrics_outbox is not None:
                self._metrics_outbox.close()
