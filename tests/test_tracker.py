"""The tracker on synthetic detections (no vision): lifetimes, weak detections, crossings."""

from __future__ import annotations

import numpy as np

from kiosk.tracking.tracker import Tracker, TrackerOptions
from kiosk.vision.types import Box, Detection


def det(cx: float, cy: float = 100.0, size: float = 60.0, score: float = 0.9) -> Detection:
    return Detection(Box(cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2), score, ())


def test_confirmation_coasting_and_end_after_max_age():
    tr = Tracker(TrackerOptions(min_hits=3, max_age_s=1.0))
    for i in range(3):
        update = tr.update(i * 0.1, [det(100 + i)])
    (track,) = update.active
    assert tr.confirmed(track) and track.hits == 3
    assert tr.update(0.9, []).ended == ()  # missing for 0.7 s: coasting
    assert tr.update(1.25, []).ended == (track,)  # 1.05 s since last seen: ended
    assert tr.tracks == ()


def test_weak_detections_continue_but_never_start_tracks():
    tr = Tracker(TrackerOptions(min_hits=2, max_age_s=0.5))
    tr.update(0.0, [det(100)])
    tr.update(0.1, [det(102)])
    for i in range(2, 12):  # a second of low-score detections keeps the confirmed track alive
        update = tr.update(i * 0.1, [], weak=[det(102 + i, score=0.35)])
        assert update.ended == ()
    assert len(tr.tracks) == 1 and tr.tracks[0].hits == 12
    update = tr.update(1.3, [], weak=[det(400, score=0.35)])  # far away: starts nothing
    assert len(tr.tracks) == 1


def test_crossing_people_keep_their_tracks_with_clothing_cues():
    tr = Tracker(TrackerOptions(min_hits=2))
    red, blue = np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.1, 0.8])
    ids = {}
    for i in range(21):
        t = i * 0.1
        a, b = det(100 + 15 * i, 100), det(400 - 15 * i, 104)  # walk towards each other and cross at i = 10
        update = tr.update(t, [a, b], [red, blue])
        for track in update.active:
            if track.detection is a:
                ids.setdefault("red", set()).add(track.id)
            elif track.detection is b:
                ids.setdefault("blue", set()).add(track.id)
    assert len(ids["red"]) == 1 and len(ids["blue"]) == 1 and ids["red"] != ids["blue"]


def test_a_partly_hidden_face_does_not_drag_its_track():
    tr = Tracker(TrackerOptions(min_hits=2))
    for i in range(5):
        tr.update(i * 0.1, [det(200, size=80)])
    before = tr.tracks[0].box.copy()
    tr.update(0.5, [det(215, size=50)])  # inside the box, much narrower: someone in front hides part of it
    assert np.allclose(tr.tracks[0].box, before) and tr.tracks[0].hits == 6
