"""Per-frame orchestration of the vision stage and the tracker.

Every frame: detect (every ``detect_every``-th frame), drop faces in
exclusion zones *before anything else is inferred*, associate the rest with
tracks, run the face mesh on matched faces for head pose (attention), and
sample emotion, age and gender per track at a bounded rate, preferring
large, frontal, sharp faces. Each track keeps running sums only; when it
ends it becomes a :class:`FinishedTrack` (numbers only) and is forgotten.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from kiosk.config.schema import TrackingConfig, VisitsConfig, default
from kiosk.config.vocabulary import EMOTIONS
from kiosk.tracking.background import SceneBackground
from kiosk.tracking.tracker import Track, Tracker, TrackerOptions, appearance_similarity, corners
from kiosk.vision.detector import COARSE_INPUT_PX, box_iou
from kiosk.vision.frame import VisionFrame
from kiosk.vision.pipeline import VisionPipeline, detection_from_mesh
from kiosk.vision.types import Detection, FaceLandmarks
from kiosk.zones import ZoneMap


@dataclass(frozen=True)
class AttentionOptions:
    """When a face counts as attending: the ``visits`` section of the config."""

    max_yaw_deg: float = default(VisitsConfig, "max_yaw_deg")
    max_pitch_deg: float = default(VisitsConfig, "max_pitch_deg")
    first_reaction_s: float = default(VisitsConfig, "first_reaction_s")  # dominant emotion over this much attention


@dataclass(frozen=True)
class ObserverOptions:
    """How faces are followed and sampled; the configurable fields are the ``tracking`` section's."""

    detect_every: int = default(TrackingConfig, "detect_every")  # the detector on every k-th frame
    attribute_rate_hz: float = default(TrackingConfig, "attribute_rate_hz")  # attribute samples per track per second
    min_sample_face_px: float = default(TrackingConfig, "min_sample_face_px")  # smaller: tracked, not sampled
    # a face is sampled for emotion, age and gender when turned at most this far: wider than the attention
    # limit (visits.max_yaw_deg), since the attribute models hold up to about 35 degrees
    sample_max_yaw_deg: float = 35.0
    sample_max_pitch_deg: float = 30.0
    # longest gap between observations credited to dwell-in-zone; attention is credited only across
    # gaps no longer than this (a face unseen for longer was not looking)
    max_gap_s: float = 0.5
    # The face mesh (head pose, for attention) runs on a detected face at most this often, and
    # whenever an attribute sample is due; a face the detector missed is followed by it every frame
    pose_interval_s: float = 0.1
    max_age_samples: int = 15  # age estimates kept per track for the median
    weak_score: float = 0.3  # detections between this and the detection threshold only continue tracks
    follow_with_mesh: bool = default(TrackingConfig, "follow_with_mesh")  # a missed known face: the mesh where it was
    # A confirmed track missed for probe_lost_s is looked for with the face mesh at the place it was
    # last seen, once every probe_lost_s while it is missed or waiting: a face the detector does not
    # find again after a passer-by has crossed it (a small face, glasses, a striped shelf behind) is
    # followed again. Only a face that looks like the track's person continues it.
    probe_lost_s: float = 0.5
    search_tiles: int = default(TrackingConfig, "search_tiles")  # n > 1: also an n x n grid of tiles, one at a time
    search_tile_every: int = default(TrackingConfig, "search_tile_every")  # one tile every this many detector frames
    whole_frame_every: int = default(TrackingConfig, "whole_frame_every")  # the whole frame every this many
    # A waiting track's place is looked at every vacancy_check_s: when it looks like the empty scene
    # (similarity at least vacancy_similarity, and vacancy_margin more than like its person) at
    # vacancy_checks checks in a row, the person has left and the wait ends (see tracking/background.py).
    vacancy_check_s: float = 0.5
    vacancy_similarity: float = 0.8
    vacancy_margin: float = 0.1
    vacancy_checks: int = 2
    # ... or when the place has changed towards the empty scene: its likeness to the empty scene rose by
    # vacancy_rise over what it was while the face was seen there (the median of the last checks then)
    # to at least vacancy_rough_similarity, and it now looks more like the empty scene than like the
    # person. Where the empty scene is an old or a poor estimate (a spot seldom free), a place left
    # empty reads only 0.7-0.8 like it, while the person standing there read about 0.5 and turned away
    # about 0.6; a passer-by in front of a shopper may raise it from 0.07 to 0.27 (hence the floor).
    vacancy_rise: float = 0.2
    vacancy_rough_similarity: float = 0.65
    # ... and in either case only while the grey-level pattern of the place (face, hair and clothes)
    # correlates with the empty scene's by at least vacancy_pattern: the shelves show again. A grey
    # restocking cage in front of a shopper read 0.69 like the empty scene in colour (the grey of the
    # shelves) and ended her wait as she stepped out from behind it; its pattern read 0.015. Places
    # left empty read 0.11-1.0 on the store scenes (the low end where someone else stands in part of
    # the place or the empty scene is a poor estimate), so the bound only tells "something stands
    # in front" from "the shelves are back".
    vacancy_pattern: float = 0.05


@dataclass(frozen=True)
class FinishedTrack:
    """What is known about one tracked face when its track ends. Memory only; never stored."""

    first_seen: float  # monotonic seconds
    last_seen: float
    wall_start: float  # UTC seconds, for period and content attribution
    wall_end: float
    zone_id: str | None  # the zone where the face spent most time; None when outside every zone
    attention_s: float
    emotion: tuple[float, ...] | None  # quality-weighted mean over the samples
    first_reaction: tuple[float, ...] | None  # mean over samples within the first seconds of attention
    gender: tuple[float, float] | None  # quality-weighted mean (female, male)
    age: float | None  # median of the samples
    samples: int

    @property
    def dwell_s(self) -> float:
        return self.last_seen - self.first_seen


@dataclass
class _Stats:
    wall_start: float
    last_obs: float
    zone_time: dict = field(default_factory=dict)
    attention_s: float = 0.0
    emotion_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(EMOTIONS)))
    emotion_w: float = 0.0
    first_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(EMOTIONS)))
    first_w: float = 0.0
    gender_sum: np.ndarray = field(default_factory=lambda: np.zeros(2))
    gender_w: float = 0.0
    ages: list = field(default_factory=list)
    last_sample: float = float("-inf")
    samples: int = 0
    attentive_now: bool = False
    max_presence: float = 0.0  # a track whose face the mesh never confirmed is not a person
    pose_t: float = float("-inf")  # when the face mesh last ran on this face
    mesh_width: float = 0.0  # the face's width as the mesh last measured it, as a detector box (0: not yet)


def clothing_cue(bgr: np.ndarray, det: Detection) -> np.ndarray | None:
    """Mean colour (BGR, 0-1) of the clothing just below a face: a short-lived, non-biometric
    association cue for the tracker, held in memory with the track only."""
    b = det.box
    h, w = bgr.shape[:2]
    x0, x1 = max(int(b.x0 + 0.1 * b.width), 0), min(int(b.x1 - 0.1 * b.width), w)
    y0, y1 = max(int(b.y1 + 0.5 * b.height), 0), min(int(b.y1 + 1.3 * b.height), h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return np.asarray(cv2.mean(bgr[y0:y1, x0:x1])[:3]) / 255.0


# Hue and saturation only: a change of the light (exposure, a lamp switched) scales the value of
# every pixel but leaves its hue and saturation; a value axis made the same shopper look like
# another one after the lights dimmed. A pixel with too little chroma (max - min of its channels)
# has no hue to speak of: the hue of black or grey cloth is the camera's noise on its three
# channels, and turns with the light and the compression. Such pixels count in two bins of their
# own, dark and light (as the colourless bins of Perez et al.'s colour tracker, ECCV 2002), by
# their value against the light of the whole frame (which a change of the light scales alike), and
# with ramps rather than steps so that a dim colour does not flip bins as the light drifts.
_HIST_BINS = (8, 4)  # hue, saturation
_HIST_RANGES = (0, 180, 0, 256)
_CHROMA_RAMP = (4.0, 16.0)  # chroma (0-255): no colour below (the noise is 2-3), all colour above
_LIGHT_RAMP = (0.35, 0.7)  # value / the frame's light: dark below (black cloth 0.2), light above (grey 0.65-1)
_HIST_PIXELS = 32  # regions are sampled down to about this many rows: the cost stays flat with face size


def scene_light(image: np.ndarray) -> float:
    """How bright a frame is overall (the mean of a sparse sample, 0-255): the reference the dark and
    light bins of :func:`appearance_at` are measured against."""
    return max(float(image[::16, ::16].mean()), 1.0)


def _region_hist(bgr: np.ndarray, x0: float, y0: float, x1: float, y1: float, light: float) -> np.ndarray | None:
    h, w = bgr.shape[:2]
    ix0, ix1 = max(int(x0), 0), min(int(x1), w)
    iy0, iy1 = max(int(y0), 0), min(int(y1), h)
    if ix1 - ix0 < 4 or iy1 - iy0 < 4:
        return None
    step = max(1, (iy1 - iy0) // _HIST_PIXELS)
    region = np.ascontiguousarray(bgr[iy0:iy1:step, ix0:ix1:step])
    hsv = cv2.cvtColor(region, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    hue_bins, sat_bins = _HIST_BINS
    colours = hue_bins * sat_bins
    colour_bin = (hsv[:, 0] * hue_bins // _HIST_RANGES[1]) * sat_bins + hsv[:, 1] * sat_bins // _HIST_RANGES[3]
    low, high = _CHROMA_RAMP
    chroma = hsv[:, 1] * hsv[:, 2] / 255.0  # max - min of the channels
    colour = np.clip((chroma - low) / (high - low), 0.0, 1.0)
    dark, bright = _LIGHT_RAMP
    lit = np.clip((hsv[:, 2] / light - dark) / (bright - dark), 0.0, 1.0)
    hist = np.bincount(colour_bin, weights=colour, minlength=colours + 2)
    grey = 1.0 - colour
    hist[colours] = float((grey * (1.0 - lit)).sum())
    hist[colours + 1] = float((grey * lit).sum())
    total = float(hist.sum())
    return (hist / total).astype(np.float32) if total > 0 else None


def appearance(bgr: np.ndarray, det: Detection, light: float | None = None) -> np.ndarray | None:
    """Colour histograms of the clothing below a face and of the hair above it (hue x saturation,
    32 bins, and a dark and a light bin for what has no colour: 34 each), each normalised to sum
    1, side by side: the cue that tells whether the face coming back after a look-away is the same
    shopper's. Coarse colours of clothes and hair only, never a face feature; held in memory with
    the track and dropped with it. ``light``: :func:`scene_light` of the frame (computed when not
    given)."""
    b = det.box
    return appearance_at(bgr, (b.x0, b.y0, b.x1, b.y1), light=light)


def appearance_at(
    image: np.ndarray, face: tuple[float, float, float, float], factor: int = 1, light: float | None = None
) -> np.ndarray | None:
    """:func:`appearance` of whatever is at the regions around a face box (frame-pixel corners) in
    ``image``, which is the frame reduced ``factor`` times (the empty scene is at a quarter)."""
    light = scene_light(image) if light is None else light
    x0, y0, x1, y1 = (v / factor for v in face)
    bw, bh = x1 - x0, y1 - y0
    clothes = _region_hist(image, x0 - 0.3 * bw, y1 + 0.5 * bh, x1 + 0.3 * bw, y1 + 1.5 * bh, light)
    if clothes is None:
        return None
    hair = _region_hist(image, x0 + 0.1 * bw, y0 - 0.3 * bh, x1 - 0.1 * bw, y0 + 0.05 * bh, light)
    return np.concatenate([clothes, hair if hair is not None else clothes])


def person_region(box: np.ndarray) -> tuple[float, float, float, float]:
    """Frame-pixel corners of what a person at a track's box (cx, cy, w, h) covers: the face, the
    hair above it and the clothes below it, as :func:`appearance_at` samples them."""
    cx, cy, bw, bh = box.tolist()
    return (cx - 0.85 * bw, cy - 0.9 * bh, cx + 0.85 * bw, cy + 2.1 * bh)


@dataclass(frozen=True)
class FrameResult:
    ended: tuple[FinishedTrack, ...]
    faces: int  # faces found (detected or followed by the mesh) and not excluded (0 on frames skipped)
    excluded: int  # faces dropped in exclusion zones
    occupancy: dict  # zone id -> confirmed tracks whose centre is in it


class FaceObserver:
    def __init__(
        self,
        pipeline: VisionPipeline,
        zones: ZoneMap | None = None,
        tracker: TrackerOptions | None = None,
        attention: AttentionOptions | None = None,
        options: ObserverOptions | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.zones = zones or ZoneMap()
        self.tracker = Tracker(tracker)
        self.attention = attention or AttentionOptions()
        self.options = options or ObserverOptions()
        self._stats: dict[int, _Stats] = {}
        self._background = SceneBackground()
        # waiting track id -> (last check, checks in a row that looked empty, looked like its person)
        self._vacancy: dict[int, tuple[float, int, bool]] = {}
        # seen track id -> (last check, the place's likeness to the empty scene at the last checks)
        self._seen_empty: dict[int, tuple[float, deque[float]]] = {}
        self._probe_t: dict[int, float] = {}  # lost track id -> when its place was last probed
        self._frame_index = -1
        self._frame_size: tuple[int, int] | None = None

    def process(self, frame: np.ndarray, t: float, wall: float) -> FrameResult:
        """One frame at monotonic time ``t`` (seconds) and wall time ``wall`` (UTC seconds)."""
        self._frame_index += 1
        if self._frame_index % self.options.detect_every:
            return FrameResult(ended=(), faces=0, excluded=0, occupancy=self._occupancy(t))
        vf = VisionFrame(frame)  # validated and colour-converted once for every face in it
        bgr = vf.bgr
        h, w = bgr.shape[:2]
        self._frame_size = (w, h)
        kept: list[Detection] = []
        weak: list[Detection] = []
        excluded = 0
        strong = self.pipeline.options.detector.score_threshold
        regions, grid = self._search_step()
        for det in self.pipeline.detect(vf, min(self.options.weak_score, strong), regions=regions, grid=grid):
            cx, cy = det.box.center
            if self.zones.excluded(cx / w, cy / h):
                excluded += det.score >= strong  # nothing more is inferred about this face, and it is never counted
            elif det.score >= strong:
                kept.append(det)
            else:
                weak.append(det)
        light = scene_light(bgr)
        followed, meshes, superseded = self._follow(vf, t, kept, weak, w, h)
        if superseded:  # small faces the mesh measured where the detector's view could not
            kept = [d for d in kept if id(d) not in superseded]
            weak = [d for d in weak if id(d) not in superseded]
        probed = self._probe(vf, t, kept, weak, followed, meshes, w, h, light)
        update = self.tracker.update(
            t,
            kept,
            [clothing_cue(bgr, d) for d in kept],
            weak,
            [clothing_cue(bgr, d) for d in weak],
            followed=followed,
            probed=probed,
            frame_size=(w, h),
            appearance=lambda d: appearance(bgr, d, light),
            **self._waiting_places(bgr, t, light),
        )
        if self.tracker.options.reacquire_s > self.tracker.options.max_age_s:
            self._background.update(bgr, t, [person_region(tr.box) for tr in update.active])
        for track_id in update.merged:
            self._stats.pop(track_id, None)  # a few frames of a tentative track, now part of another
        for young, into in update.absorbed:  # a young track was a waiting one's person back: one visit
            self._absorb_stats(young, into)
        for tr in update.active:
            if tr.detection is not None:
                self._observe(vf, tr, t, wall, w, h, meshes.get(id(tr.detection)))
        ended = tuple(ft for ft in (self._finish(tr) for tr in update.ended) if ft is not None)
        return FrameResult(
            ended=ended, faces=len(kept) + len(followed), excluded=excluded, occupancy=self._occupancy(t)
        )

    def _waiting_places(self, bgr: np.ndarray, t: float, light: float | None = None) -> dict[str, frozenset[int]]:
        """What each waiting track's place shows, checked every vacancy_check_s: ``vacant``, the
        empty scene again (their person has left); ``present``, their person still (turned away at
        the place: a face elsewhere is not them). ``light``: :func:`scene_light` of ``bgr``."""
        o = self.options
        empty = self._background.image
        waiting = {tr.id: tr for tr in self.tracker.tracks if tr.waiting and tr.appearance is not None}
        for gone in set(self._vacancy) - set(waiting):
            del self._vacancy[gone]
        live = {tr.id for tr in self.tracker.tracks}
        for gone in set(self._seen_empty) - live:
            del self._seen_empty[gone]
        if empty is None:
            return {"vacant": frozenset(), "present": frozenset()}
        light = scene_light(bgr) if light is None else light
        bg_light, bg_factor = scene_light(empty), self._background.factor

        def place(tr: Track) -> tuple[np.ndarray | None, np.ndarray | None]:
            """The appearance at the track's place now and in the empty scene."""
            face = corners(tr.box.tolist())
            return appearance_at(bgr, face, light=light), appearance_at(empty, face, bg_factor, light=bg_light)

        for tr in self.tracker.tracks:  # how the empty scene compares with each place while its face is seen
            if tr.waiting or tr.detection is None or tr.appearance is None:
                continue
            last, values = self._seen_empty.get(tr.id, (float("-inf"), deque(maxlen=5)))
            if t - last >= o.vacancy_check_s:
                now, scene = place(tr)
                if now is not None and scene is not None:
                    values.append(appearance_similarity(now, scene))
                self._seen_empty[tr.id] = (t, values)
        vacant, present = set(), set()
        for tid, tr in waiting.items():
            last, checks, there = self._vacancy.get(tid, (float("-inf"), 0, False))
            if t - last >= o.vacancy_check_s:
                now, scene = place(tr)
                if now is None or scene is None:
                    continue
                like_empty = appearance_similarity(now, scene)
                like_person = appearance_similarity(now, tr.appearance)
                seen = self._seen_empty.get(tid)
                when_seen = statistics.median(seen[1]) if seen is not None and seen[1] else None
                changed = (
                    when_seen is not None
                    and like_empty >= max(when_seen + o.vacancy_rise, o.vacancy_rough_similarity)
                    and like_empty > like_person
                )
                empty_now = changed or (
                    like_empty >= o.vacancy_similarity and like_empty >= like_person + o.vacancy_margin
                )
                if empty_now:
                    pattern = self._background.pattern_match(bgr, person_region(tr.box))
                    empty_now = pattern is None or pattern >= o.vacancy_pattern
                there = like_person >= o.vacancy_similarity and like_person >= like_empty + o.vacancy_margin
                checks = checks + 1 if empty_now else 0
                self._vacancy[tid] = (t, checks, there)
            if checks >= o.vacancy_checks:
                vacant.add(tid)
            if there:
                present.add(tid)
        return {"vacant": frozenset(vacant), "present": frozenset(present)}

    def _absorb_stats(self, young: int, into: int) -> None:
        y, w = self._stats.pop(young, None), self._stats.get(into)
        if y is None:
            return
        if w is None:
            self._stats[into] = y
            return
        for key, value in y.zone_time.items():
            w.zone_time[key] = w.zone_time.get(key, 0.0) + value
        w.attention_s += y.attention_s
        w.emotion_sum += y.emotion_sum
        w.emotion_w += y.emotion_w
        w.gender_sum += y.gender_sum
        w.gender_w += y.gender_w
        w.ages = (w.ages + y.ages)[: self.options.max_age_samples]
        w.samples += y.samples
        w.max_presence = max(w.max_presence, y.max_presence)
        w.last_obs, w.last_sample, w.attentive_now = y.last_obs, max(w.last_sample, y.last_sample), y.attentive_now

    def _search_step(self) -> tuple[list[int | None] | None, int]:
        """Where the detector looks in this frame: the whole frame, and one tile of the search grid
        in turn (so a small face far from the camera is found within about a second)."""
        o = self.options
        n = o.search_tiles
        if n <= 1 or self.pipeline.options.detector.tiles > 1:
            return None, 1  # as configured: the whole frame (and every tile, when detector.tiles is set)
        step = self._frame_index // o.detect_every
        regions: list[int | None] = []
        if step % max(1, o.whole_frame_every) == 0:
            regions.append(None)
        every = max(1, o.search_tile_every)
        if step % every == 0:
            regions.append(step // every % (n * n))
        return regions, n

    def _follow(self, vf: VisionFrame, t: float, strong: list[Detection], weak: list[Detection], w: int, h: int):
        """The face mesh on each track seen in the last frame that no detection continues now, at
        its predicted place: its presence says whether the face is still there. A weak detection
        continues only a confirmed track, so a young track under one is followed all the same.

        A face too small for the view that detected it (under ``COARSE_INPUT_PX`` of that view's
        input pixels: at 1280x720 a face under 73 px in the whole frame) is followed by the mesh
        too: the detector's box there is up to 1.6x too big and its centre wanders by a tenth of a
        width or more, frame to frame and against a tile's box of the same face, so a track fed
        those boxes jumps. When the mesh finds the face, its box continues the track and the
        detections at the place are dropped (returned, by ``id``, as superseded)."""
        followed: dict[int, tuple[Detection, np.ndarray | None]] = {}
        meshes: dict[int, FaceLandmarks] = {}
        superseded: set[int] = set()
        if not self.options.follow_with_mesh:
            return followed, meshes, superseded
        horizon = self.tracker.options.max_extrapolation_s
        strong_boxes = [(d.box.x0, d.box.y0, d.box.x1, d.box.y1) for d in strong]
        weak_boxes = [(d.box.x0, d.box.y0, d.box.x1, d.box.y1) for d in weak]
        boxes = strong_boxes + weak_boxes
        dets = strong + weak
        predicted = {}
        for tr in self.tracker.tracks:
            if not tr.waiting:
                predicted[tr.id] = corners(tr.predicted(t, horizon).tolist())
        for tr in self.tracker.tracks:
            if tr.waiting or tr.detection is None:
                continue
            place = predicted[tr.id]
            continuing = len(boxes) if self.tracker.confirmed(tr) else len(strong_boxes)
            at_place = [box_iou(place, b) >= self.tracker.options.iou_threshold for b in boxes]
            there = [i for i in range(continuing) if at_place[i]]
            width = float(tr.box[2])
            st = self._stats.get(tr.id)
            face = min(width, st.mesh_width) if st is not None and st.mesh_width > 0 else width
            if there and not all(0 < dets[i].view_scale * face < COARSE_INPUT_PX for i in there):
                continue  # the detector has it
            cx, cy = (place[0] + place[2]) / 2, (place[1] + place[3]) / 2
            got = self.pipeline.follow(vf, tr.detection, (cx - tr.box[0], cy - tr.box[1]))
            if got is None:
                continue
            det, lm = got
            # other faces: the other tracks' places, and detections not at this track's own place (a weak
            # one there, which cannot continue a young track, is this face)
            others = [box for tid, box in predicted.items() if tid != tr.id] + [
                b for b, here in zip(boxes, at_place) if not here
            ]
            # the width of a track fed boxes the detector could not measure is up to 1.64x the face's
            if not self._mesh_face_fits(det, width, others, w, h, smallest=0.55 if there else 0.7):
                continue  # leave the track to the detector
            followed[tr.id] = (det, clothing_cue(vf.bgr, det))
            meshes[id(det)] = lm
            superseded.update(id(dets[i]) for i in there)
        return followed, meshes, superseded

    def _probe(
        self,
        vf: VisionFrame,
        t: float,
        strong: list[Detection],
        weak: list[Detection],
        followed: dict[int, tuple[Detection, np.ndarray | None]],
        meshes: dict[int, FaceLandmarks],
        w: int,
        h: int,
        light: float | None = None,
    ) -> dict[int, tuple[Detection, np.ndarray | None]]:
        """The face mesh where each confirmed track that the detector and the mesh have lost was
        last seen, once every probe_lost_s: a face there that looks like the track's person
        (appearance at least the tracker's reacquire_similarity) continues it. ``light``:
        :func:`scene_light` of the frame."""
        probed: dict[int, tuple[Detection, np.ndarray | None]] = {}
        o = self.options
        live = {tr.id for tr in self.tracker.tracks}
        for gone in set(self._probe_t) - live:
            del self._probe_t[gone]
        if not o.follow_with_mesh or o.probe_lost_s <= 0:
            return probed
        due = [
            tr
            for tr in self.tracker.tracks
            if tr.detection is None
            and tr.last_face is not None
            and tr.appearance is not None
            and self.tracker.confirmed(tr)
            and t - max(tr.last_seen, self._probe_t.get(tr.id, float("-inf"))) >= o.probe_lost_s - 1e-6
        ]
        if not due:
            return probed
        others = [(d.box.x0, d.box.y0, d.box.x1, d.box.y1) for d in strong + weak]
        others += [(d.box.x0, d.box.y0, d.box.x1, d.box.y1) for d, _ in followed.values()]
        seen = [tr for tr in self.tracker.tracks if tr.detection is not None and tr.id not in followed]
        others += [corners(tr.box.tolist()) for tr in seen]
        for tr in due:
            last = tr.last_face
            self._probe_t[tr.id] = t
            place = corners(tr.box.tolist())
            if any(box_iou(place, b) >= 0.2 for b in others):
                continue  # somebody is at the place now: the detector's faces go to the tracker
            cx, cy = tr.box[:2].tolist()
            got = self.pipeline.follow(vf, last, (cx - last.box.center[0], cy - last.box.center[1]))
            if got is None:
                continue
            det, lm = got
            if not self._mesh_face_fits(det, float(tr.box[2]), others, w, h):
                continue
            look = appearance(vf.bgr, det, light)
            if look is None or appearance_similarity(look, tr.appearance) < self.tracker.options.reacquire_similarity:
                continue  # a face at the place, but not this person's: somebody who took the spot
            probed[tr.id] = (det, clothing_cue(vf.bgr, det))
            meshes[id(det)] = lm
        return probed

    def _mesh_face_fits(
        self,
        det: Detection,
        width: float,
        others: list[tuple[float, float, float, float]],
        w: int,
        h: int,
        smallest: float = 0.7,
    ) -> bool:
        """Whether a face the mesh found at a track's place may continue it: not in an exclusion zone
        (never followed there), about the track's width (``smallest`` to 1.4 times it: the mesh kept
        its hold), and not on another face (it slid onto someone passing in front)."""
        b = det.box
        mine = (b.x0, b.y0, b.x1, b.y1)
        return (
            not self.zones.excluded(b.center[0] / w, b.center[1] / h)
            and smallest <= b.width / max(width, 1.0) <= 1.4
            and not any(box_iou(mine, o) >= 0.2 for o in others)
        )

    def finish(self) -> tuple[FinishedTrack, ...]:
        """End every open track (shutdown, end of a clip)."""
        return tuple(ft for ft in (self._finish(tr) for tr in self.tracker.flush()) if ft is not None)

    @property
    def open_tracks(self) -> int:
        return len(self._stats)

    def _occupancy(self, t: float) -> dict:
        counts: dict[str, int] = {}
        for z in self.zones.zones:
            if z.kind == "queue":
                counts[z.id] = 0
        if not counts or self._frame_size is None:
            return counts
        w, h = self._frame_size
        for tr in self.tracker.tracks:
            if self.tracker.confirmed(tr):
                cx, cy = tr.predicted(t, self.tracker.options.max_extrapolation_s)[:2]
                zone = self.zones.zone_at(cx / w, cy / h)
                if zone is not None and zone.id in counts:
                    counts[zone.id] += 1
        return counts

    def _observe(
        self, vf: VisionFrame, tr: Track, t: float, wall: float, w: int, h: int, lm: FaceLandmarks | None = None
    ) -> None:
        det = tr.detection
        st = self._stats.get(tr.id)
        if st is None:
            st = self._stats[tr.id] = _Stats(wall_start=wall, last_obs=t)
        since = max(t - st.last_obs, 0.0)
        gap = min(since, self.options.max_gap_s)
        st.last_obs = t
        cx, cy = det.box.center
        zone = self.zones.zone_at(cx / w, cy / h)
        key = zone.id if zone is not None else None
        st.zone_time[key] = st.zone_time.get(key, 0.0) + gap
        sample_due = t - st.last_sample >= 1.0 / self.options.attribute_rate_hz
        if lm is None and (sample_due or t - st.pose_t >= self.options.pose_interval_s - 1e-6):
            lm = self.pipeline.landmarks_for(vf, det)
        if lm is None:  # the head pose of a moment ago holds (a head turns in a few tenths of a second)
            frontal = st.attentive_now
        else:
            st.pose_t = t
            st.max_presence = max(st.max_presence, lm.presence)
            if lm.presence >= self.pipeline.options.min_presence and lm.extent is not None:
                st.mesh_width = detection_from_mesh(lm).box.width
            a = self.attention
            frontal = (
                lm.presence >= self.pipeline.options.min_presence
                and abs(lm.pose.yaw) <= a.max_yaw_deg
                and abs(lm.pose.pitch) <= a.max_pitch_deg
            )
        if frontal and st.attentive_now and since <= self.options.max_gap_s:
            # credited only between two attentive observations close in time: a face unseen for
            # longer (turned to the shelf, hidden) was not looking, whatever it did before and after
            st.attention_s += gap
        st.attentive_now = frontal
        if sample_due and lm is not None:
            quality = self._quality(vf.bgr, det, lm)
            if quality > 0:
                self._sample(vf, det, lm, st, t, quality, frontal)

    def _quality(self, bgr: np.ndarray, det: Detection, lm: FaceLandmarks) -> float:
        """0 when the face should not be sampled; otherwise larger for larger, more frontal, sharper faces."""
        o = self.options
        size = min(det.box.width, det.box.height)
        if size < o.min_sample_face_px or lm.presence < self.pipeline.options.min_presence:
            return 0.0
        if abs(lm.pose.yaw) > o.sample_max_yaw_deg or abs(lm.pose.pitch) > o.sample_max_pitch_deg:
            return 0.0
        frontal = (1 - abs(lm.pose.yaw) / 90.0) * (1 - abs(lm.pose.pitch) / 90.0)
        x0, y0 = max(int(det.box.x0), 0), max(int(det.box.y0), 0)
        face = bgr[y0 : int(det.box.y1), x0 : int(det.box.x1)]
        sharp = 1.0
        if face.size:
            gray = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
            sharp = min(1.0, 0.25 + float(cv2.Laplacian(gray, cv2.CV_32F).var()) / 200.0)
        return min(size / 96.0, 1.0) * frontal * sharp

    def _sample(self, vf: VisionFrame, det, lm, st: _Stats, t: float, quality: float, attentive: bool) -> None:
        face = self.pipeline.attributes_for(vf, det, lm)
        st.last_sample = t
        st.samples += 1
        if face.emotion is not None:
            probs = np.asarray(face.emotion)
            st.emotion_sum += quality * probs
            st.emotion_w += quality
            if attentive and st.attention_s <= self.attention.first_reaction_s:
                st.first_sum += quality * probs
                st.first_w += quality
        if face.gender is not None:
            st.gender_sum += quality * np.asarray(face.gender)
            st.gender_w += quality
        if face.age is not None and len(st.ages) < self.options.max_age_samples:
            st.ages.append(face.age)

    def _finish(self, tr: Track) -> FinishedTrack | None:
        st = self._stats.pop(tr.id, None)
        if st is None or not self.tracker.confirmed(tr):
            return None  # never confirmed: a spurious detection, not a person
        if st.max_presence < self.pipeline.options.min_presence:
            return None  # the face mesh never saw a face in it (a hand, a pattern): not a person
        in_zones = {k: v for k, v in st.zone_time.items() if k is not None}
        zone_id = max(in_zones, key=in_zones.get) if in_zones else None
        duration = tr.last_seen - tr.first_seen
        return FinishedTrack(
            first_seen=tr.first_seen,
            last_seen=tr.last_seen,
            wall_start=st.wall_start,
            wall_end=st.wall_start + duration,
            zone_id=zone_id,
            attention_s=st.attention_s,
            emotion=tuple(st.emotion_sum / st.emotion_w) if st.emotion_w else None,
            first_reaction=tuple(st.first_sum / st.first_w) if st.first_w else None,
            gender=tuple(st.gender_sum / st.gender_w) if st.gender_w else None,
            age=statistics.median(st.ages) if st.ages else None,
            samples=st.samples,
        )
