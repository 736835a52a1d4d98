"""Following known faces with the face mesh where the detector misses them (real models)."""

from __future__ import annotations

import dataclasses

import cv2

from kiosk.testing.group_photos import labelled_faces, place_face
from kiosk.tracking.observer import FaceObserver
from kiosk.vision.frame import VisionFrame
from tests.conftest import data_path


def test_a_young_track_under_a_weak_detection_is_followed_and_a_confirmed_one_continued_by_it(pipeline, sample_image):
    """A weak detection (a face turning, blurred, small) continues only a confirmed track, so a
    young track under one must be followed by the mesh, or it is lost and the person comes back
    as a fragment; a weak detection of the same face is that face, not another one in the way."""
    frame = cv2.imread(str(sample_image))
    h, w = frame.shape[:2]
    face = max(pipeline.detect(frame), key=lambda d: d.box.width)
    weak = dataclasses.replace(face, score=0.4)
    observer = FaceObserver(pipeline)
    observer.process(frame, 0.0, 1.8e9)
    (young,) = [tr for tr in observer.tracker.tracks if abs(tr.box[0] - face.box.center[0]) < 5]
    assert not observer.tracker.confirmed(young)
    followed, meshes, _ = observer._follow(VisionFrame(frame), 1 / 15, [], [weak], w, h)
    assert young.id in followed and id(followed[young.id][0]) in meshes
    for i in range(1, observer.tracker.options.min_hits + 1):
        observer.process(frame, i / 15, 1.8e9 + i / 15)
    assert observer.tracker.confirmed(young)
    followed, _, _ = observer._follow(VisionFrame(frame), 1.0, [], [weak], w, h)
    assert young.id not in followed  # the tracker's second association continues it with the weak detection


def test_the_mesh_runs_on_a_detected_face_ten_times_a_second_whatever_the_frame_rate(pipeline, sample_image):
    """Head pose for attention holds for a tenth of a second (a head turns in a few tenths), so at
    30 frames per second the mesh runs on every third frame, and attention is still all the time."""
    frame = cv2.imread(str(sample_image))
    observer = FaceObserver(pipeline)
    mesh = pipeline._models["landmarks"]
    before = mesh.invocations
    for i in range(61):  # two seconds at 30 fps
        observer.process(frame, i / 30, 1.8e9 + i / 30)
    runs = mesh.invocations - before
    assert 20 <= runs <= 30, runs  # about 10 a second (60 without the interval)
    (st,) = observer._stats.values()
    assert st.attention_s > 1.8


def _hidden(frame, box):
    """The frame with a face covered (a passer-by in front of it)."""
    out = frame.copy()
    x0, y0, x1, y1 = (int(v) for v in (box.x0 - 10, box.y0 - 10, box.x1 + 10, box.y1 + 10))
    out[max(y0, 0) : y1, max(x0, 0) : x1] = 90
    return out


def _recoloured(frame, box):
    """The same face with other clothes below it and other hair above it: somebody else at the place."""
    out = frame.copy()
    bw, bh = box.width, box.height
    out[int(box.y1 + 0.3 * bh) :, :] = (40, 40, 220)  # red clothes
    out[: max(int(box.y0 + 0.05 * bh), 1), int(box.x0 - 0.3 * bw) : int(box.x1 + 0.3 * bw)] = (60, 200, 60)
    return out


def test_a_face_lost_behind_a_passer_by_is_looked_for_with_the_mesh_where_it_stood(pipeline, sample_image):
    """The detector does not always find a face again once someone has passed in front of it (a
    small face, glasses, a striped shelf behind: 1280x720 seed 1's shopper 3); the mesh looks at
    the place each missed or waiting track was last seen, twice a second, and a face there that
    looks like the track's person continues it. Somebody else there (other clothes and hair) does
    not, and the place is not looked at again within the half second."""
    frame = cv2.imread(str(sample_image))
    h, w = frame.shape[:2]
    face = max(pipeline.detect(frame), key=lambda d: d.box.width)
    mesh = pipeline._models["landmarks"]

    def lost_behind_a_passer_by() -> tuple[FaceObserver, int]:
        observer = FaceObserver(pipeline)
        for i in range(8):
            observer.process(frame, i / 15, 1.8e9 + i / 15)
        covered = _hidden(frame, face.box)
        for i in range(8, 20):  # hidden: neither the detector nor the mesh finds it
            observer.process(covered, i / 15, 1.8e9 + i / 15)
        (track,) = [tr for tr in observer.tracker.tracks if observer.tracker.confirmed(tr)]
        assert track.detection is None and track.last_seen < 0.5
        return observer, track.id

    observer, tid = lost_behind_a_passer_by()
    probed_at = observer._probe_t[tid]  # looked for (in vain) while it was hidden
    assert probed_at > 0.9
    # the face is back, but (as there) the detector misses it: no detections at all
    before = mesh.invocations
    assert observer._probe(VisionFrame(frame), probed_at + 0.4, [], [], {}, {}, w, h) == {}  # not yet again
    assert mesh.invocations == before
    probed = observer._probe(VisionFrame(frame), probed_at + 0.5, [], [], {}, {}, w, h)
    assert tid in probed and mesh.invocations == before + 1
    assert abs(probed[tid][0].box.center[0] - face.box.center[0]) < 0.2 * face.box.width
    update = observer.tracker.update(probed_at + 0.5, [], probed=probed, frame_size=(w, h))
    assert update.active[0].id == tid and update.active[0].detection is probed[tid][0]
    observer, tid = lost_behind_a_passer_by()
    other = VisionFrame(_recoloured(frame, face.box))
    assert pipeline.follow(other, face) is not None  # the mesh finds a face there ...
    assert observer._probe(other, observer._probe_t[tid] + 0.5, [], [], {}, {}, w, h) == {}  # ... not this person's


def _turned_away(frame, box):
    """The frame with the back of the head where the face was (hair and clothes as before)."""
    out = frame.copy()
    centre = (int(box.center[0]), int(box.center[1]))
    cv2.ellipse(out, centre, (int(box.width * 0.55), int(box.height * 0.6)), 0, 0, 360, (35, 30, 30), -1)
    return out


def test_no_attention_is_credited_for_the_time_a_face_was_not_seen(pipeline, sample_image):
    """Attention is frontal time: a shopper looking at the camera for 2 s, hidden (turned to the
    shelf) for 3 s and looking again for 2 s paid 4 s of attention, not 4 s and the half second
    the observer bridges between two close observations (``max_gap_s``)."""
    frame = cv2.imread(str(sample_image))
    face = max(pipeline.detect(frame), key=lambda d: d.box.width)
    turned = _turned_away(frame, face.box)
    observer = FaceObserver(pipeline)
    for i in range(106):  # 7 s at 15 fps: seen, then turned away from 2 s to 5 s, then seen
        t = i / 15
        observer.process(turned if 2.0 <= t < 5.0 else frame, t, 1.8e9 + t)
    (track,) = [tr for tr in observer.tracker.tracks if observer.tracker.confirmed(tr)]
    assert track.reacquired == 1 and track.first_seen == 0.0  # one visit, the wait included
    st = observer._stats[track.id]
    assert 3.7 <= st.attention_s <= 4.0, st.attention_s


def test_a_face_too_small_for_the_whole_frame_is_measured_by_the_mesh_not_the_detectors_box(pipeline):
    """At 1280x720 the whole frame cannot measure a 50 px face (7 of its 192 input pixels): its box
    is 1.2-1.6x too big and off-centre, while a tile's box and the mesh's fit the face. A track fed
    the whole frame's boxes has the wrong size and jumps when a tile's box comes (the round robin).
    The mesh follows such a face instead, every frame, and the track keeps the face's own size.
    Real faces of the group photos (every third) at 50 px: after 3 s, 8 of the 9 that both views
    find have a track within 0.8-1.2x of the tile's box (4 of 9 when the whole frame's box was
    kept), and never a second track on the face."""
    det = pipeline.detector
    ratios = []
    for path, face in list(labelled_faces(data_path("group-photos")))[::3]:
        frame = place_face(cv2.imread(str(path)), face, 50, (640, 360))
        fine = [d for d in det.detect(frame, regions=[4], grid=3) if abs(d.box.center[0] - 640) < 25]
        whole = [d for d in det.detect(frame, regions=[None]) if abs(d.box.center[0] - 640) < 25]
        if len(fine) != 1 or len(whole) != 1:
            continue  # the test is about a face both views find
        observer = FaceObserver(pipeline)
        for i in range(45):  # 3 s at 15 fps: the round robin reaches the face's tile twice
            observer.process(frame, i / 15, 1.8e9 + i / 15)
            near = [tr for tr in observer.tracker.tracks if abs(tr.box[0] - 640) < 40 and abs(tr.box[1] - 360) < 40]
            assert len(near) <= 1, (path.name, i, [tr.box.tolist() for tr in near])
        assert len(near) == 1, path.name
        ratios.append(float(near[0].box[2]) / fine[0].box.width)
    assert len(ratios) >= 8
    assert sum(0.8 <= r <= 1.2 for r in ratios) >= 0.85 * len(ratios), [round(r, 2) for r in ratios]
