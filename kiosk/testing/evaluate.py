"""Scoring visits against a scenario's ground truth (tests and benchmarks)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from itertools import pairwise

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

    @property
    def missed_visits(self) -> int:
        """Truth visits that no visit record matched (none at all, or one counted as a passer-by):
        under-counts, which over-counts elsewhere can hide in the visit count."""
        return sum(m.visit is None or m.visit.kind != "visit" for m in self.matches if m.truth["kind"] == "visit")

    def summary(self) -> dict:
        return {
            "truth_visits": self.truth_visits,
            "found_visits": self.found_visits,
            "visit_count_error": round(self.visit_count_error, 3),
            "truth_passers": self.truth_passers,
            "found_passers": self.found_passers,
            "median_dwell_error_s": round(self.median_dwell_error_s, 2),
            "median_attention_error_s": round(self.median_attention_error_s, 2),
            "gender_accuracy": round(self.gender_accuracy, 3),
            "counted_twice": self.counted_twice,
            "unmatched": len(self.unmatched),
            "missed_visits": self.missed_visits,
        }


def _span(v: Visit, t0: float) -> tuple[float, float]:
    """A record's start and end in video time (``t0``: the wall time of the video's first frame)."""
    return v.wall_start - t0, v.wall_start - t0 + v.dwell_s


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    """How long two spans share (negative: how far apart they are)."""
    return min(a1, b1) - max(a0, b0)


def _iou(a0: float, a1: float, b0: float, b1: float) -> float:
    inter = max(0.0, _overlap(a0, a1, b0, b1))
    union = max(a1, b1) - min(a0, b0)
    return inter / union if union > 0 else 0.0


def score(truth_people: list[dict], visits: list[Visit], t0: float, min_iou: float = 0.3) -> Score:
    """Match records to truth people by temporal overlap (greedy, best first) within the same zone
    where possible. ``t0`` is the wall time of the video's first frame."""
    people = [p for p in truth_people if p["kind"] in ("visit", "passer_by")]
    recs = [(v, *_span(v, t0)) for v in visits]
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
        extra = [
            j
            for j, (v, s, e) in enumerate(recs)
            if j not in used_r
            and _iou(p["start"], p["end"], s, e) >= 0.05
            and _overlap(s, e, p["start"], p["end"]) >= 0.5 * (e - s)
        ]
        twice += bool(extra) and i in used_p
    matches = tuple(
        Match(
            p,
            recs[used_p[i]][0] if i in used_p else None,
            _iou(p["start"], p["end"], recs[used_p[i]][1], recs[used_p[i]][2]) if i in used_p else 0.0,
        )
        for i, p in enumerate(people)
    )
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


def _interruptions(person: dict) -> list[tuple[float, float]]:
    """This person's look-aways and occlusions that lie within their visit."""
    gaps = list(person.get("away", [])) + list(person.get("occluded", []))
    return [(a0, a1) for a0, a1 in gaps if person["start"] < a0 and a1 < person["end"]]


def _own_records(
    person: dict, matched: Visit | None, unmatched: tuple[Visit, ...], t0: float, touch: float = 0.2
) -> list[Visit]:
    """The records that belong to this person: the one matched to them and the pieces of their visit
    matched to nobody, none of which need overlap them enough to be matched: records at their zone
    that lie mostly (half their time or more) within their time and not at the time of the matched
    record (records carry no place: one at the same time at the zone is somebody else's)."""

    def piece(v: Visit) -> bool:
        s, e = _span(v, t0)
        inside = _overlap(s, e, person["start"], person["end"]) >= max(0.5 * (e - s), 1e-9)
        if matched is None:
            return inside
        return inside and _overlap(s, e, *_span(matched, t0)) <= touch  # before or after it, touching at most

    pieces = [v for v in unmatched if v.zone_id == person["zone"] and piece(v)]
    return ([matched] if matched is not None else []) + pieces


def _split_gaps(
    person: dict, records: list[Visit], t0: float, slack: float = 0.5, reach: float = 1.0, touch: float = 0.2
) -> list[tuple[float, float]]:
    """The look-aways and occlusions that split this person's visit: those no record of theirs runs
    across (one does when it starts before and ends after it, ``slack`` allowed), and those during
    which one of their records ends and after which the next begins (``reach`` allowed about their
    ends; records at the same time, sharing more than ``touch``, two tracks on one face, are a
    double count, not a split)."""
    spans = sorted(_span(v, t0) for v in records)
    gaps = _interruptions(person)
    split = [(a0, a1) for a0, a1 in gaps if not any(s < a0 + slack and e > a1 - slack for s, e in spans)]
    for (_, e0), (s1, _) in pairwise(spans):
        if e0 - s1 > touch:
            continue  # overlapping records
        # one record ends during the interruption (or about its ends) and the next begins after it
        split += [
            (a0, a1) for a0, a1 in gaps if a0 - reach <= e0 <= a1 + reach and s1 >= a1 - reach and (a0, a1) not in split
        ]
    return split


def _unseen_across(person: dict, gap: tuple[float, float]) -> float:
    """How long the camera did not see this person's face around an interruption: the longest of
    the truth's unseen spans that overlap it (a look-away with a passer-by in front right after it
    is one span), or the interruption itself where the truth has no unseen spans."""
    a0, a1 = gap
    spans = [b - a for a, b in person.get("unseen", []) if a < a1 and b > a0]
    return max(spans, default=a1 - a0)


def store_scene_report(truth_people: list[dict], visits: list[Visit], t0: float, wait_s: float | None = None) -> dict:
    """:func:`score` plus what the store scenes (kiosk.testing.store_scene) probe: visits split by a
    look-away or an occlusion (the person's records, the matched one and pieces of it matched to
    nobody, do not run across it, or one of them ends and the next begins at it), same-spot pairs (one
    shopper leaves, another takes the spot a few seconds later) told apart, and staff counted.
    ``wait_s``: the tracker's waiting time (``tracking.reacquire_s``); a split is then also
    reported as within it when the face was unseen no longer than that across an interruption that
    split the visit (``split_unseen_s``: the shortest such gap of each split person; a
    split across only longer gaps is what the setting asks for)."""
    result = score(truth_people, visits, t0)
    people = [p for p in truth_people if p["kind"] == "visit"]
    by_id = {p["id"]: p for p in truth_people}
    matched = {m.truth["id"]: m.visit for m in result.matches if m.visit is not None}
    interrupted = [p for p in people if _interruptions(p)]
    # split: the person's records (the matched one and unmatched pieces of it) do not run across one
    # of their interruptions, or one ends and the next begins at it
    owned = {p["id"]: _own_records(p, matched.get(p["id"]), result.unmatched, t0) for p in interrupted}
    missed = {pid: _split_gaps(by_id[pid], recs, t0) for pid, recs in owned.items() if recs}
    split = [pid for pid, gaps in missed.items() if gaps]
    unseen = {pid: round(min(_unseen_across(by_id[pid], g) for g in missed[pid]), 2) for pid in split}
    within = [pid for pid in split if wait_s is not None and unseen[pid] <= wait_s]
    pairs = [(by_id[p["successor_of"]], p) for p in people if p.get("successor_of") in by_id]
    pairs = [(a, b) for a, b in pairs if a["kind"] == "visit"]
    told_apart = sum(
        1 for a, b in pairs if a["id"] in matched and b["id"] in matched and matched[a["id"]] is not matched[b["id"]]
    )
    staff = [p for p in truth_people if p["kind"] == "excluded"]
    staff_counted = sum(
        1 for v in visits for p in staff if v.zone_id is None and _overlap(*_span(v, t0), p["start"], p["end"]) > 0
    )
    return {
        **result.summary(),
        "interrupted_visits": len(interrupted),
        "split_by_lookaway_or_occlusion": len(split),
        "split_ids": split,
        "split_unseen_s": unseen,
        **({"split_within_wait": len(within), "split_within_wait_ids": within} if wait_s is not None else {}),
        "same_spot_pairs": len(pairs),
        "same_spot_told_apart": told_apart,
        "staff_visits": staff_counted,
    }
