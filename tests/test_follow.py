"""Following known faces with the face mesh where the detector misses them (real models)."""

from __future__ import annotations

import dataclasses

import cv2

from kiosk.tracking.observer import FaceObserver
from kiosk.vision.frame import VisionFrame


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
    followed, meshes = observer._follow(VisionFrame(frame), 1 / 15, [], [weak], w, h)
    assert young.id in followed and id(followed[young.id][0]) in meshes
    for i in range(1, observer.tracker.options.min_hits + 1):
        observer.process(frame, i / 15, 1.8e9 + i / 15)
    assert observer.tracker.confirmed(young)
    followed, _ = observer._follow(VisionFrame(frame), 1.0, [], [weak], w, h)
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
