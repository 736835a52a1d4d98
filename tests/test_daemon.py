"""`kiosk run` as a subprocess against a real Mosquitto: summaries, stats, SIGTERM, SIGHUP,
a camera (video file) that disappears and comes back, and systemd's notify protocol."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.fleet.collector import load_validator
from kiosk.testing.attack import attack_summaries
from tests.daemonproc import Feed, daemon_log, running_daemon, write_config
from tests.helpers import make_clip, wait_for


def _close_writer(writer) -> None:
    try:
        writer.close()
    except BrokenPipeError:  # the daemon has gone: what was left unread is of no use
        pass


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "clip.avi")


def test_daemon_publishes_summaries_and_stats_and_stops_cleanly_on_sigterm(tmp_path, broker, clip):
    cfg = write_config(tmp_path / "kiosk.yaml", tmp_path, broker.port, clip)
    with Feed(broker.port) as feed, running_daemon(cfg) as proc:
        assert wait_for(lambda: len(feed.msgs["summary"]) >= 3, 40), daemon_log(cfg)[-3000:]
        assert wait_for(lambda: any(s.get("frames_per_s", 0) > 0 for s in feed.msgs["stats"]), 10)
        assert feed.last("status")["state"] == "online"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        took = time.monotonic() - started
        assert took < 5.0, took
        assert wait_for(lambda: feed.last("status")["state"] == "offline", 5)
    summaries, stats = feed.msgs["summary"], feed.msgs["stats"]
    summary_v, stats_v, status_v = (
        load_validator(f"{k}.v{n}.json") for k, n in (("summary", 2), ("stats", 2), ("status", 1))
    )
    for s in summaries:
        summary_v.validate(s)
        assert [z["zone"] for z in s["zones"]] == ["frame"]  # the configured zones, in every summary
    assert attack_summaries(summaries) == []
    for s in stats:
        stats_v.validate(s)
    for s in feed.msgs["status"]:
        status_v.validate(s)
    seqs = [s["seq"] for s in summaries]
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # every period the daemon lived through, in order
    starts = [s["period_start"] for s in summaries]
    assert len(set(starts)) == len(starts)
    assert stats[-1]["camera_state"] == "online" and stats[-1]["disk_free_bytes"] > 0
    log = daemon_log(cfg)
    assert "stopping" in log and "stopped" in log and "Traceback" not in log
    # the periods that were over at the stop were closed: nothing is left open in the database
    from kiosk.store.db import open_db

    db = open_db(tmp_path / "device.db")
    open_periods = db.execute(
        "SELECT COUNT(*) FROM aggregates WHERE period_start NOT IN (SELECT period_start FROM closed_periods)"
    ).fetchone()[0]
    assert open_periods == 0
    # ... and the summaries closed at the stop were sent before the offline status, not left for the next start
    assert db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0] == 0
    last_seq = db.execute("SELECT MAX(seq) FROM outbox").fetchone()[0]
    assert seqs[-1] == last_seq, (seqs[-3:], last_seq)


def test_sighup_applies_a_valid_config_and_refuses_an_invalid_one(tmp_path, broker, clip):
    cfg = write_config(tmp_path / "kiosk.yaml", tmp_path, broker.port, clip)
    with Feed(broker.port) as feed, running_daemon(cfg) as proc:
        assert wait_for(lambda: feed.last("status") and feed.last("status")["state"] == "online", 30), daemon_log(cfg)
        first_hash = feed.last("status")["config_hash"]
        write_config(cfg, tmp_path, broker.port, clip, content="  default: spring-campaign\n  labels: [winter]\n")
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: feed.last("status")["config_hash"] != first_hash, 30), daemon_log(cfg)[-2000:]
        second_hash = feed.last("status")["config_hash"]

        def last_content():
            return next(
                (
                    s["last_command"]
                    for s in reversed(feed.msgs["status"])
                    if (s.get("last_command") or {}).get("name") == "content"
                ),
                None,
            )

        # a label the config lists is taken; another is refused (it would be a key only when someone came)
        feed.client.publish("kiosk/store-1/dev-1/cmd/content", json.dumps({"label": "winter", "id": "c1"}), qos=1)
        assert wait_for(lambda: (last_content() or {}).get("id") == "c1", 20)
        assert last_content()["ok"] is True
        feed.client.publish("kiosk/store-1/dev-1/cmd/content", json.dumps({"label": "autumn", "id": "c2"}), qos=1)
        assert wait_for(lambda: (last_content() or {}).get("id") == "c2", 20)
        assert last_content()["ok"] is False and "content.labels" in last_content()["detail"]
        n = len(feed.msgs["summary"])
        cfg.write_text(cfg.read_text() + "zones:\n  - id: a\n    polygon: [[0, 0], [1, 1]]\n")
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "config reload refused" in (feed.last("status").get("error") or ""), 20)
        assert "zones[0].polygon" in daemon_log(cfg)
        assert feed.last("status")["config_hash"] == second_hash and proc.poll() is None  # still running
        assert wait_for(lambda: len(feed.msgs["summary"]) >= n + 2, 60)  # on the previous config
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    seqs = [s["seq"] for s in feed.msgs["summary"]]
    assert seqs == list(range(1, len(seqs) + 1))  # a reload neither skips nor repeats a period


@pytest.mark.parametrize("damage", ["truncated", "swapped"])
def test_a_damaged_model_file_refuses_a_reload_and_the_running_pipeline_goes_on(tmp_path, broker, clip, damage):
    """A model file cut short or replaced by another before SIGHUP: the reload is refused by the hash
    check (the status says which file), and the pipeline that runs goes on publishing."""
    models = tmp_path / "models"
    shutil.copytree(Path(__file__).resolve().parents[1] / "models", models)
    cfg = write_config(
        tmp_path / "kiosk.yaml", tmp_path, broker.port, clip, vision=f"  num_threads: 1\n  models_dir: {models}\n"
    )
    with Feed(broker.port) as feed, running_daemon(cfg) as proc:
        assert wait_for(lambda: len(feed.msgs["summary"]) >= 1, 40), daemon_log(cfg)[-2000:]
        emotion = models / "emotion_int8.tflite"
        if damage == "truncated":
            emotion.write_bytes(emotion.read_bytes()[:1000])
        else:
            shutil.copy(models / "gender_int8.tflite", emotion)
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "config reload refused" in (feed.last("status").get("error") or ""), 30), daemon_log(
            cfg
        )[-2000:]
        assert "emotion" in feed.last("status")["error"]
        n = len(feed.msgs["summary"])
        assert wait_for(lambda: len(feed.msgs["summary"]) >= n + 2, 30)  # the old pipeline goes on
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert "Traceback" not in daemon_log(cfg)


def test_video_removed_sets_camera_offline_and_recovers_when_it_returns(tmp_path, broker, clip):
    cfg = write_config(tmp_path / "kiosk.yaml", tmp_path, broker.port, clip)
    hidden = tmp_path / "elsewhere.avi"
    with Feed(broker.port) as feed, running_daemon(cfg) as proc:
        assert wait_for(lambda: any(s.get("camera_state") == "online" for s in feed.msgs["stats"]), 30), daemon_log(cfg)
        shutil.move(clip, hidden)  # the open file plays to its end (3 s); reopening it then fails
        assert wait_for(lambda: "camera_offline" in (feed.last("status").get("error") or ""), 10), daemon_log(cfg)[
            -2000:
        ]
        assert wait_for(lambda: feed.last("stats")["camera_state"] == "offline", 5)
        assert proc.poll() is None
        # a whole period without a frame is published as such: watched 0 s (not "nobody came")
        assert wait_for(lambda: any(s["coverage"]["frames"] == 0 for s in feed.msgs["summary"]), 30)
        shutil.move(hidden, clip)
        assert wait_for(lambda: feed.last("stats")["camera_state"] == "online", 15), daemon_log(cfg)[-2000:]
        assert wait_for(lambda: feed.last("status").get("error") is None, 5)

        # the summaries say it: periods with no frame analysed (not "nobody came"), and the camera's two
        # changes (the period it came back in is published once it is over, after its grace time)
        def coverage():
            return [s["coverage"] for s in feed.msgs["summary"]]

        assert wait_for(lambda: sum(c["camera_changes"] for c in coverage()) >= 2, 30), coverage()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    cov = coverage()
    assert any(c["frames"] == 0 and c["analysed_s"] == 0 for c in cov), cov
    assert any(c["frames"] > 0 and 0 < c["analysed_s"] <= 1.0 for c in cov), cov  # 1 s periods, at most 1 s watched
    assert "does not exist" in daemon_log(cfg)


def _notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(0.2)
    got: list[tuple[float, str]] = []
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            try:
                got.append((time.monotonic(), sock.recv(4096).decode()))
            except TimeoutError:
                pass

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    return path, got, stop


def _fifo_camera_env(notify_path: str) -> dict:
    """systemd's notify socket with a 2 s watchdog, and an FFmpeg that opens a FIFO stream at once
    (it would otherwise read 5 MB before it opens it)."""
    return {
        "NOTIFY_SOCKET": notify_path,
        "WATCHDOG_USEC": "2000000",
        "OPENCV_FFMPEG_CAPTURE_OPTIONS": "probesize;32768|analyzeduration;0",
    }


def _mjpeg_frames(n: int, start: int = 0) -> list[bytes]:
    out = []
    for i in range(start, start + n):
        frame = np.full((240, 320, 3), 60, np.uint8)
        cv2.circle(frame, (20 + (i * 7) % 280, 120), 15, (0, 200, 255), -1)
        out.append(cv2.imencode(".jpg", frame)[1].tobytes())
    return out


def _pings(got: list[tuple[float, str]], after: float = 0.0) -> list[float]:
    """When the daemon pinged the watchdog (monotonic seconds, as received)."""
    return [t for t, m in list(got) if m == "WATCHDOG=1" and t > after]


def _open_fifo_writer(fifo: Path, proc: subprocess.Popen, cfg: Path, timeout_s: float = 60.0):
    """The FIFO's write end, once the daemon has opened the camera; fails (does not hang) when the
    daemon exits first or never opens it."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO while no reader has it open
        except OSError:
            assert proc.poll() is None, f"the daemon exited ({proc.returncode}): {daemon_log(cfg)[-2000:]}"
            assert time.monotonic() < deadline, "the daemon never opened the camera FIFO"
            time.sleep(0.05)
            continue
        os.set_blocking(fd, True)
        return os.fdopen(fd, "wb")


def _feed_until(writer, done, limit_s: float, start: int) -> bool:
    """MJPEG frames into the FIFO camera at 10 per second until ``done()`` holds (at most ``limit_s``)."""
    for jpg in _mjpeg_frames(int(limit_s * 10), start):
        if done():
            return True
        writer.write(jpg)
        writer.flush()
        time.sleep(0.1)
    return done()


def test_notify_socket_ready_watchdog_only_while_frames_flow_and_stopping(tmp_path, broker):
    """The camera is a FIFO fed with MJPEG frames: while frames flow the daemon pings the watchdog;
    when the writer stalls (a hung camera: the read blocks) the pings stop; they resume with the frames."""
    fifo = tmp_path / "camera.mjpeg"
    os.mkfifo(fifo)
    path, got, stop = _notify_socket(tmp_path)
    cfg = write_config(
        tmp_path / "kiosk.yaml",
        tmp_path,
        broker.port,
        fifo,
        camera=f"  source: {fifo}\n  realtime: false\n  read_timeout_s: 30\n",
    )
    with running_daemon(cfg, _fifo_camera_env(path)) as proc:
        writer = _open_fifo_writer(fifo, proc, cfg)  # once the daemon opens the camera
        try:

            def pings(after: float = 0.0) -> list[float]:
                return _pings(got, after)

            def feed_until(done, limit_s: float, start: int) -> bool:
                return _feed_until(writer, done, limit_s, start)

            assert feed_until(lambda: any("READY=1" in m for _, m in got) and len(pings()) >= 4, 60, 0), got
            # the writer stalls: the capture thread is stuck in its read. A 2 s watchdog is pinged every
            # 2/3 s while healthy; three seconds without a ping mean the daemon stopped feeding it.
            assert wait_for(lambda: time.monotonic() - max(pings()) > 3.0, 30), (
                "the watchdog is still pinged while the pipeline is stalled"
            )
            assert proc.poll() is None
            resumed_at = time.monotonic()
            assert feed_until(lambda: bool(pings(resumed_at)), 30, 600), "no watchdog after frames resumed"
            assert any(m.startswith("STATUS=") for _, m in got)
            proc.send_signal(signal.SIGTERM)
            writer.close()
            assert proc.wait(10) == 0
            assert wait_for(lambda: any("STOPPING=1" in m for _, m in got), 5), got[-5:]
        finally:
            stop.set()
            _close_writer(writer)


def test_a_crash_loop_leaves_every_period_it_lived_through_to_be_summarised(tmp_path, broker, clip):
    """Three runs SIGKILLed as soon as they are online (long before a 10 s flush), then a fourth: the
    periods each killed run lived through are on disk from its start and are published by the next
    run, with their coverage; no period gets two seqs."""
    cfg = write_config(
        tmp_path / "kiosk.yaml",
        tmp_path,
        broker.port,
        clip,
        store=f"  path: {tmp_path / 'device.db'}\n  period_s: 1\n  flush_interval_s: 10\n",
    )
    lived = []
    with Feed(broker.port) as feed:

        def onlines() -> int:
            return sum(s["state"] == "online" for s in feed.msgs["status"])

        for _ in range(3):
            seen = onlines()
            started = time.time()
            with running_daemon(cfg) as proc:
                assert wait_for(lambda: onlines() > seen, 30), daemon_log(cfg)[-2000:]
                proc.kill()
                proc.wait(10)
            lived.append((int(started), time.time()))
        with running_daemon(cfg) as proc:

            def summarised(lo: float, hi: float) -> bool:
                return any(
                    lo <= _epoch(s["period_start"]) < hi and s["coverage"] is not None for s in feed.msgs["summary"]
                )

            assert wait_for(lambda: all(summarised(lo, hi) for lo, hi in lived), 40), (lived, daemon_log(cfg)[-2000:])
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
    starts = [s["period_start"] for s in feed.msgs["summary"]]
    assert len(starts) == len(set(starts))  # no period under two seqs
    seqs = [s["seq"] for s in feed.msgs["summary"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def _epoch(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_without_a_broker_summaries_wait_in_the_outbox(tmp_path, clip):
    """mqtt.enabled: false (a store without a broker yet): the daemon runs, closes periods into the
    outbox and stops cleanly; nothing tries to connect."""
    from kiosk.store.db import open_db

    cfg = write_config(tmp_path / "kiosk.yaml", tmp_path, 9, clip)
    cfg.write_text(cfg.read_text().replace("  keepalive_s: 5\n", "  keepalive_s: 5\n  enabled: false\n"))
    with running_daemon(cfg) as proc:

        def queued() -> int:
            if not (tmp_path / "device.db").exists():
                return 0
            db = open_db(tmp_path / "device.db")
            try:
                return db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
            finally:
                db.conn.close()

        assert wait_for(lambda: queued() >= 3, 40), daemon_log(cfg)[-2000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    log = daemon_log(cfg)
    assert "MQTT" not in log and "Traceback" not in log


def test_a_camera_stuck_in_a_read_is_reopened_then_left_to_the_watchdog(tmp_path, broker):
    """The FIFO camera stalls for good: after 1.5 x read_timeout_s the capture thread is replaced
    (status camera_offline), three times at most; then the watchdog is no longer fed."""
    fifo = tmp_path / "camera.mjpeg"
    os.mkfifo(fifo)
    path, got, stop = _notify_socket(tmp_path)
    cfg = write_config(
        tmp_path / "kiosk.yaml",
        tmp_path,
        broker.port,
        fifo,
        camera=f"  source: {fifo}\n  realtime: false\n  read_timeout_s: 1\n",
    )
    with Feed(broker.port) as feed, running_daemon(cfg, _fifo_camera_env(path)) as proc:
        writer = _open_fifo_writer(fifo, proc, cfg)
        try:
            assert _feed_until(writer, lambda: len(_pings(got)) >= 2, 60, 0), got
            stalled = time.monotonic()
            assert wait_for(lambda: daemon_log(cfg).count("reopening it in a new thread") == 3, 20), daemon_log(cfg)[
                -3000:
            ]
            assert wait_for(lambda: "camera_offline" in (feed.last("status").get("error") or ""), 5)

            def last_ping() -> float:
                return max(_pings(got))

            # the third replacement hangs too: the pings (every 2/3 s while healthy) stop for good
            assert wait_for(lambda: time.monotonic() - last_ping() > 2.5, 30), (
                "the watchdog is still fed with a camera stuck for good"
            )
            assert last_ping() > stalled  # it was fed while fresh capture threads were trying
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            stop.set()
            _close_writer(writer)
    assert "the service manager restarts kiosk" in daemon_log(cfg)
