"""Scoring visits against a scenario's ground truth (tests and benchmarks)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from kiosk.visits import Visit


@dataclass(frozen=True)
class Match:
    truth: dict
    visit: Visit | None
    overlap: float  # temporal IoU


@dataclass(frozen=True)
class Score:
    truth_visits: int
    found_visits: int
    truth_passers: int
    found_passers: int
    matches: tuple[Match, ...]
    unmatched: tuple[Visit, ...]  # records that match nobody (split tracks, ghosts, excluded faces)
    median_dwell_error_s: float
    median_attention_error_s: float
    gender_accuracy: float
    counted_twice: int  # truth people with a further unmatched record overlapping most of its own time with them

    @property
    def visit_count_error(self) -> float:
        return abs(self.found_visits - self.truth_visits) / max(1, self.truth_visits)

    def summary(self) -> dict:
        return {
            "truth_visits": self.truth_visits, "found_visits": self.found_visits,
            "visit_count_error": round(self.visit_count_error, 3),
            "truth_passers": self.truth_passers, "found_passers": self.found_passers,
            "median_dwell_error_s": round(self.median_dwell_error_s, 2),
            "median_attention_error_s": round(self.median_attention_error_s, 2),
            "gender_accuracy": round(self.gender_accuracy, 3),
            "counted_twice": self.counted_twice, "unmatched": len(self.unmatched),
        }


def _iou(a0: float, a1: float, b0: float, b1: float) -> float:
    inter = max(0.0, min(a1, b1) - max(a0, b0))
    union = max(a1, b1) - min(a0, b0)
    return inter / union if union > 0 else 0.0


def score(truth_people: list[dict], visits: list[Visit], t0: float, min_iou: float = 0.3) -> Score:
    """Match records to truth people by temporal overlap (greedy, best first) within the same zone
    where possible. ``t0`` is the wall time of the video's first frame."""
    people = [p for p in truth_people if p["kind"] in ("visit", "passer_by")]
    recs = [(v, v.wall_start - t0, v.wall_start - t0 + v.dwell_s) for v in visits]
    pairs = []
    for i, p in enumerate(people):
        for j, (v, s, e) in enumerate(recs):
            iou = _iou(p["start"], p["end"], s, e)
            if iou >= min_iou:
                pairs.append((iou + (0.5 if v.zone_id == p["zone"] else 0.0), iou, i, j))
    pairs.sort(reverse=True)
    used_p: dict[int, int] = {}
    used_r: set[int] = set()
    for _, _iou_value, i, j in pairs:
        if i in used_p or j in used_r:
            continue
        used_p[i] = j
        used_r.add(j)
    twice = 0
    for i, p in enumerate(people):  # other records overlapping a matched person strongly: the person was split
        extra = [j for j, (v, s, e) in enumerate(recs) if j not in used_r and _iou(p["start"], p["end"], s, e) >= 0.05
                 and min(e, p["end"]) - max(s, p["start"]) >= 0.5 * (e - s)]
        twice += bool(extra) and i in used_p
    matches = tuple(Match(p, recs[used_p[i]][0] if i in used_p else None,
                          _iou(p["start"], p["end"], recs[used_p[i]][1], recs[used_p[i]][2]) if i in used_p else 0.0)
                    for i, p in enumerate(people))
    visit_matches = [m for m in matches if m.visit is not None and m.truth["kind"] == "visit"]
    dwell_err = [abs(m.visit.dwell_s - m.truth["dwell"]) for m in visit_matches]
    attn_err = [abs(m.visit.attention_s - m.truth["attention"]) for m in visit_matches]
    gender_ok = sum(m.visit.gender == m.truth["gender"] for m in visit_matches)
    unmatched = tuple(v for j, (v, s, e) in enumerate(recs) if j not in used_r)
    return Score(
        truth_visits=sum(p["kind"] == "visit" for p in people),
        found_visits=sum(v.kind == "visit" for v in visits),
        truth_passers=sum(p["kind"] == "passer_by" for p in people),
        found_passers=sum(v.kind == "passer_by" for v in visits),
        matches=matches,
        unmatched=unmatched,
        median_dwell_error_s=statistics.median(dwell_err) if dwell_err else float("inf"),
        median_attention_error_s=statistics.median(attn_err) if attn_err else float("inf"),
        gender_accuracy=gender_ok / len(visit_matches) if visit_matches else 0.0,
        counted_twice=twice,
    )
