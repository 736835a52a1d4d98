"""Fault scenarios against real parts, run shortened by the tests and in full by ``bench/faults.py``.

- :func:`kill_storm`: a process doing what the daemon's store and publisher threads do (flushes of
  aggregates, period closing into the outbox, outbox rows marked sent; each a real transaction on a
  real SQLite file, ``synchronous=FULL``) is SIGKILLed at random moments, again and again. Before and
  after each operation it appends a line to a journal (``os.write``: a SIGKILL keeps what was
  written), so after each kill the checker knows what was committed for sure, and which one
  operation was under way. Checked after every kill: ``integrity_check``, every journaled
  commit present, an interrupted flush applied whole or not at all, no period under two seqs, each
  summary equal to the data of its period; and at the end every period with data closed.
- :func:`broker_restarts`: ``kiosk publish`` drains an outbox that a feeder fills with a summary
  every 0.25 s while the Mosquitto broker is restarted every few seconds; a collector with a
  persistent session and gap requests must end with every seq; the publisher's file descriptors
  and memory are sampled before and after.

Each returns a dict of figures (the bench prints it as JSON; the tests assert on it).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from kiosk.aggregate import Aggregator
from kiosk.store.aggregates import AggregateStore
from kiosk.store.db import open_db
from kiosk.store.outbox import Outbox
from kiosk.summary import SummaryContext, build_summary
from tests.broker import Broker
from tests.helpers import T0, visit, wait_for

ROOT = Path(__file__).resolve().parents[1]
ZONE = "shelf-a"
K = 3


def _context() -> SummaryContext:
    return SummaryContext(device_id="dev-1", store_id="store-1", period_s=1, k=K, models={}, zones=(ZONE,))


# --- SIGKILL at random points of flushes, period closing and outbox marking -------------------------


def churn(db_path: Path, journal_path: Path, seed: int, finish: bool = False) -> None:
    """The worker (``python -m tests.faults churn``): a store thread (flush, close) and a publisher
    thread (mark sent) on their own connections, as in the daemon, until killed. ``finish``: close
    every period that has data, then exit (a clean last start)."""
    from kiosk.periods import PeriodCloser

    fd = os.open(journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def note(line: str) -> None:
        os.write(fd, (line + "\n").encode())

    rng = random.Random(seed)
    store_db, publisher_db = open_db(db_path), open_db(db_path)
    closer = PeriodCloser(store_db, Outbox(store_db), _context(), grace_s=0.0, clock_synced=lambda: True)
    closer.recover()  # the periods a killed run left open
    last = store_db.execute("SELECT MAX(period_start) FROM aggregates").fetchone()[0]
    if finish:
        note("s b C")
        seqs = closer.close_due(float("inf"), grace=False)
        note("s C " + " ".join(map(str, seqs)))
        return
    wall = float(T0 if last is None else last + 1) + 0.05  # a fresh period: none is written after its close
    stop = threading.Event()

    def publisher() -> None:
        outbox = Outbox(publisher_db)
        while not stop.is_set():
            rows = outbox.pending(rng.randint(1, 5))
            if rows:
                seqs = [r.seq for r in rows]
                note("p b A " + " ".join(map(str, seqs)))
                outbox.acknowledged(seqs)
                note("p A " + " ".join(map(str, seqs)))
            time.sleep(rng.uniform(0.0, 0.01))

    threading.Thread(target=publisher, name="churn-publisher", daemon=True).start()
    store = AggregateStore(store_db)
    note("s started")
    while True:
        agg = Aggregator(1)
        n = rng.randint(1, 4)
        for _ in range(n):
            agg.add(
                visit(
                    wall,
                    zone=ZONE,
                    gender=rng.choice(("female", "male", "unknown")),
                    band=rng.choice(("18-24", "25-34", "35-44")),
                )
            )  # several rows: one transaction or none
        period = int(wall)
        note(f"s b F {period} {n}")
        store.write(agg.drain())
        closer.note_written([period])
        note(f"s F {period} {n}")
        wall += rng.uniform(0.15, 0.45)
        if int(wall) != period:  # that period is over (and periods a killed run left open are closed too)
            note("s b C")
            seqs = closer.close_due(wall, grace=False)
            note("s C " + " ".join(map(str, seqs)))


class _Journal:
    """What the journal says was committed, and which operation each thread was in when killed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.flushed: collections.Counter[int] = collections.Counter()  # period -> visits, journaled commits
        self.maybe: list[tuple[int, int]] = []  # flushes under way at a kill: (period, visits)
        self.closed: set[int] = set()
        self.acked: set[int] = set()
        self.lines = 0
        self._begun: dict[str, list[str]] = {}  # thread -> the operation it began and has not ended

    def read(self) -> int:
        """Take the new lines in; returns how many lines there are in all."""
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for raw in complete.decode().splitlines():
            self.lines += 1
            who, *words = raw.split()
            if words[0] == "b":
                self._begun[who] = words[1:]
                continue
            self._begun.pop(who, None)
            if words[0] == "F":
                self.flushed[int(words[1])] += int(words[2])
            elif words[0] == "C":
                self.closed.update(map(int, words[1:]))
            elif words[0] == "A":
                self.acked.update(map(int, words[1:]))
        return self.lines

    def killed(self) -> dict[str, str | None]:
        """After a kill: each thread's operation under way (None: between two); a flush under way is
        noted as one that may or may not have committed."""
        self.read()
        under_way = {who: (self._begun[who][0] if who in self._begun else None) for who in ("s", "p")}
        flush = self._begun.get("s")
        if flush and flush[0] == "F":
            self.maybe.append((int(flush[1]), int(flush[2])))
        self._begun.clear()
        return under_way


def _check_store(db_path: Path, journal: _Journal) -> list[str]:
    """Everything the journal says was committed is there; the one interrupted flush is whole or absent."""
    problems = []
    db = open_db(db_path)
    try:
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("integrity_check failed")
        stored = dict(db.execute("SELECT period_start, SUM(visits) FROM aggregates GROUP BY period_start").fetchall())
        extra = collections.Counter(
            {p: stored.get(p, 0) - journal.flushed[p] for p in set(stored) | set(journal.flushed)}
        )
        for period, n in journal.maybe:  # committed just before the kill, or not at all: never a part
            if extra[period] >= n:
                extra[period] -= n
        bad = {p: e for p, e in extra.items() if e}
        if bad:
            problems.append(f"visits stored minus visits committed, per period: {bad}")
        journal.flushed.update({p: stored.get(p, 0) - journal.flushed[p] for p in stored})  # the ones that made it
        journal.maybe.clear()
        closed = dict(db.execute("SELECT seq, period_start FROM closed_periods").fetchall())
        outbox = db.execute("SELECT seq, period_start, payload, sent_at FROM outbox").fetchall()
        if missing := journal.closed - set(closed):
            problems.append(f"closed (journaled) but not in closed_periods: seqs {sorted(missing)[:10]}")
        if len(set(closed.values())) != len(closed) or len({r[1] for r in outbox}) != len(outbox):
            problems.append("a period under two seqs")
        rows = {r[0]: r for r in outbox}
        if set(rows) != set(closed):
            problems.append(f"outbox and closed_periods disagree: {sorted(set(rows) ^ set(closed))[:10]}")
        if sorted(closed, key=closed.get) != sorted(closed):
            problems.append("seqs not in period order")
        if not_sent := [s for s in journal.acked if s in rows and rows[s][3] is None]:
            problems.append(f"acknowledged (journaled) but not marked sent: {sorted(not_sent)[:10]}")
        for seq, period, payload, _ in outbox:
            published = {z["zone"]: z["visits"] for z in json.loads(payload)["zones"]}.get(ZONE)
            if published is not None and published != stored.get(period, 0):
                problems.append(f"summary seq {seq} says {published} visits, its period holds {stored.get(period, 0)}")
    finally:
        db.conn.close()
    return problems


def kill_storm(workdir: Path, kills: int, seed: int = 1) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    db_path, journal_path = workdir / "device.db", workdir / "journal"
    journal = _Journal(journal_path)
    journal_path.touch()
    rng = random.Random(seed)
    landed: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    integrity_ok = 0
    started = time.monotonic()
    for i in range(kills):
        before = journal.lines
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults", "churn", str(db_path), str(journal_path), str(seed * 1000 + i)],
            cwd=ROOT,
            stderr=open(workdir / "churn.log", "a"),
        )
        target = rng.randint(2, 60)  # journal lines (about a millisecond or ten each) before the kill
        if not wait_for(lambda: journal.read() - before >= target or proc.poll() is not None, 60, step=0.002):
            proc.kill()
            raise RuntimeError(f"churn worker made no progress: {(workdir / 'churn.log').read_text()[-2000:]}")
        time.sleep(rng.uniform(0.0, 0.01))
        proc.send_signal(signal.SIGKILL)
        if proc.wait(10) != -signal.SIGKILL:
            raise RuntimeError(f"churn worker ended by itself: {(workdir / 'churn.log').read_text()[-2000:]}")
        under_way = journal.killed()
        for who, op in under_way.items():
            landed[{"F": "flush", "C": "period close", "A": "outbox marking", None: "between"}[op] + f" ({who})"] += 1
        found = _check_store(db_path, journal)
        integrity_ok += not any("integrity" in p for p in found)
        problems += [f"kill {i + 1}: {p}" for p in found]
    subprocess.run(
        [sys.executable, "-m", "tests.faults", "churn", str(db_path), str(journal_path), "0", "--finish"],
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    journal.read()
    problems += [f"after the last start: {p}" for p in _check_store(db_path, journal)]
    db = open_db(db_path)
    unclosed = db.execute(
        "SELECT COUNT(DISTINCT period_start) FROM aggregates WHERE period_start NOT IN "
        "(SELECT period_start FROM closed_periods)"
    ).fetchone()[0]
    periods, seqs = db.execute("SELECT COUNT(*), MAX(seq) FROM closed_periods").fetchone()
    visits = db.execute("SELECT COALESCE(SUM(visits), 0) FROM aggregates").fetchone()[0]
    db.conn.close()
    return {
        "kills": kills,
        "integrity_ok": integrity_ok,
        "problems": problems,
        "kill_landed_in": dict(sorted(landed.items())),
        "periods_closed": periods,
        "last_seq": seqs,
        "periods_left_unclosed": unclosed,
        "visits_stored": visits,
        "visits_journaled": sum(journal.flushed.values()),
        "seconds": round(time.monotonic() - started, 1),
    }


# --- a broker restarted again and again ------------------------------------------------------------


def _proc_figures(pid: int) -> tuple[int, int]:
    """(open file descriptors, resident set in KiB) of a process."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return fds, rss


def broker_restarts(workdir: Path, duration_s: float, every_s: float = 5.0, seed: int = 1) -> dict:
    from kiosk.fleet.collector import Collector
    from kiosk.fleet.database import CollectorStore
    from kiosk.mqtt.client import MqttOptions

    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    broker = Broker(workdir / "broker").start()
    cfg = workdir / "kiosk.yaml"
    cfg.write_text(
        f"store:\n  path: {workdir / 'device.db'}\n  period_s: 1\n"
        f"mqtt:\n  port: {broker.port}\n  store_id: store-1\n  device_id: dev-1\n  keepalive_s: 5\n"
    )
    db = open_db(workdir / "device.db")
    outbox = Outbox(db)
    ctx = _context()
    produced = [0]
    stop_feeding = threading.Event()

    def feed() -> None:  # the store thread's part: a closed period every 0.25 s
        while not stop_feeding.wait(0.25):
            p = produced[0]
            outbox.close_period(T0 + p, lambda seq, dropped, p=p: build_summary(db, ctx, T0 + p, seq, dropped, True))
            produced[0] += 1

    central = CollectorStore(workdir / "central.db")
    collector = Collector(
        MqttOptions(port=broker.port, client_id="collector", clean_start=False, session_expiry_s=3600),
        central,
        republish_every_s=2.0,
    )
    log_path = workdir / "publisher.log"
    publisher = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "publish", "--config", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "a"),
    )
    feeder = threading.Thread(target=feed, name="feeder", daemon=True)
    restarts = 0
    try:
        collector.start()
        if not collector.client.wait_subscribed(20):
            raise RuntimeError("the collector did not subscribe")
        feeder.start()
        if not wait_for(lambda: len(central.seqs("dev-1")) >= 4, 60):
            raise RuntimeError(f"nothing arrived before the restarts: {log_path.read_text()[-2000:]}")
        fds_before, rss_before = _proc_figures(publisher.pid)
        began = time.monotonic()
        while time.monotonic() - began < duration_s:
            time.sleep(rng.uniform(0.8, 1.2) * every_s)
            broker.stop()  # SIGTERM, as a service manager restarts it; its persistence file is written
            broker.start()
            restarts += 1
        stop_feeding.set()
        feeder.join(5)
        restarted_for = time.monotonic() - began
        last_seq = outbox.seq_range()[1]
        quiet = time.monotonic()
        converged = wait_for(lambda: central.seqs("dev-1") == list(range(1, last_seq + 1)), 240, step=0.2)
        converge_s = time.monotonic() - quiet
        fds_after, rss_after = _proc_figures(publisher.pid)
        seqs = central.seqs("dev-1")
    finally:
        stop_feeding.set()
        publisher.send_signal(signal.SIGTERM)
        try:
            publisher.wait(15)
        except subprocess.TimeoutExpired:
            publisher.kill()
        collector.stop()
        broker.stop()
    log_text = log_path.read_text()
    connected_at = [
        dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for line in log_text.splitlines()
        if "MQTT connected" in line
    ]
    return {
        "restarts": restarts,
        "every_s": every_s,
        "restarted_for_s": round(restarted_for, 1),
        "summaries": last_seq,
        "received": len(seqs),
        "missing": sorted(set(range(1, last_seq + 1)) - set(seqs))[:20],
        "converged": converged,
        "converged_s_after_last_restart": round(converge_s, 1),
        "duplicates_received": central.duplicates,
        "republish_requests": collector.republish_requests,
        "publisher_connects": len(connected_at),
        "publisher_gaps_between_connects_s": [round(b - a, 1) for a, b in zip(connected_at, connected_at[1:])],
        "publisher_fds": [fds_before, fds_after],
        "publisher_rss_kib": [rss_before, rss_after],
        "publisher_alarm_logged": "session_taken_over" in log_text,
    }


if __name__ == "__main__":
    if sys.argv[1] == "churn":
        churn(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), finish="--finish" in sys.argv)
