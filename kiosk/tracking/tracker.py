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

A confirmed track whose face disappears where the person is likely still
there (not near an edge of the frame, not walking) *waits* for up to
``reacquire_s``: a shopper who turns to the products or is hidden by someone
passing. A new face that shows up at that place and whose *appearance* (colour
histograms of the clothing below the face and the hair above it; memory
only, dropped with the track, never a face feature) matches continues the
visit (a little less alike is enough at the very spot, at the same size,
where a face turning back from the products appears); anything else starts
a new track. A track that was walking, or was
last seen at an edge, has left the frame and ends after ``max_age_s``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kiosk.config.schema import TrackingConfig, default
from kiosk.vision.detector import box_iou
from kiosk.vision.types import Detection


@dataclass(frozen=True)
class TrackerOptions:
    iou_threshold: float = default(TrackingConfig, "iou_threshold")  # overlap with a track's predicted box
    max_centre_shift: float = 0.9  # else: centre distance below this many box widths (fast movers)
    max_age_s: float = default(TrackingConfig, "max_age_s")  # a track survives this long without a detection
    min_hits: int = default(TrackingConfig, "min_hits")  # matched detections before a track is confirmed
    velocity_smoothing: float = 0.5  # weight of the newest velocity estimate
    size_smoothing: float = 0.4  # weight of the newest box size (a partly hidden face must not shrink the track)
    max_extrapolation_s: float = 1.2  # a coasting track moves on its velocity this long, then waits
    cue_weight: float = 1.5  # how much a clothing-colour difference (0-1) costs against overlap (0-1)
    cue_smoothing: float = 0.2  # weight of the newest cue in the track's running cue
    merge_iou: float = 0.3  # a tentative track this close to a missed confirmed track ...
    merge_cue: float = 0.12  # ... with a cue this similar is that track reappearing
    partial_ratio: float = 0.8  # a detection this much narrower than its track is a partly hidden face
    reacquire_s: float = default(TrackingConfig, "reacquire_s")  # a face lost where its person stays waits this long
    reacquire_distance: float = 1.0  # a face reappearing within this many box widths of where it was lost ...
    reacquire_size: float = 1.5  # ... at a size within this factor of it ...
    reacquire_similarity: float = 0.75  # ... and an appearance at least this similar (0-1) continues the track
    # a shopper who turns back from the products shows her face where it was, at its size: at that
    # very spot (within this many widths, at a size within this factor) a little less appearance
    # evidence is enough, as the place itself is evidence (store scenes, seeds 1-11: first looks there
    # scored 0.70-0.75 4 times in 240 for her, once in 16 for somebody else)
    reacquire_spot_distance: float = 0.1
    reacquire_spot_size: float = 1.15
    reacquire_spot_similarity: float = 0.70
    # while the place where a waiting track was lost still shows its person (turned away, still
    # there), only a face within this many box widths of that place along the shelf (horizontally)
    # continues it: a face further off is somebody else beside them (a shopper who turns back shows
    # the face where the back of the head was; its box may sit higher or lower, the place does not move)
    present_distance: float = 0.4
    edge_margin: float = 0.05  # lost with its box this close to a frame edge (box widths): left the frame
    # Box widths per second over the last matches; faster than this when lost: walking on, not waiting.
    # A shopper browsing walks at 0.5-1.4 m/s, 3-9 face widths a second (a face is about 0.15 m);
    # the box of a small face that turns to the shelf drifts by a third of its width within the
    # half second of the turn (up to 0.7 widths a second; 0.64 measured on a 40 px face), so 0.5
    # (before 2026-12-04) let a turn-away end the visit. One who walks off slowly instead leaves
    # their place empty, and the wait ends there at once (``vacant``).
    still_speed: float = 1.5
    edge_still_speed: float = 0.2  # at the frame's edge, faster than this when lost: stepping out of view
    appearance_interval_s: float = 0.5  # a track's appearance is refreshed at most this often
    # A face's size changes little from one frame to the next (walking towards a shelf camera at
    # 1 m/s from 2 m grows it by about 50% a second, 3% a frame; the detector's jitter is ~10%, up
    # to a third on a 40 px face): a detection this much larger than the track it would continue is somebody else,
    # typically a nearer shopper stepping in front of one who just turned away. Per second of
    # absence the bound widens by max_size_growth_per_s.
    # Only a confident detection is held to it: the side or back of a turning head is found in a
    # box up to 1.7x larger at a score of 0.3-0.6 (measured on the store scenes), a newcomer's
    # frontal face at 0.85 or more.
    max_size_jump: float = 1.4
    max_size_growth_per_s: float = 0.5
    size_jump_min_score: float = 0.7
    # A confirmed track missed this long is continued by a detection only if it also looks like
    # its person (appearance at least reacquire_similarity): in the second after a shopper turns
    # away, the face that shows up at their place is often a newcomer passing over it. A walker
    # crosses 3-7 of their own face widths a second, so within a quarter of a second a passer-by
    # can be at the place; a frontal face the detector misses comes back within a frame or two
    # (under 0.2 s at 15 fps), so those keep their track whatever the colours (a lighting step).
    # (0.5 s before 2026-12-03: a newcomer walking in 0.4 s after a shopper turned aside took the track.)
    recheck_after_s: float = 0.25
    # Within that quarter second, a detection further from where a standing track's face was last
    # seen than max_jump box widths plus max_head_speed widths per second since then must look
    # like its person too: a head moves at most about 0.3 m/s while its shopper stands (leaning to
    # a product; a face is about 0.15 m wide: 2 widths a second, 0.13 between two frames at 15
    # fps), the detector's box jitters by about a tenth of its width, while a passer-by walking in
    # front of a standing shopper is 0.2-0.5 widths away from their face in the next frame (3-7
    # widths a second) and used to take their track along.
    max_jump: float = 0.1
    max_head_speed: float = 2.0
    turn_shift: float = 0.3  # a weak box (the side of a turning head) sits up to this much further off
    # A walker lost mid-frame (walking behind other shoppers to a spot, or on past them) whose face
    # shows again starts a new track ahead on its way; when the lost track ends (max_age_s), the
    # earliest confirmed track begun since it was last seen continues it if it is ahead on its line
    # of walk (from walk_on_back widths behind its last place to as far as its speed takes it in
    # the time between, plus walk_on_margin widths: it may have slowed or the first box lags), within
    # walk_on_across widths of that line, at its size (reacquire_size) and in clothes of its colour
    # (mean clothing colour within walk_on_cue) or looking like its person (appearance at least
    # reacquire_similarity: the clothes' mean is off while others hide part of them; the colour is
    # the closest of the running means' and of the last 32 whole faces' cues on either side, so
    # the clothes as seen uncovered at some moment of the walk count). Measured on
    # the store scenes: the same walker's young track was 0-2.5 widths beyond the walk's reach and
    # 0-0.55 widths off its line, its clothing mean 0.01-0.06 away when the clothes were not
    # hidden (up to 0.18 when they were); other people's confirmed tracks within that reach and line
    # 0.08-0.56 away.
    walk_on_back: float = 0.5
    walk_on_margin: float = 2.0
    walk_on_across: float = 0.6
    walk_on_cue: float = 0.06
    # A face that shows up at a waiting track's place as a walker lost on its way there (behind other
    # shoppers, within max_age_s) would: on its line (walk_on_across), at its size, from at least
    # arrival_from widths away, stopped short of where its walk would have taken it by now and no
    # more than arrival_window_s before, and looking at least as much like that walker as like the
    # waiting person, is that walker arriving: a newcomer who took the spot, not the waiting person
    # turning back (who stood there and did not walk in). The waiting track ends (a newcomer where
    # its person stood: they left). Not when the face is just where another lost walker's walk has
    # taken it (walk_on_back to walk_on_margin widths about that place): that one walking on past.
    arrival_window_s: float = 1.0
    arrival_from: float = 1.0


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
    last_face: Detection | None = None  # the latest whole face matched (not weak, not partly hidden)
    cue: np.ndarray | None = None  # running mean clothing colour (BGR, 0-1)
    last_cue: np.ndarray | None = None  # the latest detection's cue
    cues: deque = field(default_factory=lambda: deque(maxlen=32))  # the cues of the last whole faces matched
    appearance: np.ndarray | None = None  # running colour histograms (clothing, hair); see appearance()
    appearance_t: float = float("-inf")
    trail: deque = field(default_factory=lambda: deque(maxlen=64))  # (t, cx, cy) of the last matches
    weak: bool = False  # matched to a weak detection in the latest update
    waiting: bool = False  # lost where the person is likely still there: may be continued by its appearance
    reacquired: int = 0  # times the face came back after a wait

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
    return box_iou(corners(a), corners(b))


def corners(b: list[float]) -> tuple[float, float, float, float]:
    """A centre/size box (cx, cy, w, h) as corners (x0, y0, x1, y1)."""
    return (b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2)


def appearance_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two appearance histograms (each normalised to sum 1 per
    region): 1 for the same colours, near 0 for unrelated ones."""
    return float(np.sqrt(a * b).sum() / max(1.0, float(a.sum())))


AppearanceFn = Callable[[Detection], "np.ndarray | None"]


def _offset(tr: Track, box: np.ndarray) -> tuple[float, float]:
    """How far a face box (cx, cy, w, h) is from ``tr``'s box, in its widths, and its size against it."""
    shift = math.hypot(box[0] - tr.box[0], box[1] - tr.box[1]) / max(float(tr.box[2]), 1.0)
    return shift, float(box[2]) / max(float(tr.box[2]), 1e-6)


def _along_across(tr: Track, ux: float, uy: float, x: float, y: float) -> tuple[float, float]:
    """Where the point (x, y) lies from ``tr``'s last place, in its box widths: along its walk's
    direction (ux, uy) and (unsigned) across it."""
    _t, x1, y1 = tr.trail[-1]
    width = max(float(tr.box[2]), 1.0)
    dx, dy = (x - x1) / width, (y - y1) / width
    return dx * ux + dy * uy, abs(dy * ux - dx * uy)


def _once_per_detection(appearance: AppearanceFn | None) -> AppearanceFn | None:
    """``appearance`` computed at most once per detection (one update looks at a face from several
    rules: the continuation check, the merge, the reacquisition, the refresh)."""
    if appearance is None:
        return None
    memo: dict[int, tuple[Detection, np.ndarray | None]] = {}

    def look(det: Detection) -> np.ndarray | None:
        hit = memo.get(id(det))
        if hit is None or hit[0] is not det:
            hit = memo[id(det)] = (det, appearance(det))
        return hit[1]

    return look


@dataclass(frozen=True)
class TrackerUpdate:
    active: tuple[Track, ...]  # tracks alive after this update (confirmed or not)
    ended: tuple[Track, ...]  # tracks that exceeded max_age (or their wait) in this update
    merged: tuple[int, ...] = ()  # ids of tentative tracks folded back into the confirmed track they were
    reacquired: tuple[int, ...] = ()  # ids of waiting tracks whose face came back in this update
    absorbed: tuple[tuple[int, int], ...] = ()  # (young id, waiting id): a young track was that person back


class Tracker:
    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = options or TrackerOptions()
        self._tracks: list[Track] = []
        self._next_id = 1
        self._present: frozenset[int] = frozenset()  # this update's waiting tracks whose person is still seen
        self._taken: set[int] = set()  # this update's waiting tracks whose place a newcomer walked in to

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
        *,
        followed: dict[int, tuple[Detection, np.ndarray | None]] | None = None,
        probed: dict[int, tuple[Detection, np.ndarray | None]] | None = None,
        frame_size: tuple[int, int] | None = None,
        appearance: AppearanceFn | None = None,
        vacant: frozenset[int] = frozenset(),
        present: frozenset[int] = frozenset(),
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

        Waiting tracks take no part in that matching: a face left over may continue one only
        through :meth:`_reacquire` (the place and the appearance). ``frame_size`` (width,
        height) tells where the edges are; ``appearance(detection)`` gives a detection's
        appearance histograms, and is called only when needed (bounded per track).
        ``followed`` (track id -> (detection, cue)) are faces found again without the detector,
        by the face mesh on each track's own predicted place: they continue that track only.
        ``probed`` (the same form) are faces found by the mesh where a missed or waiting track was
        last seen, and that look like its person: each continues (or ends the wait of) that track only.
        ``vacant`` names waiting tracks whose place shows the empty scene again: their person has
        left, and they end now (at their last sighting, so the wait is not counted). ``present``
        names waiting tracks whose place still shows their person (turned away there): a face
        continues one of them only at that very place (``present_distance``).
        """
        o = self.options
        self._present = present
        self._taken = set()
        appearance = _once_per_detection(appearance)
        cues = cues if cues is not None else [None] * len(detections)
        dets = [(d, _cxcywh(d), c) for d, c in zip(detections, cues)]
        used_t: set[int] = set()
        used_d: set[int] = set()
        reacquired_by_probe: list[int] = []
        for ti, tr in enumerate(self._tracks):
            if followed and tr.id in followed and not tr.waiting:
                det, cue = followed[tr.id]
                used_t.add(ti)
                self._match(tr, det, _cxcywh(det), cue, t)
            elif probed and tr.id in probed and tr.detection is None and self.confirmed(tr):
                det, cue = probed[tr.id]
                if tr.waiting and self._newcomer(det, _cxcywh(det), t, tr, appearance):
                    self._taken.add(tr.id)  # the face at the place is a newcomer walking in (arrival_window_s)
                    continue
                used_t.add(ti)
                if tr.waiting:
                    reacquired_by_probe.append(tr.id)
                self._resume(tr, det, _cxcywh(det), cue, t)
        seen_last = [ti for ti, tr in enumerate(self._tracks) if tr.detection is not None]
        missed = [ti for ti, tr in enumerate(self._tracks) if tr.detection is None and not tr.waiting]
        for stage in (seen_last, missed):
            free = [di for di in range(len(dets)) if di not in used_d]
            self._assign(
                [self._tracks[ti] for ti in stage],
                stage,
                [dets[di] for di in free],
                free,
                t,
                used_t,
                used_d,
                lambda ti, di: self._match(self._tracks[ti], *dets[di], t),
                allow=lambda ti, di: self._looks_like(self._tracks[ti], dets[di][0], t, appearance),
            )
        weak_cues = weak_cues if weak_cues is not None else [None] * len(weak)
        weak_dets = [(d, _cxcywh(d), c) for d, c in zip(weak, weak_cues)]
        left = [
            ti for ti, tr in enumerate(self._tracks) if ti not in used_t and tr.hits >= o.min_hits and not tr.waiting
        ]
        self._assign(
            [self._tracks[ti] for ti in left],
            left,
            weak_dets,
            list(range(len(weak_dets))),
            t,
            used_t,
            set(),
            lambda ti, wi: self._match(self._tracks[ti], *weak_dets[wi], t, weak=True),
            # a track missed for a while is continued by a weak face only if it looks like its person:
            # its prediction may have coasted onto somebody standing in its way
            allow=lambda ti, wi: self._looks_like(self._tracks[ti], weak_dets[wi][0], t, appearance, strong=False),
            strong=False,
        )
        for ti, tr in enumerate(self._tracks):
            if ti not in used_t:
                tr.detection = None
        reacquired = tuple(reacquired_by_probe) + self._reacquire(t, dets, used_d, appearance)
        for di, (det, box, cue) in enumerate(dets):
            if di not in used_d:
                self._tracks.append(
                    Track(id=self._next_id, box=box, first_seen=t, last_seen=t, detection=det, cue=cue, last_cue=cue)
                )
                self._next_id += 1
        merged = self._merge_reappeared(t, appearance)
        self._drop_inner_faces(t)
        if appearance is not None:
            self._refresh_appearance(t, appearance)
        absorbed = self._absorb_young(t, appearance)
        ended = []
        taken: set[int] = set()  # young tracks a lost walker went on as (below)
        for tr in list(self._tracks):
            if tr.id in taken:
                continue
            lost_for = t - tr.last_seen
            if tr.waiting:
                if lost_for > o.reacquire_s or tr.id in vacant or tr.id in self._taken:
                    ended.append(tr)
            elif lost_for > o.max_age_s:
                if o.reacquire_s > o.max_age_s and self.confirmed(tr) and self._still_there(tr, frame_size):
                    tr.waiting = True
                elif self.confirmed(tr) and (young := self._walked_on(tr, t)) is not None:
                    self._take_over(tr, young)
                    taken.add(young.id)
                    absorbed += ((young.id, tr.id),)
                elif self.confirmed(tr) and self._walked_on(tr, t, confirmed=False) is not None:
                    pass  # her face ahead on her way is not confirmed yet: decided once it is, or is gone
                else:
                    ended.append(tr)
        if ended:
            gone = {id(tr) for tr in ended}
            self._tracks = [tr for tr in self._tracks if id(tr) not in gone]
        return TrackerUpdate(
            active=tuple(self._tracks), ended=tuple(ended), merged=merged, reacquired=reacquired, absorbed=absorbed
        )

    def _still_there(self, tr: Track, frame_size: tuple[int, int] | None) -> bool:
        """Lost mid-frame and standing: the person most likely turned away or is hidden."""
        o = self.options
        cx, cy, w, h = tr.box.tolist()
        speed = self._recent_speed(tr)
        if frame_size is not None:
            fw, fh = frame_size
            margin = o.edge_margin * w
            at_edge = cx - w / 2 < margin or cy - h / 2 < margin or cx + w / 2 > fw - margin or cy + h / 2 > fh - margin
            if at_edge and speed > o.edge_still_speed:
                return False  # partly out of the frame and moving: on the way out
        # standing, even cut by the frame's edge (a shopper at the edge of the view turns to the
        # shelf too): wait; if they stepped out instead, their place shows the empty scene and the
        # wait ends at once (``vacant``), at their last sighting
        return speed <= o.still_speed and tr.appearance is not None

    @staticmethod
    def _recent_walk(
        tr: Track,
        window_s: float = 1.0,
        until: float | None = None,
        min_matches: int = 2,
        min_span_s: float = 0.3,
        min_widths: float = 0.0,
    ) -> tuple[float, float, float] | None:
        """The face's displacement over its last second of matches (up to ``until``, default its
        last match): (unit direction x, y, speed in box widths per second), speed 0 with direction
        (0, 0) when it did not move; None when the trail is too short to tell (under ``min_matches``
        matches or ``min_span_s``) or it moved less than ``min_widths`` box widths."""
        recent = [p for p in tr.trail if p[0] >= (tr.last_seen if until is None else until) - window_s]
        if len(recent) < min_matches or recent[-1][0] - recent[0][0] < min_span_s:
            return None
        (t0, x0, y0), (t1, x1, y1) = recent[0], recent[-1]
        width = max(float(tr.box[2]), 1.0)
        step = math.hypot(x1 - x0, y1 - y0)
        if step < min_widths * width:
            return None
        if step == 0.0:
            return 0.0, 0.0, 0.0
        return (x1 - x0) / step, (y1 - y0) / step, step / (t1 - t0) / width

    @staticmethod
    def _recent_speed(tr: Track, window_s: float = 1.0, until: float | None = None) -> float:
        """How far the face moved over its last second of matches, in box widths per second (a
        walker's displacement; the frame-to-frame velocity of a face turning away jumps)."""
        walk = Tracker._recent_walk(tr, window_s, until)
        return 0.0 if walk is None else walk[2]

    def _standing(self, tr: Track, window_s: float = 2.0) -> bool:
        """Seen standing over the two seconds before its face was last seen whole (at least half a
        second of them): a face that has only just come into view, or walks, is not. Weak and
        partial matches do not count: they show a turning head, part of it, or somebody else, and
        a chain of them must not make a shopper who turned away look like a face just come in."""
        if not tr.trail:
            return False
        until = tr.trail[-1][0]
        recent = [p for p in tr.trail if p[0] >= until - window_s]
        return (
            len(recent) >= 2
            and recent[-1][0] - recent[0][0] >= 0.5
            and self._recent_speed(tr, window_s, until) <= self.options.still_speed
        )

    def _reacquire(
        self, t: float, dets: list[tuple], used_d: set[int], appearance: AppearanceFn | None
    ) -> tuple[int, ...]:
        """Faces left over that show up where a waiting track was lost, at its size and with its
        appearance, continue that track (best similarity first)."""
        o = self.options
        waiting = [tr for tr in self._tracks if tr.waiting]
        if not waiting or appearance is None:
            return ()
        pairs = []
        for di, (det, box, _cue) in enumerate(dets):
            if di in used_d:
                continue
            for tr in waiting:
                if not self._where_lost(tr, box):
                    continue
                if self._newcomer(det, box, t, tr, appearance):
                    self._taken.add(tr.id)  # a newcomer walked in to the place: its person has left
                    continue
                look = appearance(det)
                if look is None or tr.appearance is None:
                    continue
                sim = appearance_similarity(look, tr.appearance)
                if sim >= (o.reacquire_spot_similarity if self._at_spot(tr, box) else o.reacquire_similarity):
                    pairs.append((sim, di, tr))
        done: list[int] = []
        for _sim, di, tr in sorted(pairs, key=lambda p: -p[0]):
            if di in used_d or not tr.waiting:
                continue
            used_d.add(di)
            det, box, cue = dets[di]
            self._resume(tr, det, box, cue, t)
            done.append(tr.id)
        return tuple(done)

    def _resume(self, tr: Track, det: Detection, box: np.ndarray, cue: np.ndarray | None, t: float) -> None:
        """Continue a track whose face was lost (missed or waiting) with a face found again at its
        place: a wait ends (and counts as one more reacquisition); the person stood, so no velocity."""
        if tr.waiting:
            tr.waiting = False
            tr.reacquired += 1
        tr.velocity = np.zeros(2)
        self._match(tr, det, box, cue, t)

    def _size_limit(self, tr: Track, t: float) -> float:
        """The widest a confident face (score >= size_jump_min_score) may be to continue ``tr`` at
        ``t``; wider is somebody nearer (see max_size_jump). Smaller is allowed: a face partly hidden."""
        o = self.options
        return o.max_size_jump * (1.0 + o.max_size_growth_per_s * max(0.0, t - tr.last_seen)) * float(tr.box[2])

    def _looks_like(
        self, tr: Track, det: Detection, t: float, appearance: AppearanceFn | None, strong: bool = True
    ) -> bool:
        """Whether a detection may continue a confirmed track: one missed for recheck_after_s or
        more, or one standing whose face the detection would move further than a head moves in
        that time, must look like the track's person (a newcomer passing over the place of a
        shopper who just turned away, or walking in front of one, must not take their track over).
        True when there is nothing to compare."""
        o = self.options
        if appearance is None or tr.appearance is None or not self.confirmed(tr):
            return True
        lost_for = t - tr.last_seen
        if lost_for < o.recheck_after_s:
            if not self._standing(tr):
                return True  # a walker, or a face only just in view: where its walk takes it
            cx, cy = det.box.center
            shift = math.hypot(cx - float(tr.box[0]), cy - float(tr.box[1])) / max(float(tr.box[2]), 1.0)
            turn = 0.0 if strong else o.turn_shift
            if shift <= o.max_jump + turn + o.max_head_speed * lost_for:
                return True  # where the face was a moment ago: the same face, whatever the colours
        if det.box.width < o.partial_ratio * tr.box[2] and self._within_face(tr, det, t):
            return True  # a partly hidden face shows someone else's clothes below it
        look = appearance(det)
        return look is None or appearance_similarity(look, tr.appearance) >= o.reacquire_similarity

    def _within_face(self, tr: Track, det: Detection, t: float) -> bool:
        """Whether a narrower box lies where part of ``tr``'s face would show: inside its predicted
        box, give or take ``max_jump`` plus ``turn_shift`` widths (the detector's jitter and a head
        turning). A partly hidden face is what is left of that face, not a face beside it: a
        passer-by's smaller face a width away from a shopper who just turned aside is not part of
        hers, and must look like her to take her track."""
        o = self.options
        px, py, pw, ph = tr.predicted(t, o.max_extrapolation_s).tolist()
        cx, cy = det.box.center
        slack = o.max_jump + o.turn_shift
        return (
            abs(cx - px) <= max(0.0, pw - det.box.width) / 2 + slack * pw
            and abs(cy - py) <= max(0.0, ph - det.box.height) / 2 + slack * ph
        )

    def _where_lost(self, waiting: Track, box: np.ndarray) -> bool:
        """Whether a face box (cx, cy, w, h) is at the place and size where ``waiting`` was lost
        (at the very place along the shelf while it still shows its person: nobody is in two places)."""
        o = self.options
        shift, ratio = _offset(waiting, box)
        if waiting.id in self._present and abs(box[0] - waiting.box[0]) > o.present_distance * waiting.box[2]:
            return False  # beside the place: the face of someone standing next to them
        return shift <= o.reacquire_distance and 1 / o.reacquire_size <= ratio <= o.reacquire_size

    def _at_spot(self, waiting: Track, box: np.ndarray) -> bool:
        """Whether a face box is at the very spot where ``waiting`` was lost, at its size (see
        reacquire_spot_distance): where a shopper's face comes back after she looked at the products."""
        o = self.options
        shift, ratio = _offset(waiting, box)
        return shift <= o.reacquire_spot_distance and 1 / o.reacquire_spot_size <= ratio <= o.reacquire_spot_size

    def _absorb_young(self, t: float, appearance: AppearanceFn | None) -> tuple[tuple[int, int], ...]:
        """A face that came back before its track began to wait (while the track was still only
        missing) has started a track of its own; once that young track is seen where a waiting
        track was lost, with its appearance, and standing there (:meth:`_stands`: not a look-alike
        walking across the place), the waiting track takes it over (its time included). Not a
        waiting track a newcomer has just walked in to (:meth:`_newcomer`): it ends."""
        o = self.options
        waiting = [tr for tr in self._tracks if tr.waiting and tr.appearance is not None and tr.id not in self._taken]
        if not waiting or appearance is None:
            return ()
        absorbed = []
        for w in waiting:
            best, best_sim = None, o.reacquire_similarity
            for y in self._tracks:
                if y.waiting or y is w or y.detection is None or y.weak or y.first_seen <= w.last_seen:
                    continue
                if not self._where_lost(w, y.box) or not self._stands(y):
                    continue
                look = y.appearance if y.appearance is not None else appearance(y.detection)
                if look is None:
                    continue
                sim = appearance_similarity(look, w.appearance)
                if sim >= best_sim:
                    best, best_sim = y, sim
            if best is None:
                continue
            w.waiting = False
            w.reacquired += 1
            self._take_over(w, best)
            absorbed.append((best.id, w.id))
        return tuple(absorbed)

    def _stands(self, y: Track) -> bool:
        """Whether a young track has been seen long enough to tell that it stands (``_recent_walk``'s
        shortest span) and does: a shopper turning back to the camera stands at their place, a
        passer-by walking across it does not."""
        walk = self._recent_walk(y)
        return walk is not None and walk[2] <= self.options.still_speed

    def _take_over(self, w: Track, y: Track) -> None:
        """``w``'s person is back as the younger track ``y``: ``w`` goes on from ``y``'s state (its
        time included) and ``y`` is dropped."""
        w.hits += y.hits
        w.box, w.velocity, w.last_seen, w.detection = y.box.copy(), y.velocity.copy(), y.last_seen, y.detection
        w.cue, w.last_cue, w.weak = y.cue, y.last_cue, y.weak
        w.last_face = y.last_face if y.last_face is not None else w.last_face
        if y.appearance is not None:
            w.appearance, w.appearance_t = y.appearance, y.appearance_t
        w.trail.extend(y.trail)
        w.cues.extend(y.cues)
        self._tracks.remove(y)

    def _newcomer(
        self, det: Detection, box: np.ndarray, t: float, waiting: Track, appearance: AppearanceFn | None
    ) -> bool:
        """Whether a face at ``waiting``'s place is a newcomer walking in (:meth:`_arriving_walkers`)
        rather than its person back: a walker arriving there that it looks at least as much like as
        like the waiting person (either alone when an appearance is missing)."""
        walkers = self._arriving_walkers(box, t)
        if not walkers:
            return False
        look = appearance(det) if appearance is not None else None
        if look is None or waiting.appearance is None:
            return True
        own = appearance_similarity(look, waiting.appearance)
        return any(w.appearance is None or appearance_similarity(look, w.appearance) >= own for w in walkers)

    def _arriving_walkers(self, box: np.ndarray, t: float) -> list[Track]:
        """The walkers lost on their way (within ``max_age_s``) that the face box (cx, cy, w, h) could be
        arriving: on the line of walk (``walk_on_across``) and at its size, walked in from at least
        ``arrival_from`` widths away and stopped there, short of where its walk would have taken it by
        ``t`` and no more than ``arrival_window_s`` before. Not when the face is where another lost
        walker's walk has just taken it (``walk_on_back`` to ``walk_on_margin`` widths about that
        place): that one walking on past the place."""
        o = self.options
        arriving: set[int] = set()
        walking_on: set[int] = set()
        for tr in self._tracks:
            lost_for = t - tr.last_seen
            if tr.waiting or tr.detection is not None or not 0.0 < lost_for <= o.max_age_s or not tr.trail:
                continue
            walk = self._arrival_walk(tr)
            if walk is None or walk[2] < o.still_speed:
                continue
            ux, uy, speed = walk
            width = max(float(tr.box[2]), 1.0)
            along, across = _along_across(tr, ux, uy, float(box[0]), float(box[1]))
            if across > o.walk_on_across or not 1 / o.reacquire_size <= box[2] / width <= o.reacquire_size:
                continue
            reach = speed * lost_for
            if max(o.arrival_from, reach - speed * o.arrival_window_s) <= along <= reach:
                arriving.add(tr.id)
            if reach - o.walk_on_back <= along <= reach + o.walk_on_margin:
                walking_on.add(tr.id)
        return [tr for tr in self._tracks if tr.id in arriving and not walking_on - {tr.id}]

    @staticmethod
    def _arrival_walk(tr: Track) -> tuple[float, float, float] | None:
        """:meth:`_recent_walk`, or for a face seen only for a moment (three matches at least, a
        tenth of a second, half a width covered: a walker glimpsed between other shoppers) its walk
        over that moment."""
        walk = Tracker._recent_walk(tr)
        if walk is not None:
            return walk
        return Tracker._recent_walk(tr, min_matches=3, min_span_s=0.1, min_widths=0.5)

    def _walked_on(self, tr: Track, t: float, confirmed: bool = True) -> Track | None:
        """The face a walker lost mid-frame (behind other shoppers) showed again as: the earliest
        confirmed track that began after it was last seen, ahead on its walk (no further than its
        speed takes it, plus ``walk_on_margin``, and within ``walk_on_across`` widths of its line),
        at its size and in clothes of its colour (``walk_on_cue``: the closest of either side's running
        mean and recent cues) or looking like its person. None when no track is. With ``confirmed``
        false, a young track not yet confirmed counts too: a small face walking on is found only now
        and then, and the walker waits for it (within ``max_age_s`` of the loss it must have begun,
        and a young track unseen for ``max_age_s`` ends, so that wait is bounded)."""
        o = self.options
        walk = self._recent_walk(tr)
        if walk is None or walk[2] == 0.0 or tr.cue is None:
            return None
        ux, uy, speed = walk
        width = max(float(tr.box[2]), 1.0)
        best = None
        for y in self._tracks:
            if y is tr or y.waiting or y.first_seen <= tr.last_seen or y.cue is None:
                continue
            if confirmed and not self.confirmed(y):
                continue
            if not y.trail or y.first_seen - tr.last_seen > o.max_age_s:
                continue
            _t, fx, fy = y.trail[0]
            along, across = _along_across(tr, ux, uy, fx, fy)
            ratio = float(y.box[2]) / width
            if not (-o.walk_on_back <= along <= speed * (y.first_seen - tr.last_seen) + o.walk_on_margin):
                continue
            if across > o.walk_on_across or not 1 / o.reacquire_size <= ratio <= o.reacquire_size:
                continue
            mine, theirs = [tr.cue, *tr.cues], [y.cue, *y.cues]
            closest = min(float(np.linalg.norm(a - b)) for a in mine for b in theirs) / math.sqrt(3.0)
            if closest > o.walk_on_cue and not (
                y.appearance is not None
                and tr.appearance is not None
                and appearance_similarity(y.appearance, tr.appearance) >= o.reacquire_similarity
            ):
                continue
            if best is None or y.first_seen < best.first_seen:
                best = y
        return best

    def _refresh_appearance(self, t: float, appearance: AppearanceFn) -> None:
        """A running mean of each seen track's appearance, refreshed at most every ``appearance_interval_s``
        and only from whole, unhidden faces (a partly hidden face shows someone else below it)."""
        o = self.options
        if o.reacquire_s <= o.max_age_s:
            return
        for tr in self._tracks:
            det = tr.detection
            if (
                det is None
                or tr.weak
                or t - tr.appearance_t < o.appearance_interval_s
                or det.box.width < o.partial_ratio * tr.box[2]
            ):
                continue
            look = appearance(det)
            if look is None:
                continue
            tr.appearance_t = t
            tr.appearance = look if tr.appearance is None else 0.7 * tr.appearance + 0.3 * look

    def _merge_reappeared(self, t: float, appearance: AppearanceFn | None) -> tuple[int, ...]:
        """A face coming out from behind someone often shows first in part (its clothing cue
        hidden too) and starts a new, tentative track; once that track overlaps a confirmed track
        that missed this frame, with a like cue, it is that person again: fold it back."""
        o = self.options
        merged = []
        for tent in [tr for tr in self._tracks if tr.detection is not None and tr.hits < o.min_hits]:
            best, best_iou = None, o.merge_iou
            for tr in self._tracks:
                if tr is tent or tr.detection is not None or tr.hits < o.min_hits or tr.waiting:
                    continue
                if tent.last_cue is not None and tr.cue is not None:
                    if float(np.linalg.norm(tent.last_cue - tr.cue)) / np.sqrt(3.0) > o.merge_cue:
                        continue
                if tent.detection.score >= o.size_jump_min_score:
                    # a face hidden where it stood has not come nearer meanwhile: no growth allowed
                    standing = self._standing(tr)
                    if tent.box[2] > (o.max_size_jump * float(tr.box[2]) if standing else self._size_limit(tr, t)):
                        continue  # somebody nearer
                if not self._looks_like(tr, tent.detection, t, appearance):
                    continue  # somebody else at the place of one who turned away
                iou = _iou_cxcywh(tr.predicted(t, o.max_extrapolation_s).tolist(), tent.box.tolist())
                if iou >= best_iou:
                    best, best_iou = tr, iou
            if best is not None:
                self._match(best, tent.detection, tent.box, tent.cue, t)
                self._tracks.remove(tent)
                merged.append(tent.id)
        return tuple(merged)

    def _drop_inner_faces(self, t: float) -> None:
        """A face found for the first time with its centre inside the box of a face seen in this very
        frame, and not much larger (``max_size_jump``), is a second box on that face (its hair, the back
        of a turned head, an overlapping box from another view), not another person: a face behind
        it would be hidden, one in front nearer and larger. It starts no track. Run after
        :meth:`_merge_reappeared`, so that a part of a face that missed this frame still continues it."""
        o = self.options
        seen = [tr for tr in self._tracks if tr.detection is not None and tr.first_seen < t and not tr.waiting]
        if not seen:
            return

        def inner(new: Track) -> bool:  # a track begun in this update (a single detection) inside a seen face
            cx, cy, w = float(new.box[0]), float(new.box[1]), float(new.box[2])
            return any(
                abs(cx - tr.box[0]) <= tr.box[2] / 2
                and abs(cy - tr.box[1]) <= tr.box[2] / 2
                and w <= o.max_size_jump * tr.box[2]
                for tr in seen
            )

        self._tracks = [tr for tr in self._tracks if tr.first_seen < t or not inner(tr)]

    def flush(self) -> tuple[Track, ...]:
        """End every track (at shutdown or the end of a clip)."""
        ended, self._tracks = tuple(self._tracks), []
        return ended

    def _scores(self, tracks: list[Track], dets: list[tuple], t: float, strong: bool = True) -> list[list[float]]:
        """Scores (tracks x detections): how well each detection continues each track
        (higher is better); -inf where it cannot. A strong detection much larger than the track is
        somebody else; a weak one (the side or back of a turning head, often in a larger box) only
        moves the track and never changes its size, so its size is not held against it.

        Plain floats: a store has a few faces at a time, and numpy's per-call cost is larger
        than the work (at 20 faces, 400 pairs take well under a millisecond).
        """
        o = self.options
        preds = [tr.predicted(t, o.max_extrapolation_s).tolist() for tr in tracks]
        boxes = [d[1].tolist() for d in dets]
        track_cues = [tr.cue.tolist() if tr.cue is not None else None for tr in tracks]
        det_cues = [d[2].tolist() if d[2] is not None else None for d in dets]
        confident = [d[0].score >= o.size_jump_min_score for d in dets]
        root3 = math.sqrt(3.0)
        scores = []
        for tr, p, tc in zip(tracks, preds, track_cues):
            row = []
            limit = self._size_limit(tr, t) if strong else math.inf
            for d, dc, sure in zip(boxes, det_cues, confident):
                if sure and d[2] > limit:
                    row.append(-math.inf)
                    continue
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

    def _assign(self, tracks, track_idx, dets, det_idx, t, used_t, used_d, match, allow=None, strong=True) -> None:
        """Greedy assignment, best score first, of positive-scoring pairs (that ``allow``, when given,
        lets through: it is asked only for the pairs that would be matched)."""
        if not tracks or not dets:
            return
        scores = self._scores(tracks, dets, t, strong)
        pairs = sorted(
            ((s, i, j) for i, row in enumerate(scores) for j, s in enumerate(row) if s > 0.0),
            key=lambda p: (-p[0], p[1], p[2]),
        )
        for _, i, j in pairs:
            ti, di = track_idx[i], det_idx[j]
            if ti in used_t or di in used_d:
                continue
            if allow is not None and not allow(ti, di):
                continue
            used_t.add(ti)
            used_d.add(di)
            match(ti, di)

    def _match(
        self, tr: Track, det: Detection, box: np.ndarray, cue: np.ndarray | None, t: float, weak: bool = False
    ) -> None:
        """Continue ``tr`` with ``det``. A weak detection (a face turning to profile, a blurred one)
        keeps the track alive and moves a walker's box along (never a standing face's: the side of
        a turning head sits off the face, and a box beside a shopper who turned away is often a
        passer-by's), but changes neither its size, its cues nor its trail."""
        o = self.options
        if weak:
            tr.last_seen = t
            tr.hits += 1
            tr.detection = det
            tr.weak = True
            if box[2] >= o.partial_ratio * tr.box[2] and not self._standing(tr):
                tr.box = np.array([box[0], box[1], tr.box[2], tr.box[3]])
            return
        tr.weak = False
        if cue is not None:
            b = o.cue_smoothing
            tr.last_cue = cue
            if box[2] >= o.partial_ratio * tr.box[2]:  # a partly hidden face shows someone else's clothes below it
                tr.cue = cue if tr.cue is None else (1 - b) * tr.cue + b * cue
                tr.cues.append(cue)
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
        tr.trail.append((t, float(box[0]), float(box[1])))
        tr.last_seen = t
        tr.hits += 1
        tr.detection = det
        tr.last_face = det

    def confirmed(self, tr: Track) -> bool:
        return tr.hits >= self.options.min_hits
