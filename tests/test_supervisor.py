"""No exception ends a worker thread of the daemon: the supervisor logs it, counts it in stats,
shows it in status, and starts the loop again; while it is down the watchdog is not fed."""

from __future__ import annotations

import logging
import time

from kiosk.config import parse_config
from kiosk.daemon.runtime import Runtime
from tests.helpers import wait_for


def test_a_failing_vision_loop_is_restarted_counted_and_shown(tmp_path, pipeline, caplog):
    cfg = parse_config(
        {
            "store": {"path": str(tmp_path / "kiosk.db"), "period_s": 60, "flush_interval_s": 0.5},
            "camera": {"source": str(tmp_path / "none.avi")},
            "mqtt": {"enabled": False},
        }
    )
    runtime = Runtime(cfg, pipeline, started=time.monotonic(), clock_synced=lambda: True)
    real_drain, calls = runtime.chain.drain, []

    def drain():  # the second drain (the vision thread's first flush) raises: a bug outside the per-frame guard
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise RuntimeError("injected failure")
        return real_drain()

    runtime.chain.drain = drain
    with caplog.at_level(logging.ERROR):
        runtime.start()
        try:
            assert wait_for(lambda: runtime.worker_errors["vision"] == 1, 20)
            assert "thread_failed: vision" in runtime.worker_problem and "injected failure" in runtime.worker_problem
            assert wait_for(lambda: len(calls) >= 4, 20), calls  # the loop runs again and flushes again
            assert wait_for(lambda: runtime.healthy(2.0), 10)  # every thread makes progress again
            assert runtime.stats()["worker_errors"] == {"vision": 1, "store": 0}
            assert runtime._threads[0].is_alive()
        finally:
            runtime.stop(5, offline=False)
    assert "the vision thread failed (1 times); restarting it" in caplog.text
    assert not runtime._threads[0].is_alive() and not runtime._threads[1].is_alive()  # stop still ends them


def test_the_watchdog_is_not_fed_while_the_store_thread_is_stuck(tmp_path, pipeline):
    cfg = parse_config(
        {
            "store": {"path": str(tmp_path / "kiosk.db"), "period_s": 60},
            "camera": {"source": str(tmp_path / "none.avi")},
            "mqtt": {"enabled": False},
        }
    )
    runtime = Runtime(cfg, pipeline, started=time.monotonic(), clock_synced=lambda: True)
    now = time.monotonic()
    runtime.vision_heartbeat = runtime.capture.heartbeat = now
    runtime.store.heartbeat = now - 10  # the store loop has not come round for 10 s
    assert not runtime.healthy(2.0)
    runtime.store.heartbeat = now
    assert runtime.healthy(2.0)
    runtime.store_db.conn.close()


def test_the_watchdog_is_not_fed_while_the_publisher_thread_is_stuck(tmp_path, pipeline, broker):
    """A publisher pass that never returns (here its stats source hangs, as a disk-usage call on a
    hung mount would) stops the watchdog once the pass is longer than any PUBACK wait; it is fed again
    when the pass returns. A publisher that merely waits for a slow broker is not a stuck one."""
    import threading

    cfg = parse_config(
        {
            "store": {"path": str(tmp_path / "kiosk.db"), "period_s": 60},
            "camera": {"source": str(tmp_path / "none.avi")},
            "mqtt": {"port": broker.port, "store_id": "store-1", "device_id": "dev-1", "stats_interval_s": 1},
        }
    )
    runtime = Runtime(cfg, pipeline, started=time.monotonic(), clock_synced=lambda: True)
    release = threading.Event()

    def beat() -> None:  # the other threads are making progress all along
        runtime.vision_heartbeat = runtime.store.heartbeat = runtime.capture.heartbeat = time.monotonic()

    link = runtime.link
    try:
        beat()
        assert not runtime.healthy(2.0)  # the publisher thread has not started
        link.start()
        assert wait_for(lambda: link.client.connected and (beat() or runtime.healthy(2.0)), 20)
        link.stats_source = lambda: release.wait(120) and {}
        stalled = time.monotonic()
        assert wait_for(lambda: beat() or not runtime.healthy(2.0), 30)
        assert time.monotonic() - stalled >= 2.0 + link.drainer.ack_timeout_s - 1.5  # not before a PUBACK's wait
        release.set()
        assert wait_for(lambda: beat() or runtime.healthy(2.0), 10)
    finally:
        release.set()
        link.stop(timeout=2)
        link.outbox.db.conn.close()
        runtime.store_db.conn.close()
