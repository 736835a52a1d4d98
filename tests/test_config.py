"""Config schema: strict, documented, errors by YAML path."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from kiosk.config import ConfigError, KioskConfig, load_config, parse_config

PROJECT = Path(__file__).resolve().parents[1]


def _models(model: type[BaseModel]):
    yield model
    for field in model.model_fields.values():
        ann = field.annotation
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
    assert "vision.detector.modle: Extra inputs are not permitted" in text
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
    opts = cfg.vision.pipeline_options()
    assert opts.num_threads == 1 and opts.detector.model == "face_detector_short" and not opts.emotion
