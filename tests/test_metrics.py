"""`kiosk run` with ``service.metrics_listen``: the Prometheus text format parsed, a real Prometheus
server (Debian's ``prometheus``) scraping it on loopback, counters that survive a reload, and an
address that cannot be bound (the daemon runs on, and says so)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.broker import free_port
from tests.conftest import SAMPLE
from tests.daemonproc import Feed, daemon_log, running_daemon, write_config
from tests.helpers import wait_for

CATEGORY_WORDS = ("emotion", "happy", "angry", "neutral", "age_band", "gender", "female", "male", "zone")


def face_clip(path: Path) -> Path:
    """3 s of the sample photo's face, then 4 s of an empty scene, at 10 fps: a face that comes and
    goes, so visits end while the daemon runs."""
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is missing: run `kiosk models install --samples` (the README's commands do)")
    face = cv2.resize(cv2.imread(str(SAMPLE)), (360, 360), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[60:420, 140:500] = face
    empty = np.full((480, 640, 3), 90, np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for i in range(70):
        writer.write(frame if i < 30 else empty)
    writer.release()
    return path


def scrape(port: int, path: str = "/metrics", method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of the exposition, by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


def metrics_config(tmp_path: Path, broker_port: int, clip: Path, listen: str, **extra: str) -> Path:
    return write_config(
        tmp_path / "kiosk.yaml",
        tmp_path,
        broker_port,
        clip,
        service=f"  error_log_interval_s: 0\n  metrics_listen: '{listen}'\n",
        visits="  min_dwell_s: 1.0\n",
        **extra,
    )


class Prometheus:
    """Debian's Prometheus server on a free loopback port, scraping ``target`` every second."""

    def __init__(self, workdir: Path, target: str) -> None:
        exe = shutil.which("prometheus")
        if exe is None:
            pytest.skip("the prometheus server is not installed (scripts/test installs Debian's prometheus package)")
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            f"scrape_configs:\n  - job_name: kiosk\n    static_configs:\n      - targets: ['{target}']\n"
        )
        self.port = free_port()
        self.log = open(workdir / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            [
                exe,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.workdir = workdir

    def api(self, path: str) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/{path}", timeout=5) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def query(self, expr: str) -> float | None:
        from urllib.parse import quote

        got = self.api(f"query?query={quote(expr)}")
        if not got or got.get("status") != "success" or not got["data"]["result"]:
            return None
        return float(got["data"]["result"][0]["value"][1])

    def target(self) -> dict | None:
        got = self.api("targets")
        active = (got or {}).get("data", {}).get("activeTargets", [])
        return active[0] if active else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def test_metrics_are_served_parsed_scraped_by_prometheus_and_survive_a_reload(tmp_path, broker):
    port = free_port()
    cfg = metrics_config(tmp_path, broker.port, face_clip(tmp_path / "faces.avi"), f"127.0.0.1:{port}")
    prom = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{port}")
    try:
        with Feed(broker.port) as feed, running_daemon(cfg) as proc:
            # the face came and went at least once: a visit ended and a summary went out
            assert wait_for(lambda: (value(scrape(port)[1], "kiosk_visits_total") or 0) >= 1, 90), daemon_log(cfg)[
                -3000:
            ]
            assert wait_for(lambda: (value(scrape(port)[1], "kiosk_summaries_published_total") or 0) >= 1, 30)
            status, text = scrape(port)
            assert status == 200
            s = samples(text)  # parses as the Prometheus text format
            names = {name for name, _ in s}
            for name in (
                "kiosk_frames_analysed_total",
                "kiosk_frames_dropped_total",
                "kiosk_faces_total",
                "kiosk_passers_by_total",
                "kiosk_analysis_frames_per_second",
                "kiosk_outbox_backlog_summaries",
                "kiosk_summaries_dropped_total",
                "kiosk_disk_free_bytes",
                "kiosk_uptime_seconds",
                "kiosk_problem",
                "kiosk_build_info",
            ):
                assert name in names, name
            assert value(text, "kiosk_faces_total") >= 10
            assert value(text, "kiosk_analysis_frames_per_second") > 0
            assert value(text, "kiosk_camera_state", kiosk_camera_state="online") == 1
            assert value(text, "kiosk_camera_state", kiosk_camera_state="offline") == 0
            assert value(text, "kiosk_publisher_state", kiosk_publisher_state="connected") == 1
            assert value(text, "kiosk_disk_free_bytes") > 0
            assert value(text, "kiosk_problem") == 0
            assert value(text, "kiosk_thread_restarts_total", thread="vision") == 0
            for stage in ("detect", "landmarks", "emotion", "age", "gender", "frame"):
                assert value(text, "kiosk_stage_seconds_count", stage=stage) > 0, stage
                assert value(text, "kiosk_stage_seconds_sum", stage=stage) > 0, stage
            # nothing about a category or a person: no label or name that carries one
            for name, labels in s:
                assert not any(w in name for w in CATEGORY_WORDS), name
                assert {k for k, _ in labels} <= {
                    "stage",
                    "thread",
                    "le",
                    "kiosk_camera_state",
                    "kiosk_publisher_state",
                    "version",
                    "store_id",
                    "device_id",
                    "config_hash",
                }, (name, labels)
            # only GET/HEAD /metrics
            assert scrape(port, "/other")[0] == 404
            assert scrape(port, "/metrics", "POST")[0] == 405
            assert scrape(port, "/metrics", "HEAD") == (200, "")

            # the real Prometheus scraped it: target up, no error, the values queryable
            assert wait_for(lambda: (prom.query("kiosk_frames_analysed_total") or 0) > 0, 60), (
                prom.target(),
                (prom.workdir / "prometheus.log").read_text()[-2000:],
            )
            target = prom.target()
            assert target["health"] == "up" and target["lastError"] == "", target
            assert prom.query('up{job="kiosk"}') == 1
            assert (prom.query('kiosk_stage_seconds_count{stage="detect"}') or 0) > 0
            assert prom.query('kiosk_camera_state{kiosk_camera_state="online"}') == 1

            # a reload (SIGHUP) restarts the pipeline: no counter goes back
            before = value(scrape(port)[1], "kiosk_frames_analysed_total")
            hash_before = feed.last("status")["config_hash"]
            cfg.write_text(cfg.read_text() + "content:\n  default: spring\n")
            proc.send_signal(signal.SIGHUP)
            assert wait_for(lambda: feed.last("status")["config_hash"] != hash_before, 30), daemon_log(cfg)[-2000:]
            after_reload = []
            for _ in range(3):
                after_reload.append(value(scrape(port)[1], "kiosk_frames_analysed_total"))
            assert all(v is not None and v >= before for v in after_reload), (before, after_reload)
            assert wait_for(lambda: (value(scrape(port)[1], "kiosk_frames_analysed_total") or 0) > before + 5, 30)
            assert prom.query("resets(kiosk_frames_analysed_total[5m])") == 0
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        assert scrape(port)[0] == 0  # the endpoint ends with the daemon
        assert "Traceback" not in daemon_log(cfg)
    finally:
        prom.stop()


def test_an_address_that_cannot_be_bound_is_reported_and_the_daemon_runs_on(tmp_path, broker):
    from tests.helpers import make_clip

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        cfg = metrics_config(tmp_path, broker.port, make_clip(tmp_path / "clip.avi"), f"127.0.0.1:{port}")
        with Feed(broker.port) as feed, running_daemon(cfg) as proc:
            assert wait_for(lambda: "metrics_unavailable" in ((feed.last("status") or {}).get("error") or ""), 30), (
                daemon_log(cfg)[-2000:]
            )
            error = feed.last("status")["error"]
            assert f"127.0.0.1:{port}" in error and "service.metrics_listen" in error, error
            n = len(feed.msgs["summary"])
            assert wait_for(lambda: len(feed.msgs["summary"]) >= n + 2, 30)  # the analysis goes on
            # the fix: another port, applied by a reload; the error clears
            other = free_port()
            cfg.write_text(cfg.read_text().replace(f"127.0.0.1:{port}", f"127.0.0.1:{other}"))
            proc.send_signal(signal.SIGHUP)
            assert wait_for(lambda: scrape(other)[0] == 200, 30), daemon_log(cfg)[-2000:]
            assert wait_for(lambda: "metrics_unavailable" not in (feed.last("status").get("error") or ""), 30)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        assert "cannot serve metrics on" in daemon_log(cfg)
    finally:
        holder.close()
