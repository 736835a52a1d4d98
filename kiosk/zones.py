"""Zones in normalized frame coordinates (0..1): rectangles or polygons.

A face belongs to the zone that contains its centre (the first listed wins
where zones overlap). Exclusion zones use the same geometry: a face whose
centre lies inside one is dropped before anything is inferred about it.
"""

from __future__ import annotations

from dataclasses import dataclass

Point = tuple[float, float]


@dataclass(frozen=True)
class Area:
    """A polygon (at least 3 points; a rectangle is 4) in normalized coordinates."""

    points: tuple[Point, ...]

    @staticmethod
    def rect(x0: float, y0: float, x1: float, y1: float) -> Area:
        return Area(((x0, y0), (x1, y0), (x1, y1), (x0, y1)))

    def contains(self, x: float, y: float) -> bool:
        """Even-odd rule; points on the boundary may go either way."""
        inside = False
        pts = self.points
        j = len(pts) - 1
        for i in range(len(pts)):
            xi, yi = pts[i]
            xj, yj = pts[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside


@dataclass(frozen=True)
class Zone:
    id: str
    kind: str  # "shelf" (product interest) or "queue" (waiting, occupancy)
    label: str  # the product / SKU / place it stands for
    area: Area


WHOLE_FRAME = Zone(id="frame", kind="shelf", label="whole frame", area=Area.rect(0.0, 0.0, 1.0, 1.0))


@dataclass(frozen=True)
class ZoneMap:
    """The configured zones and exclusion areas, queried with normalized centres."""

    zones: tuple[Zone, ...] = (WHOLE_FRAME,)
    exclusions: tuple[Area, ...] = ()

    def excluded(self, x: float, y: float) -> bool:
        return any(a.contains(x, y) for a in self.exclusions)

    def zone_at(self, x: float, y: float) -> Zone | None:
        for z in self.zones:
            if z.area.contains(x, y):
                return z
        return None

    def zone(self, zone_id: str) -> Zone:
        for z in self.zones:
            if z.id == zone_id:
                return z
        raise KeyError(zone_id)
