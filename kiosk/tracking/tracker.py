"""Multi-face tracker: IoU association with a constant-velocity motion model.

Track ids are small integers that live in memory only and mean nothing
outside this process. A track is *confirmed* after ``min_hits`` matched
detections and *ends* when it has gone unmatched for longer than
``max_age_s`` (seconds on the monotonic clock, so the frame rate may vary).

Where faces cross or pass in front of each other, overlap alone is
ambiguous; each detection may carry a *cue*: the mean colour of the
clothing just below the face (three numbers, kept in memory with the track
and dropped with it; never a face feature, never stored). Assignment
prefers the track whose cue is closest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from kiosk.vision.detector import box_iou
from kiosk.vision.types import Detection


@dataclass(frozen=True)
class TrackerOptions:
    iou_threshold: float = 0.3  # minimum overlap of a detection with a track's predicted box
    max_centre_shift: float = 0.9  # else: centre distance below this many box widths (fast movers)
    max_age_s: float = 2.0  # a track survives this long without a detection
    min_hits: int = 5  # matched detections before a track is confirmed
    velocity_smoothing: float = 0.5  # weight of the newest velocity estimate
    size_smoothing: float = 0.4  # weight of the newest box size (a partly hidden face must not shrink the track)
    max_extrapolation_s: float = 0.5  # a coasting track moves on its velocity this long, then waits
    cue_weight: float = 1.5  # how much a clothing-colour difference (0-1) costs against overlap (0-1)
    cue_smoothing: float = 0.2  # weight of the newest cue in the track's running cue
    merge_iou: float = 0.3  # a tentative track this close to a missed confirmed track ...
    merge_cue: float = 0.12  # ... with a cue this similar is that track reappearing
    partial_ratio: float = 0.8  # a detection this much narrower than its track is a partly hidden face


@dataclass
class Track:
    """A tracked face. Mutable, in memory only; dropped when it ends."""

    id: int
    box: np.ndarray  # cx, cy, w, h in frame pixels
    first_seen: float
    last_seen: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # centre, pixels per second
    hits: int = 1
    detection: Detection | None = None  # the detection matched in the latest update, else None
    cue: np.ndarray | None = None  # running mean clothing colour (BGR, 0-1)
    last_cue: np.ndarray | None = None  # the latest detection's cue

    def predicted(self, t: float, horizon: float = 0.5) -> np.ndarray:
        """Box expected at ``t``: the centre moves on the velocity for at most ``horizon`` seconds."""
        out = self.box.copy()
        out[:2] += self.velocity * min(max(t - self.last_seen, 0.0), horizon)
        return out


def _cxcywh(det: Detection) -> np.ndarray:
    b = det.box
    return np.array([(b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2, b.width, b.height])


def _iou_cxcywh(a: list[float], b: list[float]) -> float:
    """Intersection over union of two centre/size boxes (cx, cy, w, h)."""
    return box_iou(_corners(a), _corners(b))


def _corners(b: list[float]) -> tuple[float, float, float, float]:
    return (b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2)


@dataclass(frozen=True)
class TrackerUpdate:
    active: tuple[Track, ...]  # tracks alive after this update (confirmed or not)
    ended: tuple[Track, ...]  # tracks that exceeded max_age in this update
    merged: tuple[int, ...] = ()  # ids of tentative tracks folded back into the confirmed track they were


class Tracker:
    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = options or TrackerOptions()
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def tracks(self) -> tuple[Track, ...]:
        return tuple(self._tracks)

    def update(
        self,
        t: float,
        detections: list[Detection],
        cues: list[np.ndarray | None] | None = None,
        weak: list[Detection] = (),
        weak_cues: list[np.ndarray | None] | None = None,
    ) -> TrackerUpdate:
        """Associate this frame's detections and age the rest.

        A pair qualifies on overlap with the track's predicted box, or, for fast
        movers, on a centre shift below ``max_centre_shift`` box widths at a similar
        size; clothing-colour cues lower the score of unlike pairs. Matching is a
        cascade: tracks seen in the previous update choose first (greedy, best score
        first), then tracks that were missed, so that a face hidden behind a passer-by
        does not take the passer-by's detection. Finally ``weak`` detections (scored
        below the detection threshold) may continue confirmed tracks left unmatched,
        but never start a track (ByteTrack's second association).
        """
        o = self.options
        cues = cues if cues is not None else [None] * len(detections)
        dets = [(d, _cxcywh(d), c) for d, c in zip(detections, cues)]
        used_t: set[int] = set()
        used_d: set[int] = set()
        seen_last = [ti for ti, tr in enumerate(self._tracks) if tr.detection is not None]
        missed = [ti for ti, tr in enumerate(self._tracks) if tr.detection is None]
        for stage in (seen_last, missed):
            free = [di for di in range(len(dets)) if di not in used_d]
            self._assign([self._tracks[ti] for ti in stage], stage, [dets[di] for di in free], free, t, used_t, used_d,
                          lambda ti, di: self._match(self._tracks[ti], *dets[di], t))
        weak_cues = weak_cues if weak_cues is not None else [None] * len(weak)
        weak_dets = [(d, _cxcywh(d), c) for d, c in zip(weak, weak_cues)]
        left = [ti for ti, tr in enumerate(self._tracks) if ti not in used_t and tr.hits >= o.min_hits]
        self._assign([self._tracks[ti] for ti in left], left, weak_dets, list(range(len(weak_dets))), t, used_t, set(),
                     lambda ti, wi: self._match(self._tracks[ti], *weak_dets[wi], t))
        for ti, tr in enumerate(self._tracks):
            if ti not in used_t:
                tr.detection = None
        for di, (det, box, cue) in enumerate(dets):
            if di not in used_d:
                self._tracks.append(
                    Track(id=self._next_id, box=box, first_seen=t, last_seen=t, detection=det, cue=cue, last_cue=cue)
                )
                self._next_id += 1
        merged = self._merge_reappeared(t)
        ended = tuple(tr for tr in self._tracks if t - tr.last_seen > o.max_age_s)
        if ended:
            self._tracks = [tr for tr in self._tracks if t - tr.last_seen <= o.max_age_s]
        return TrackerUpdate(active=tuple(self._tracks), ended=ended, merged=merged)

    def _merge_reappeared(self, t: float) -> tuple[int, ...]:
        """A face coming out from behind someone often shows first in part (its clothing cue
        hidden too) and starts a new, tentative track; once that track overlaps a confirmed track
        that missed this frame, with a like cue, it is that person again: fold it back."""
        o = self.options
        merged = []
        for tent in [tr for tr in self._tracks if tr.detection is not None and tr.hits < o.min_hits]:
            best, best_iou = None, o.merge_iou
            for tr in self._tracks:
                if tr is tent or tr.detection is not None or tr.hits < o.min_hits:
                    continue
                if tent.last_cue is not None and tr.cue is not None:
                    if float(np.linalg.norm(tent.last_cue - tr.cue)) / np.sqrt(3.0) > o.merge_cue:
                        continue
                iou = _iou_cxcywh(tr.predicted(t, o.max_extrapolation_s).tolist(), tent.box.tolist())
                if iou >= best_iou:
                    best, best_iou = tr, iou
            if best is not None:
                self._match(best, tent.detection, tent.box, tent.cue, t)
                self._tracks.remove(tent)
                merged.append(tent.id)
        return tuple(merged)

    def flush(self) -> tuple[Track, ...]:
        """End every track (at shutdown or the end of a clip)."""
        ended, self._tracks = tuple(self._tracks), []
        return ended

    def _scores(self, tracks: list[Track], dets: list[tuple], t: float) -> list[list[float]]:
        """Scores (tracks x detections): how well each detection continues each track
        (higher is better); -inf where it cannot.

        Plain floats: a store has a few faces at a time, and numpy's per-call cost is larger
        than the work (at 20 faces, 400 pairs take well under a millisecond).
        """
        o = self.options
        preds = [tr.predicted(t, o.max_extrapolation_s).tolist() for tr in tracks]
        boxes = [d[1].tolist() for d in dets]
        track_cues = [tr.cue.tolist() if tr.cue is not None else None for tr in tracks]
        det_cues = [d[2].tolist() if d[2] is not None else None for d in dets]
        root3 = math.sqrt(3.0)
        scores = []
        for p, tc in zip(preds, track_cues):
            row = []
            for d, dc in zip(boxes, det_cues):
                iou = _iou_cxcywh(p, d)
                if iou >= o.iou_threshold:
                    score = iou
                else:
                    shift = math.hypot(p[0] - d[0], p[1] - d[1]) / max(p[2], d[2], 1.0)
                    ratio = d[2] / max(p[2], 1e-6)
                    near = shift <= o.max_centre_shift and 0.7 <= ratio <= 1.4
                    score = (1.0 - shift / o.max_centre_shift) * o.iou_threshold if near else -math.inf
                if tc is not None and dc is not None:
                    score -= o.cue_weight * math.dist(tc, dc) / root3
                row.append(score)
            scores.append(row)
        return scores

    def _assign(self, tracks, track_idx, dets, det_idx, t, used_t, used_d, match) -> None:
        """Greedy assignment, best score first, of positive-scoring pairs."""
        if not tracks or not dets:
            return
        scores = self._scores(tracks, dets, t)
        pairs = sorted(((s, i, j) for i, row in enumerate(scores) for j, s in enumerate(row) if s > 0.0),
                       key=lambda p: (-p[0], p[1], p[2]))
        for _, i, j in pairs:
            ti, di = track_idx[i], det_idx[j]
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            match(ti, di)

    def _match(self, tr: Track, det: Detection, box: np.ndarray, cue: np.ndarray | None, t: float) -> None:
        o = self.options
        if cue is not None:
            b = o.cue_smoothing
            tr.last_cue = cue
            if box[2] >= o.partial_ratio * tr.box[2]:  # a partly hidden face shows someone else's clothes below it
                tr.cue = cue if tr.cue is None else (1 - b) * tr.cue + b * cue
        if box[2] < o.partial_ratio * tr.box[2]:
            # A partly hidden face: the person is still there, but its box centre and size are off.
            tr.last_seen = t
            tr.hits += 1
            tr.detection = det
            return
        dt = t - tr.last_seen
        if dt > 1e-6:
            a = o.velocity_smoothing
            tr.velocity = a * (box[:2] - tr.box[:2]) / dt + (1 - a) * tr.velocity
        box = box.copy()
        box[2:] = o.size_smoothing * box[2:] + (1 - o.size_smoothing) * tr.box[2:]
        tr.box = box
        tr.last_seen = t
        tr.hits += 1
        tr.detection = det

    def confirmed(self, tr: Track) -> bool:
        return tr.hits >= self.options.min_hits
