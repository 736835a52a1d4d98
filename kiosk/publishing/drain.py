"""The outbox drainer: publishes queued summaries in seq order, marks each one sent only on a success PUBACK."""

from __future__ import annotations

import logging
import threading
import time

from kiosk.mqtt.client import MqttClient
from kiosk.store.outbox import Outbox

log = logging.getLogger("kiosk.publishing.drain")


class OutboxDrainer:
    """Loops on ``stop_event.wait(interval)``; never blocks the vision loop (it has its own thread
    and database connection). ``rate_per_s`` bounds the drain of a long backlog."""

    def __init__(
        self,
        outbox: Outbox,
        client: MqttClient,
        topic: str,
        *,
        window: int = 20,
        rate_per_s: float = 500.0,
        ack_timeout_s: float = 10.0,
        interval_s: float = 0.5,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.outbox = outbox
        self.client = client
        self.topic = topic
        self.window = window
        self.rate_per_s = rate_per_s
        self.ack_timeout_s = ack_timeout_s
        self.interval_s = interval_s
        self.backoff_max_s = backoff_max_s
        self.published = 0
        self.last_error: str | None = None
        self._backoff = 0.0

    def drain_once(self) -> int:
        """Publish up to one window of queued summaries and wait for their PUBACKs; returns the number acknowledged."""
        if not self.client.connected:
            return 0
        rows = self.outbox.pending(self.window)
        if not rows:
            return 0
        started = time.monotonic()
        sent = [(row, self.client.publish(self.topic, row.payload.encode(), qos=1)) for row in rows]
        acked: list[int] = []
        for row, handle in sent:
            if handle.wait(self.ack_timeout_s) and handle.ok:
                acked.append(row.seq)
                continue
            reason = handle.reason or "no PUBACK in time"
            self.outbox.failed(row.seq, reason)
            self.last_error = f"summary seq {row.seq} not accepted by the broker: {reason}"
            log.warning(self.last_error)
            self._backoff = min(self.backoff_max_s, max(1.0, self._backoff * 2))
            break  # keep seq order: retry from here after the backoff
        else:
            self._backoff = 0.0
            self.last_error = None
        self.outbox.acknowledged(acked)
        done = len(acked)
        self.published += done
        budget = len(rows) / self.rate_per_s - (time.monotonic() - started)
        if budget > 0:
            time.sleep(budget)
        return done

    def step(self) -> float:
        """One drain attempt; returns how long to wait before the next (the backoff after a refusal)."""
        try:
            worked = self.drain_once()
        except Exception:  # a database hiccup must not end the thread
            log.exception("outbox drain failed")
            worked = 0
        return self._backoff if self._backoff else (0.0 if worked else self.interval_s)

    def run(self, stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            delay = self.step()
            if not self.client.connected:  # woken by the connect itself (checking the stop twice a second)
                self.client.wait_connected(min(0.5, delay or 0.5))
            elif stop_event.wait(delay):
                break
