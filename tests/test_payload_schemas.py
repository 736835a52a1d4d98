"""The JSON schemas in docs/schema are generated from the payload models and kept up to date;
the collector checks each summary against the schema of its own version."""

from __future__ import annotations

import json

from kiosk.fleet.collector import SCHEMA_DIR, Collector
from kiosk.fleet.database import CollectorStore
from kiosk.mqtt.client import MqttOptions
from kiosk.payloads.__main__ import GENERATED, render
from kiosk.payloads.summary import Summary
from kiosk.store.db import open_db
from kiosk.summary import build_summary
from tests.helpers import T0, context, fill


def test_committed_schemas_are_what_the_models_generate():
    for name in GENERATED:
        committed = (SCHEMA_DIR / name).read_text()
        assert committed == render(name), f"docs/schema/{name} is out of date: run python -m kiosk.payloads"


def test_each_command_schema_takes_what_the_device_accepts_and_refuses_what_it_refuses():
    import jsonschema

    from kiosk.payloads.commands import COMMANDS, CommandError, parse_command

    examples = {"republish": {"from_seq": 3}, "ping": {"id": "a1"}, "content": {"label": "winter-promo"}}
    refused = {
        "republish": [{"from_seq": 0}, {"from_seq": "3"}, {}],
        "ping": [{"id": "x" * 101}, {"id": 7}],
        "content": [{"label": ""}, {}, {"label": 5}],
    }
    assert set(examples) == set(COMMANDS)
    for name in COMMANDS:
        validator = jsonschema.Draft202012Validator(json.loads((SCHEMA_DIR / f"command.{name}.v1.json").read_text()))
        for good in (examples[name], {**examples[name], "id": "op-7"}):
            parse_command(name, json.dumps(good).encode())
            assert list(validator.iter_errors(good)) == [], (name, good)
        for bad in [*refused[name], {**examples[name], "extra": 1}]:
            try:
                parse_command(name, json.dumps(bad).encode())
            except CommandError:
                pass
            else:
                raise AssertionError(f"{name} accepted {bad}")
            assert list(validator.iter_errors(bad)), (name, bad)


def test_a_built_summary_is_a_valid_model_and_the_model_refuses_a_changed_shape(tmp_path):
    db = open_db(tmp_path / "d.db")
    fill(db, 1, 300)
    msg = build_summary(db, context(300), T0, seq=1, dropped=0, clock_synced=True)
    Summary.model_validate(msg)
    broken = json.loads(json.dumps(msg))
    del broken["zones"][0]["gender"]["unknown"]  # a key that depends on the data
    try:
        Summary.model_validate(broken)
    except ValueError as exc:
        assert "unknown" in str(exc)
    else:
        raise AssertionError("a summary without gender.unknown was accepted")


def test_the_collector_takes_version_1_and_2_and_refuses_others(tmp_path):
    db = open_db(tmp_path / "d.db")
    fill(db, 1, 300)
    v2 = build_summary(db, context(300), T0, seq=1, dropped=0, clock_synced=True)
    v1 = {
        "schema": "kiosk.summary",
        "schema_version": 1,
        "device_id": "dev-1",
        "store_id": "store-1",
        "seq": 2,
        "period_start": "2027-01-15T08:05:00Z",
        "period_end": "2027-01-15T08:10:00Z",
        "clock_synced": True,
        "models": {},
        "k": 5,
        "suppressed_cells": 0,
        "dropped_summaries": 0,
        "zones": [],
    }
    store = CollectorStore(tmp_path / "central.db")
    collector = Collector(MqttOptions(port=1, client_id="c"), store, republish_every_s=0)  # never started
    topic = "kiosk/store-1/dev-1/summary"
    for msg in (
        v2,
        v1,
        {**v1, "seq": 3, "schema_version": 3},
        {**v2, "seq": 4, "schema_version": "2"},
        {**v2, "seq": 5, "k": 1},
    ):
        collector._on_message(topic, json.dumps(msg).encode())
    assert store.seqs("dev-1") == [1, 2] and store.invalid == 3
    store.close()
