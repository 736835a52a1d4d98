"""Anonymous aggregate counters, keyed by (period, zone, content, age band, gender).

Visits are added in memory and drained as deltas; the store adds the deltas
to its counters in one transaction per flush. Periods are aligned to UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kiosk.visits import Visit
from kiosk.vision.types import EMOTIONS

# Lower bounds (seconds) of the fixed histogram bins.
DWELL_BINS = (0, 5, 10, 20, 30, 60, 120, 300)
ATTENTION_BINS = (0, 1, 2, 5, 10, 20, 30, 60)

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


@dataclass(frozen=True)
class Deltas:
    cells: dict  # CellKey -> Cell
    occupancy: dict  # (period_start, zone) -> Occupancy

    @property
    def empty(self) -> bool:
        return not self.cells and not self.occupancy


class Aggregator:
    def __init__(self, period_s: int = 300) -> None:
        self.period_s = period_s
        self._cells: dict[CellKey, Cell] = {}
        self._occupancy: dict[tuple[int, str], Occupancy] = {}

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

    def drain(self) -> Deltas:
        """Everything added since the last drain; the aggregator starts empty again."""
        deltas = Deltas(self._cells, self._occupancy)
        self._cells, self._occupancy = {}, {}
        return deltas
