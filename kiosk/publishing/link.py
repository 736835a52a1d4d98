"""The device's link to the broker: retained status and Will, periodic stats, commands,
and the outbox drain, all on one named publisher thread (paho's own network thread aside).

Commands arrive on ``{prefix}/{store_id}/{device_id}/cmd/<name>`` as JSON objects and
are queued by paho's thread, then carried out on the publisher thread (which owns
the outbox's database connection). Each one is answered on the retained status
(``last_command``). Built in: ``republish`` (``{"from_seq": N}``) and ``ping``
(``{"id": "..."}``); the composition root adds its own (``content``). Every payload
is validated by its model in :mod:`kiosk.payloads.commands` first; a malformed, unknown
or retained command is logged and ignored. The publisher loop is supervised: an
exception in it is logged, counted and shown in the status, and the loop goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from kiosk import __version__
from kiosk.mqtt.client import MqttClient, MqttOptions
from kiosk.payloads.commands import CommandError, parse_command
from kiosk.payloads.stats import Stats
from kiosk.payloads.status import Status
from kiosk.publishing.drain import OutboxDrainer
from kiosk.store.outbox import Outbox

log = logging.getLogger("kiosk.publishing.link")

CommandHandler = Callable[[dict[str, Any]], str]  # validated payload -> what was done (raises ValueError when refused)


class Topics:
    def __init__(self, prefix: str, store_id: str, device_id: str) -> None:
        base = f"{prefix}/{store_id}/{device_id}"
        self.summary = f"{base}/summary"
        self.status = f"{base}/status"
        self.stats = f"{base}/stats"
        self.command_prefix = f"{base}/cmd/"
        self.commands = f"{base}/cmd/#"


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class DeviceLink:
    """Publishes ``online`` (retained) on every connect; the broker publishes the retained
    ``offline`` Will when the device vanishes; :meth:`stop` publishes ``offline`` itself."""

    def __init__(
        self,
        options: MqttOptions,
        outbox: Outbox,
        *,
        prefix: str,
        store_id: str,
        device_id: str,
        config_hash: str = "",
        models: dict[str, str] | None = None,
        rate_per_s: float = 500.0,
        stats: Callable[[], dict[str, Any]] | None = None,
        stats_interval_s: float = 60.0,
        commands: dict[str, CommandHandler] | None = None,
    ) -> None:
        self.topics = Topics(prefix, store_id, device_id)
        self.store_id, self.device_id = store_id, device_id
        self.config_hash = config_hash
        self.models = dict(models or {})
        self.started_at = utc_now()
        self.outbox = outbox
        self.stats_source = stats
        self.stats_interval_s = stats_interval_s
        self.handlers: dict[str, CommandHandler] = {"republish": self._republish, "ping": self._ping}
        self.handlers.update(commands or {})
        self.last_command: dict[str, Any] | None = None
        self.problem: str | None = None  # set by the composition root (camera offline, config reload refused)
        self.faults = 0  # exceptions the publisher loop survived
        self.fault: str | None = None
        self._commands: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=100)
        options = MqttOptions(
            **{**options.__dict__, "will_topic": self.topics.status, "will_payload": self._status("offline").encode()}
        )
        self.client = MqttClient(options, on_connected=self._on_connected, on_message=self._on_message)
        self.client.subscribe(self.topics.commands, 1, retained=False)  # a retained command would repeat at each start
        self.drainer = OutboxDrainer(
            outbox, self.client, self.topics.summary, window=options.max_inflight, rate_per_s=rate_per_s
        )
        self.stats_published = 0
        self.heartbeat = time.monotonic()  # each pass of the publisher loop (the watchdog asks alive())
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by a connect, a command or stop(): the thread acts at once
        self._flush_requested = threading.Event()
        self._flushed = threading.Event()
        self._drain_now = False
        self._thread = threading.Thread(target=self._run, name="kiosk-publisher", daemon=True)

    # --- status --------------------------------------------------------------------------------

    def _status(self, state: str) -> str:
        drainer = getattr(self, "drainer", None)
        client = getattr(self, "client", None)  # the Will is built before the client exists
        errors = [
            e
            for e in (getattr(drainer, "last_error", None), getattr(client, "alarm", None), self.problem, self.fault)
            if e
        ]
        return Status(
            schema_name="kiosk.status",
            schema_version=1,
            state=state,
            device_id=self.device_id,
            store_id=self.store_id,
            version=__version__,
            config_hash=self.config_hash,
            models=self.models,
            started_at=self.started_at,
            error="; ".join(errors) or None,
            last_command=self.last_command,
        ).model_dump_json(by_alias=True)

    def _on_connected(self) -> None:  # paho's thread
        self._announce()
        self._drain_now = True  # start draining as soon as the broker has accepted us, not after a poll
        self._wake.set()

    def _announce(self) -> None:
        self.client.publish(self.topics.status, self._status("online").encode(), qos=1, retain=True)

    def announce(self) -> None:
        """Publish the current status again (after a problem appears or clears)."""
        if self.client.connected:
            self._announce()

    # --- commands ------------------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:  # paho's thread: queue only
        if topic.startswith(self.topics.command_prefix):
            try:
                self._commands.put_nowait((topic[len(self.topics.command_prefix) :], payload))
                self._wake.set()
            except queue.Full:
                log.warning("command ignored: too many commands waiting")

    def _republish(self, payload: dict[str, Any]) -> str:
        from_seq = payload["from_seq"]  # validated: an integer from 1 to 2**63 - 1
        n = self.outbox.republish(from_seq)
        lo, hi = self.outbox.seq_range()
        return f"{n} summaries from seq {from_seq} queued again (kept: seq {lo} to {hi})"

    def _ping(self, payload: dict[str, Any]) -> str:
        return "pong"

    def _handle(self, name: str, raw: bytes) -> None:
        handler = self.handlers.get(name)
        if handler is None:
            log.warning("unknown command %r ignored; known: %s", name[:40], ", ".join(sorted(self.handlers)))
            return
        command_id = None
        try:
            command = parse_command(name, raw)  # size, depth, JSON object, the command's model
            command_id = command.id
            detail, ok = handler(command.model_dump()), True
        except CommandError as exc:
            detail, ok = f"ignored: {exc}", False
            log.warning("command %s ignored: %s", name, exc)
        except ValueError as exc:  # the handler refused it
            detail, ok = f"refused: {exc}", False
            log.warning("command %s refused: %s", name, exc)
        else:
            log.info("command %s: %s", name, detail)
        self.last_command = {"name": name, "id": command_id, "ok": ok, "detail": detail[:200], "at": utc_now()}
        self.announce()

    # --- stats ---------------------------------------------------------------------------------

    def _publish_stats(self) -> None:
        rows, size = self.outbox.backlog()
        body = dict(self.stats_source()) if self.stats_source else {}
        body.update(
            {
                "schema": "kiosk.stats",
                "schema_version": 2,
                "device_id": self.device_id,
                "store_id": self.store_id,
                "at": utc_now(),
                "outbox_backlog": rows,
                "outbox_bytes": size,
                "dropped_summaries": self.outbox.dropped_total(),
                "worker_errors": {**body.get("worker_errors", {}), "publisher": self.faults},
            }
        )
        stats = Stats.model_validate(body)  # the published shape is the schema's, or nothing is sent
        self.client.publish(self.topics.stats, stats.model_dump_json(by_alias=True, exclude_unset=True).encode(), qos=0)
        self.stats_published += 1

    # --- the publisher thread ------------------------------------------------------------------

    def _run(self) -> None:
        """The publisher loop, supervised: an exception in one pass is logged, counted and shown in
        the status, and the loop goes on after a second (it must never end while the device runs)."""
        self._next_stats = time.monotonic() + min(5.0, self.stats_interval_s)
        self._next_drain = 0.0
        self._shown_error: str | None = None
        while not self._stop.is_set():
            try:
                self._pass()
            except Exception as exc:
                self.faults += 1
                self.fault = f"publisher error (survived {self.faults}): {exc!r}"[:300]
                log.exception("publisher loop failed (%d so far); going on", self.faults)
                try:
                    self.announce()
                except Exception:
                    log.exception("status not published")
                self._stop.wait(1.0)

    def _pass(self) -> None:
        """Commands, stats when due, a drain when due, then wait for the next of them (or a wake, or
        a second: the heartbeat)."""
        self.heartbeat = time.monotonic()
        if self._flush_requested.is_set():  # stopping: send what was queued last (the periods closed at stop)
            while self.client.connected and self.drainer.drain_once():
                pass
            self._flush_requested.clear()
            self._flushed.set()
        while not self._commands.empty():
            self._handle(*self._commands.get_nowait())
        if time.monotonic() >= self._next_stats:
            self._next_stats = time.monotonic() + self.stats_interval_s
            if self.client.connected:
                try:
                    self._publish_stats()
                except Exception:
                    log.exception("stats not published")
        if self._drain_now:
            self._drain_now = False
            self._next_drain = 0.0
        if time.monotonic() >= self._next_drain:
            self._next_drain = time.monotonic() + self.drainer.step()  # the wait is the backoff after a refusal
            if self.drainer.last_error != self._shown_error:  # a refusal appeared or cleared: say so in status
                self._shown_error = self.drainer.last_error
                self.announce()
        if self._commands.empty() and not self._drain_now:  # a connect or a command wakes it at once
            self._wake.wait(min(1.0, max(0.0, min(self._next_drain, self._next_stats) - time.monotonic())))
        self._wake.clear()

    def start(self) -> None:
        self.client.start()
        self._thread.start()

    def alive(self, window_s: float) -> bool:
        """The publisher thread runs and has looped within ``window_s`` (plus the longest wait one pass
        may make: a PUBACK's timeout), so a thread that is stuck or gone is told from a slow broker."""
        allowance = window_s + self.drainer.ack_timeout_s + 1.0
        return self._thread.is_alive() and time.monotonic() - self.heartbeat < allowance

    def flush(self, timeout: float) -> bool:
        """Send what the outbox holds now (the summaries closed at stop), waiting at most ``timeout``;
        True when it was drained. Nothing is lost otherwise: it is sent at the next start."""
        if timeout <= 0 or not self.client.connected or not self._thread.is_alive():
            return False
        self._flushed.clear()
        self._flush_requested.set()
        self._wake.set()
        return self._flushed.wait(timeout)

    def stop(self, timeout: float = 2.0, final_status: bool = True) -> None:
        """Stop; with ``final_status`` publish the retained ``offline`` first (not when a new link follows)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        final = (self.topics.status, self._status("offline").encode()) if final_status else None
        self.client.stop(final=final, timeout=timeout)
