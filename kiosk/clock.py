"""Wall clock health: is it synchronised, and did it jump?

Durations come from the monotonic clock; periods are aligned to UTC wall time.
A Raspberry Pi has no real-time clock: it boots with the time it saved at
shutdown and jumps when NTP corrects it. :class:`JumpDetector` notices such a
jump (the wall clock moving against the monotonic one), and
:func:`clock_synced` asks the kernel whether the clock is synchronised, the
way ``timedatectl`` does (``adjtimex``: the STA_UNSYNC flag and the
TIME_ERROR state), without a subprocess or a compiled dependency.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from dataclasses import dataclass
from pathlib import Path

STA_UNSYNC = 0x0040
TIME_ERROR = 5


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):  # struct timex, <sys/timex.h> (Linux, glibc)
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")


def clock_synced() -> bool:
    """True when the kernel says an NTP client (timesyncd, chrony, ntpd) keeps the clock synchronised.
    Where adjtimex is forbidden (systemd's ProtectClock=), systemd-timesyncd's flag file decides.
    False when it is not synchronised, or when this cannot be told."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()  # modes = 0: read only
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        state = -1
    if state < 0:
        return TIMESYNCD_FLAG.exists()
    return state != TIME_ERROR and not (tx.status & STA_UNSYNC)


@dataclass(frozen=True)
class ClockJump:
    seconds: float  # wall-clock change beyond the monotonic one; negative: backwards
    wall_before: float
    wall_after: float


class JumpDetector:
    """Call :meth:`check` regularly; it returns a :class:`ClockJump` when the wall clock moved by more
    than ``threshold_s`` relative to the monotonic clock since the last call."""

    def __init__(self, threshold_s: float = 2.0, wall=time.time, mono=time.monotonic) -> None:
        self.threshold_s = threshold_s
        self._wall, self._mono = wall, mono
        self._last_wall = wall()
        self._offset = self._last_wall - mono()
        self.jumps = 0

    def check(self) -> ClockJump | None:
        wall = self._wall()
        offset = wall - self._mono()
        moved = offset - self._offset
        before = self._last_wall
        self._offset, self._last_wall = offset, wall
        if abs(moved) > self.threshold_s:
            self.jumps += 1
            return ClockJump(moved, before, wall)
        return None
