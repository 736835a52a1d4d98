"""The empty scene and the vacancy check of waiting tracks: a shopper turned away, one hidden
behind a passer-by and one who has left look different at their place (synthetic frames)."""

from __future__ import annotations

import numpy as np

from kiosk.tracking.background import SceneBackground
from kiosk.tracking.observer import FaceObserver, appearance_at, person_region
from kiosk.tracking.tracker import Track

FACE = (600.0, 200.0, 680.0, 280.0)  # a face box, frame pixels (80 px)
BOX = np.array([640.0, 240.0, 80.0, 80.0])  # the same as a track's (cx, cy, w, h)


def _shelves() -> np.ndarray:
    rng = np.random.default_rng(5)
    frame = np.zeros((720, 1280, 3), np.uint8)
    for x in range(0, 1280, 40):  # products of many colours
        frame[:, x : x + 36] = rng.integers(40, 230, 3)
    return frame


def _with(frame: np.ndarray, colour: tuple[int, int, int], hair: tuple[int, int, int] = (30, 40, 60)) -> np.ndarray:
    out = frame.copy()
    out[300:720, 560:720] = colour  # torso below the face
    out[170:210, 600:680] = hair  # top of the head
    return out


def test_the_empty_scene_learns_the_shelves_but_not_where_people_are():
    shelves = _shelves()
    bg = SceneBackground()
    person = _with(shelves, (40, 40, 160))
    for i in range(30):  # 15 s with the person standing there, masked out
        bg.update(person if i else shelves, i * 0.5, [person_region(BOX)])
    empty = bg.image
    assert empty.shape == (180, 320, 3)
    scene = appearance_at(empty, FACE, bg.factor)
    there = appearance_at(shelves, FACE)
    assert float(np.sqrt(scene * there).sum()) / 2 > 0.9  # still the shelves behind the person
    for i in range(30, 40):  # the rest of the frame follows a change of the light
        bg.update((shelves * 0.7).astype(np.uint8), i * 0.5, [])
    assert abs(float(bg.image.mean()) - 0.7 * float(shelves.mean())) < 3


def test_a_waiting_track_ends_when_its_place_is_empty_not_while_turned_away_or_hidden(pipeline):
    """The place of a waiting track: its person turned away there is ``present`` (a face beside
    them is someone else); a passer-by in front is neither present nor vacant; the empty scene,
    seen twice, is ``vacant``."""
    shelves = _shelves()
    person = _with(shelves, (40, 40, 160))
    observer = FaceObserver(pipeline)
    track = Track(
        id=7,
        box=BOX.copy(),
        first_seen=0.0,
        last_seen=5.0,
        hits=50,
        waiting=True,
        appearance=appearance_at(person, FACE),
    )
    observer.tracker._tracks.append(track)
    for i in range(12):  # the empty scene learnt before the shopper came
        observer._background.update(shelves, i * 0.5, [])
    turned = _with(shelves, (40, 40, 160), hair=(30, 40, 60))  # the back of the head, the same clothes
    hidden = _with(shelves, (150, 200, 60), hair=(150, 200, 60))  # a passer-by in front, other colours
    t = 10.0
    for frame, there in ((turned, {7}), (hidden, set())):
        for _ in range(6):
            t += 0.5
            places = observer._waiting_places(frame, t)
            assert places["vacant"] == frozenset()
            assert places["present"] == frozenset(there)  # turned away: still there; hidden: not seen
    t += 0.5
    places = observer._waiting_places(shelves, t)
    assert places == {"vacant": frozenset(), "present": frozenset()}  # one look at the empty place is not enough
    t += 0.5
    assert observer._waiting_places(shelves, t)["vacant"] == frozenset({7})
