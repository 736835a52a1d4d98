"""Anonymous aggregate counters, keyed by (period, zone, content, age band, gender).

Visits are added in memory and drained as deltas; the store adds the deltas
to its counters in one transaction per flush. Periods are aligned to UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kiosk.config.vocabulary import ATTENTION_BINS, DWELL_BINS, EMOTIONS
from kiosk.visits import Visit

CellKey = tuple[int, str, str, str, str]  # period_start, zone, content, age_band, gender


def period_start(wall: float, period_s: int) -> int:
    """Start (UTC seconds) of the period that holds ``wall``."""
    return int(math.floor(wall / period_s) * period_s)


def histogram_bin(value: float, bins: tuple[int, ...]) -> int:
    index = 0
    for i, lo in enumerate(bins):
        if value >= lo:
            index = i
    return index


@dataclass
class Cell:
    visits: int = 0
    passers_by: int = 0
    attentive: int = 0
    dwell_sum: float = 0.0
    attention_sum: float = 0.0
    dwell_hist: list = field(default_factory=lambda: [0] * len(DWELL_BINS))
    attention_hist: list = field(default_factory=lambda: [0] * len(ATTENTION_BINS))
    dominant: list = field(default_factory=lambda: [0] * len(EMOTIONS))
    first_reaction: list = field(default_factory=lambda: [0] * len(EMOTIONS))


@dataclass
class Occupancy:
    samples: int = 0
    total: int = 0
    peak: int = 0


@dataclass
class Coverage:
    """How much of a period was watched: frames analysed, the seconds they cover, camera changes."""

    frames: int = 0
    analysed_s: float = 0.0
    camera_changes: int = 0


# A frame covers the time since the one before, up to this much (a stalled camera covers nothing).
MAX_FRAME_GAP_S = 1.0


@dataclass(frozen=True)
class Deltas:
    cells: dict  # CellKey -> Cell
    occupancy: dict  # (period_start, zone) -> Occupancy
    coverage: dict = field(default_factory=dict)  # period_start -> Coverage

    @property
    def empty(self) -> bool:
        return not self.cells and not self.occupancy and not self.coverage

    @property
    def periods(self) -> set[int]:
        """The periods these deltas write to."""
        return {key[0] for key in self.cells} | {key[0] for key in self.occupancy} | set(self.coverage)


class Aggregator:
    def __init__(self, period_s: int = 300) -> None:
        self.period_s = period_s
        self._cells: dict[CellKey, Cell] = {}
        self._occupancy: dict[tuple[int, str], Occupancy] = {}
        self._coverage: dict[int, Coverage] = {}

    def add(self, visit: Visit) -> None:
        key = (period_start(visit.wall_end, self.period_s), visit.zone_id, visit.content, visit.age_band, visit.gender)
        cell = self._cells.setdefault(key, Cell())
        if visit.kind == "passer_by":
            cell.passers_by += 1
            return
        cell.visits += 1
        cell.dwell_sum += visit.dwell_s
        cell.attention_sum += visit.attention_s
        cell.dwell_hist[histogram_bin(visit.dwell_s, DWELL_BINS)] += 1
        cell.attention_hist[histogram_bin(visit.attention_s, ATTENTION_BINS)] += 1
        if visit.attentive:
            cell.attentive += 1
        if visit.dominant_emotion is not None:
            cell.dominant[EMOTIONS.index(visit.dominant_emotion)] += 1
        if visit.first_reaction is not None:
            cell.first_reaction[EMOTIONS.index(visit.first_reaction)] += 1

    def add_occupancy(self, wall: float, zone_id: str, count: int) -> None:
        """One occupancy sample of a queue zone (the caller samples at a fixed rate, e.g. 1 Hz)."""
        occ = self._occupancy.setdefault((period_start(wall, self.period_s), zone_id), Occupancy())
        occ.samples += 1
        occ.total += count
        occ.peak = max(occ.peak, count)

    def add_frame(self, wall: float, covered_s: float) -> None:
        """One analysed frame at ``wall``, covering the ``covered_s`` seconds since the previous one
        (at most MAX_FRAME_GAP_S); the part before the period's start goes to the periods before."""
        p = period_start(wall, self.period_s)
        self._coverage.setdefault(p, Coverage()).frames += 1
        start, end = wall - max(0.0, min(MAX_FRAME_GAP_S, covered_s)), wall
        while end > start:
            q = period_start(end, self.period_s)
            if q >= end:  # end is a period's first instant: the time before it is the previous period's
                q -= self.period_s
            lo = max(start, q)
            self._coverage.setdefault(q, Coverage()).analysed_s += end - lo
            end = lo

    def note_watching(self, wall: float) -> None:
        """The analysis is running at ``wall`` (with or without frames): its period gets a coverage row,
        so that a period with the camera off says "0 s watched" rather than nothing."""
        self._coverage.setdefault(period_start(wall, self.period_s), Coverage())

    def add_camera_change(self, wall: float) -> None:
        """The camera went offline or came back at ``wall``."""
        self._coverage.setdefault(period_start(wall, self.period_s), Coverage()).camera_changes += 1

    def drain(self) -> Deltas:
        """Everything added since the last drain; the aggregator starts empty again."""
        deltas = Deltas(self._cells, self._occupancy, self._coverage)
        self._cells, self._occupancy, self._coverage = {}, {}, {}
        return deltas
