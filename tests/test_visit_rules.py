"""Visit rules on finished tracks, and the observer's bounded sampling, detect_every and occupancy."""

from __future__ import annotations

import pytest

from kiosk.camera.sources import video_frames
from kiosk.config import parse_config
from kiosk.tracking.observer import FinishedTrack
from kiosk.vision.pipeline import VisionPipeline
from kiosk.visits import ContentSchedule, VisitBuilder, VisitOptions, age_band, age_band_labels
from kiosk.wiring import VisitChain
from tests.conftest import data_path

T0 = 1_800_000_000.0


def track(
    dwell=8.0, attention=3.0, zone="shelf-a", gender=(0.1, 0.9), age=30.0, emotion=None, first=None
) -> FinishedTrack:
    happy = (0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.1)
    return FinishedTrack(
        first_seen=10.0,
        last_seen=10.0 + dwell,
        wall_start=T0,
        wall_end=T0 + dwell,
        zone_id=zone,
        attention_s=attention,
        emotion=emotion or happy,
        first_reaction=first,
        gender=gender,
        age=age,
        samples=5,
    )


def test_age_bands():
    assert age_band_labels((18, 25, 35, 45, 55, 65)) == ("0-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
    assert age_band(17.9, (18, 25)) == "0-17" and age_band(18, (18, 25)) == "18-24" and age_band(80, (18, 25)) == "25+"
    assert age_band(None, (18,)) == "unknown"


def test_visit_or_passer_by_and_attentive():
    b = VisitBuilder(VisitOptions(min_dwell_s=3.0, min_attention_s=1.0))
    assert b.build(track(dwell=3.0)).kind == "visit"
    assert b.build(track(dwell=2.9)).kind == "passer_by"
    assert b.build(track(attention=0.9)).attentive is False
    assert b.build(track(attention=1.0)).attentive is True
    assert b.build(track(zone=None)) is None  # outside every zone: not counted


def test_gender_is_unknown_when_unsure_or_for_children():
    b = VisitBuilder()
    assert b.build(track(gender=(0.1, 0.9))).gender == "male"
    assert b.build(track(gender=(0.8, 0.2))).gender == "female"
    assert b.build(track(gender=(0.4, 0.6))).gender == "unknown"  # below 0.7
    assert b.build(track(gender=(0.01, 0.99), age=11.0)).gender == "unknown"  # under 13
    assert b.build(track(gender=None)).gender == "unknown"


def test_reactions_and_content_label():
    sad = (0.0, 0.0, 0.0, 0.1, 0.8, 0.0, 0.1)
    schedule = ContentSchedule(default="loop-a")
    v = VisitBuilder(content=schedule).build(track(first=sad))
    assert v.first_reaction == "sad" and v.dominant_emotion == "happy" and v.content == "loop-a"
    assert VisitBuilder().build(track(first=None)).first_reaction is None


@pytest.fixture(scope="module")
def pipeline():
    with VisionPipeline() as p:
        yield p


def _run(cfg, pipeline, clip="face-demographics-walking-and-pause.mp4"):
    chain = VisitChain(cfg, pipeline)
    ended = []
    observer_finish = chain.observer._finish

    def spy(tr):  # keep the finished tracks to look at their sample counts
        ft = observer_finish(tr)
        if ft is not None:
            ended.append(ft)
        return ft

    chain.observer._finish = spy
    visits = []
    for _, t, frame in video_frames(str(data_path("videos", clip))):
        visits += chain.process(frame, t, T0 + t)
    visits += chain.finish()
    return chain, visits, ended


def test_attributes_are_sampled_at_a_bounded_rate(pipeline):
    cfg = parse_config({"visits": {"min_dwell_s": 1.0}, "tracking": {"attribute_rate_hz": 2.0}})
    _, visits, ended = _run(cfg, pipeline)
    assert len(visits) == 3
    for ft in ended:
        assert 1 <= ft.samples <= 2.0 * ft.dwell_s + 1


def test_detector_every_second_frame_gives_the_same_visits(pipeline):
    every = parse_config({"visits": {"min_dwell_s": 1.0}, "tracking": {"detect_every": 2}})
    _, visits, _ = _run(every, pipeline)
    assert len(visits) == 3 and all(v.kind == "visit" for v in visits)
    assert all(abs(v.dwell_s - 3.2) < 0.5 for v in visits)


def test_queue_zone_occupancy(pipeline):
    cfg = parse_config(
        {
            "visits": {"min_dwell_s": 1.0},
            "zones": [{"id": "line", "type": "queue", "label": "checkout", "rect": [0, 0, 1, 1]}],
        }
    )
    chain, visits, _ = _run(cfg, pipeline)
    deltas = chain.drain()
    (occ,) = deltas.occupancy.values()
    assert occ.samples >= 3 and occ.peak == 3  # three people waiting, sampled once a second
    assert {v.zone_id for v in visits} == {"line"}
