"""Config schema: strict, documented, errors by YAML path."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from kiosk.config import ConfigError, KioskConfig, load_config, parse_config
from kiosk.wiring import content_schedule, pipeline_options, zone_map

PROJECT = Path(__file__).resolve().parents[1]


def _models(model: type[BaseModel]):
    yield model
    for field in model.model_fields.values():
        for ann in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                yield from _models(ann)


def test_every_field_has_a_default_and_a_description_and_extra_is_forbidden():
    for model in _models(KioskConfig):
        assert model.model_config.get("extra") == "forbid", model.__name__
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            assert not field.is_required(), f"{model.__name__}.{name} has no default"


def test_example_config_is_valid_and_equals_the_defaults():
    assert load_config(PROJECT / "config" / "kiosk.example.yaml") == KioskConfig()


def test_errors_name_the_yaml_path():
    with pytest.raises(ConfigError) as exc:
        parse_config({"vision": {"detector": {"score_threshold": 2, "modle": "x"}, "num_threads": 0}}, "f.yaml")
    text = str(exc.value)
    assert "f.yaml: vision.detector.score_threshold" in text
    assert "vision.detector.modle: unknown key 'modle'; did you mean 'model'?" in text
    assert "vision.num_threads" in text


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("vision: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_vision_section_maps_to_pipeline_options():
    cfg = parse_config({"vision": {"num_threads": 1, "detector": {"model": "face_detector_short"}, "emotion": False}})
    opts = pipeline_options(cfg.vision)
    assert opts.num_threads == 1 and opts.detector.model == "face_detector_short" and not opts.emotion


def test_the_emotion_model_is_chosen_by_id_and_a_typo_names_the_choices():
    assert pipeline_options(parse_config({"vision": {"emotion_model": "emotion_kiosk"}}).vision).emotion_model == (
        "emotion_kiosk"
    )
    assert pipeline_options(parse_config({}).vision).emotion_model == "emotion"
    with pytest.raises(ConfigError, match=r"vision\.emotion_model.*'emotion'.*'emotion_kiosk'"):
        parse_config({"vision": {"emotion_model": "emotion_kisok"}})


def test_the_age_gender_model_is_chosen_by_name_and_a_typo_names_the_choices():
    assert pipeline_options(parse_config({}).vision).age_gender_model == "dlib"
    chosen = parse_config({"vision": {"age_gender_model": "age_gender_kiosk"}}).vision
    assert pipeline_options(chosen).age_gender_model == "age_gender_kiosk"
    with pytest.raises(ConfigError, match=r"vision\.age_gender_model.*'dlib'.*'age_gender_kiosk'"):
        parse_config({"vision": {"age_gender_model": "kiosk"}})


def test_zone_errors_name_the_list_index():
    with pytest.raises(ConfigError) as exc:
        parse_config(
            {
                "zones": [
                    {"id": "a", "rect": [0, 0, 1, 1]},
                    {"id": "b", "polygon": [[0, 0], [1, 1]]},
                    {"id": "c", "rect": [0.5, 0, 0.2, 1]},
                ]
            }
        )
    text = str(exc.value)
    assert "zones[1].polygon: needs at least 3 points, got 2" in text
    assert "zones[2].rect: needs x0 < x1 and y0 < y1" in text


def test_zone_map_exclusions_and_content_schedule():
    cfg = parse_config(
        {
            "zones": [{"id": "q", "type": "queue", "polygon": [[0, 0], [0.5, 0], [0.5, 1]]}],
            "exclusion_zones": [{"rect": [0.8, 0, 1, 1]}],
            "content": {
                "timezone": "Europe/Paris",
                "schedule": [
                    {"label": "promo", "start": "2027-01-01T00:00:00Z", "daily_from": "08:00", "daily_to": "12:00"}
                ],
            },
        }
    )
    zones = zone_map(cfg)
    assert zones.zone_at(0.4, 0.2).id == "q" and zones.zone_at(0.1, 0.9) is None
    assert zones.excluded(0.9, 0.5) and not zones.excluded(0.5, 0.5)
    schedule = content_schedule(cfg.content)
    import datetime as dt

    at = lambda s: dt.datetime.fromisoformat(s).timestamp()  # noqa: E731
    assert schedule.label_at(at("2027-01-15T08:30:00+00:00")) == "promo"  # 09:30 in Paris
    assert schedule.label_at(at("2027-01-15T12:30:00+00:00")) == "none"
    assert schedule.label_at(at("2026-12-31T08:30:00+00:00")) == "none"
    schedule.override("operator-set")
    assert schedule.label_at(at("2026-12-31T08:30:00+00:00")) == "operator-set"


def test_bad_period_and_timezone():
    with pytest.raises(ConfigError, match="store.period_s.*must divide a day"):
        parse_config({"store": {"period_s": 7000}})
    with pytest.raises(ConfigError, match="content.timezone.*unknown timezone"):
        parse_config({"content": {"timezone": "Mars/Olympus"}})


@pytest.mark.parametrize(
    "key, value, says",
    [
        ("device_id", "shelf+1", "'+'"),
        ("device_id", "a/b", "'/'"),
        ("store_id", "#", "'#'"),
        ("store_id", "x\x00y", "NUL"),
        ("prefix", "$SYS", "'$'"),
        ("prefix", "kiosk/", "empty topic level"),
        ("prefix", "ki+osk", "'+'"),
    ],
)
def test_ids_and_prefix_must_be_mqtt_topic_levels(key, value, says):
    """A wildcard made the broker refuse every CONNECT (the daemon ran, silent); a '/' sent the
    summaries where the collector never looks. Refused in the config, with the rule."""
    with pytest.raises(ConfigError) as exc:
        parse_config({"mqtt": {key: value}})
    assert f"mqtt.{key}" in str(exc.value) and says in str(exc.value)


def test_a_prefix_of_several_levels_is_fine():
    assert parse_config({"mqtt": {"prefix": "acme/kiosk", "device_id": "shelf-1.a_b"}}).mqtt.prefix == "acme/kiosk"


def test_billion_laughs_recursive_aliases_and_huge_files_are_refused_at_once(tmp_path):
    """Aliases that expand exponentially hung check-config; one that contains itself ended in a
    RecursionError. Both are refused in well under a second, naming the line and the fix."""
    import time

    lol = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8)
    )
    cases = {
        "laughs.yaml": ("zones:\n  - id: z\n    label: x\n    rect: [0, 0, 1, 1]\n" + lol, "expands to over"),
        "self.yaml": ("zones: &z [*z]\n", "contains it"),
        "deep.yaml": ("content:\n  schedule: " + "[" * 40 + "]" * 40 + "\n", "levels deep"),
        "big.yaml": ("# " + "x" * (1 << 20) + "\n", "KiB"),
    }
    for name, (text, says) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        started = time.monotonic()
        with pytest.raises(ConfigError) as exc:
            load_config(path)
        assert time.monotonic() - started < 2.0, name
        assert says in str(exc.value) and name in str(exc.value), (name, str(exc.value))


@pytest.mark.parametrize(
    "listen, ok",
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        ("0.0.0.0:9108", ("0.0.0.0", 9108)),
        ("[::1]:9108", ("::1", 9108)),
        ("kiosk-1.local:9108", ("kiosk-1.local", 9108)),
        ("9108", None),
        (":9108", None),
        ("127.0.0.1:0", None),
        ("127.0.0.1:70000", None),
        ("http://127.0.0.1:9108", None),
        ("127.0.0.1:9108/metrics", None),
    ],
)
def test_metrics_listen_is_host_and_port(listen, ok):
    from kiosk.config.schema import parse_listen

    assert parse_listen(listen) == ok
    if ok:
        assert parse_config({"service": {"metrics_listen": listen}}).service.metrics_listen == listen
    else:
        with pytest.raises(ConfigError) as exc:
            parse_config({"service": {"metrics_listen": listen}}, "f.yaml")
        assert "f.yaml: service.metrics_listen" in str(exc.value) and "127.0.0.1:9108" in str(exc.value)
    assert KioskConfig().service.metrics_listen is None  # off by default
