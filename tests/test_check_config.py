"""`kiosk check-config` against a table of broken configs: each exits 78 (EX_CONFIG) with a
message that names the YAML path (and, from a file, the line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kiosk.cli import cli
from kiosk.config import ConfigError, load_config, parse_config

PROJECT = Path(__file__).resolve().parents[1]

BROKEN = [
    # (YAML, what the message must contain)
    ("vision:\n  num_threads: many\n", "vision.num_threads: Input should be a valid integer"),
    ("vision:\n  num_threads: 0\n", "vision.num_threads"),
    ("vision:\n  detector:\n    modle: face_detector_short\n", "did you mean 'model'?"),
    ("vision:\n  detector:\n    model: yolo\n", "vision.detector.model"),
    ("vision:\n  detector:\n    score_threshold: 1.5\n", "vision.detector.score_threshold"),
    ("vison:\n  num_threads: 2\n", "unknown key 'vison'; did you mean 'vision'?"),
    ("camera:\n  sauce: 0\n", "did you mean 'source'?"),
    ("camera:\n  fps: -1\n", "camera.fps"),
    ("camera:\n  width: wide\n", "camera.width"),
    ("camera:\n  loop: perhaps\n", "camera.loop"),
    ("tracking:\n  max_age_s: 0\n", "tracking.max_age_s"),
    ("tracking:\n  min_hits: 2.5\n", "tracking.min_hits"),
    ("visits:\n  age_bands: [30, 18]\n", "visits.age_bands: needs positive, strictly increasing"),
    ("visits:\n  min_dwell_s: -3\n", "visits.min_dwell_s"),
    ("zones:\n  - id: a\n    polygon: [[0, 0], [1, 1]]\n", "zones[0].polygon: needs at least 3 points, got 2"),
    ("zones:\n  - id: a\n    rect: [0, 0, 1]\n", "zones[0].rect: needs 4 numbers"),
    ("zones:\n  - id: a\n    rect: [0, 0, 2, 1]\n", "zones[0].rect: coordinates are fractions"),
    ("zones:\n  - id: a\n", "zones[0]: give exactly one of rect or polygon"),
    ("zones:\n  - id: a\n    rect: [0, 0, 1, 1]\n  - id: a\n    rect: [0, 0, 1, 1]\n", "zone id 'a' is used twice"),
    ("zones:\n  - id: a\n    type: checkout\n    rect: [0, 0, 1, 1]\n", "zones[0].type"),
    ("zones:\n  id: a\n", "zones: Input should be a valid list"),
    ("exclusion_zones:\n  - polygon: [[0, 0], [0.5, 0], [2, 1]]\n", "exclusion_zones[0].polygon"),
    ("content:\n  timezone: Mars/Olympus\n", "content.timezone: unknown timezone"),
    (
        "content:\n  schedule:\n    - label: x\n      start: 2027-01-01T08:00:00\n",
        "content.schedule[0]: start needs a timezone",
    ),
    ("content:\n  schedule:\n    - label: x\n      daily_from: '08:00'\n", "give both daily_from and daily_to"),
    ("content:\n  schedule:\n    - label: x\n      days: [monday]\n", "content.schedule[0].days[0]"),
    ("store:\n  period_s: 7000\n", "store.period_s: must divide a day"),
    ("store:\n  k_anonymity: 1\n", "store.k_anonymity"),
    ("store:\n  k_anonymity: 2\n", "store.k_anonymity: Input should be greater than or equal to 3"),
    ("visits:\n  min_attention_s: 1.5\n", "visits.min_attention_s: must be one of the attention histogram"),
    ("content:\n  labels: ['']\n", "content.labels: each label needs 1-200 characters"),
    ("mqtt:\n  port: 70000\n", "mqtt.port"),
    ("mqtt:\n  protocol: 3\n", "mqtt.protocol"),
    ("mqtt:\n  password: hunter2\n", "unknown key 'password'"),
    ("mqtt:\n  password_file: /nonexistent/secret\n", "mqtt.password_file: cannot read /nonexistent/secret"),
    ("mqtt:\n  password_env: KIOSK_TEST_UNSET_VARIABLE\n", "mqtt.password_env: the environment variable"),
    ("mqtt:\n  password_file: /etc/hostname\n  password_env: X\n", "give password_file or password_env, not both"),
    ("mqtt:\n  ca_file: /etc/hostname\n  cert_file: /etc/hostname\n", "mutual TLS needs both cert_file and key_file"),
    ("mqtt:\n  ca_file: /nonexistent/ca.crt\n", "mqtt.ca_file: cannot read"),
    ("mqtt:\n  store_id: ''\n", "mqtt.store_id"),
    ("mqtt:\n  port: 1883\n  port: 1884\n", "the key appears twice"),
    ("service:\n  log_level: loud\n", "service.log_level"),
    ("vision: [unclosed\n", "not valid YAML"),
    ("vision:\n  num_threads: 2\n   detector: {}\n", "not valid YAML"),
    ("- just\n- a list\n", "the top level must be a mapping"),
    ("mqtt: !!python/object:os.system {}\n", "not valid YAML"),
]


@pytest.mark.parametrize("text,expected", BROKEN, ids=[f"case{i:02d}" for i in range(len(BROKEN))])
def test_broken_config_exits_78_and_names_the_path(tmp_path, text, expected):
    path = tmp_path / "kiosk.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 78, (result.exit_code, result.output)
    assert expected in result.output, result.output
    assert "Traceback" not in result.output


def test_at_least_30_cases():
    assert len(BROKEN) >= 30


def test_messages_from_a_file_carry_the_line(tmp_path):
    path = tmp_path / "kiosk.yaml"
    path.write_text(
        "mqtt:\n  host: broker\n\nzones:\n  - id: shelf\n    rect: [0, 0, 1, 1]\n"
        "  - id: queue\n    polygon: [[0, 0], [1, 1]]\n"
    )
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert f"{path}:8: zones[1].polygon: needs at least 3 points, got 2" in result.output, result.output


def test_unreadable_file_and_yaml_11_ids_stay_strings(tmp_path):
    result = CliRunner().invoke(cli, ["check-config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 78 and "cannot read the config file" in result.output
    path = tmp_path / "kiosk.yaml"
    path.write_text(
        "mqtt:\n  store_id: no\n  device_id: 0012\n  username: on\ncamera:\n  source: 0\n"
        "zones:\n  - id: 1e3\n    label: yes\n    rect: [0, 0, 1, 1]\n"
    )
    cfg = load_config(path)
    assert (cfg.mqtt.store_id, cfg.mqtt.device_id, cfg.mqtt.username) == ("no", "0012", "on")
    assert (cfg.camera.source, cfg.zones[0].id, cfg.zones[0].label) == ("0", "1e3", "yes")


def test_valid_configs_exit_0_and_the_real_command_exits_78(tmp_path):
    for name in ("kiosk.example.yaml", "demo.yaml"):
        result = CliRunner().invoke(cli, ["check-config", str(PROJECT / "config" / name)])
        assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("vision:\n  num_threads: 0\n")
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_TEST_UNSET_VARIABLE"}
    for args in (["check-config", str(bad)], ["run", "--config", str(bad)]):
        proc = subprocess.run(
            [sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True, env=env, timeout=60
        )
        assert proc.returncode == 78, (args, proc.stdout, proc.stderr)
        assert "vision.num_threads" in proc.stderr


def test_demo_config_zones_are_the_generated_scenes():
    from kiosk.testing.scenario import config_for_scenario

    cfg = load_config(PROJECT / "config" / "demo.yaml")
    scene = config_for_scenario()
    assert [z.model_dump(exclude_none=True) for z in cfg.zones] == [
        {**z, "rect": [float(c) for c in z["rect"]]} for z in scene["zones"]
    ]
    assert [e.rect for e in cfg.exclusion_zones] == [scene["exclusion_zones"][0]["rect"]]


def _check(tmp_path, text: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "kiosk.yaml"
    cfg.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "check-config", str(cfg)], capture_output=True, text=True, timeout=60
    )


def test_what_run_would_open_is_opened_by_check_config(tmp_path):
    """TLS files that are a directory or not PEM, and store paths that cannot be written, passed
    check-config and then crashed 'kiosk run' into a restart loop: each is one line naming the key."""
    (tmp_path / "notpem.crt").write_text("hello\n")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    ids = "mqtt:\n  device_id: dev-1\n"
    cases = [
        (f"{ids}  ca_file: {tmp_path}\n", "mqtt.ca_file: cannot read", "a directory"),
        (f"{ids}  ca_file: {tmp_path / 'notpem.crt'}\n", "mqtt.ca_file", "not a usable CA certificate"),
        (f"{ids}store:\n  path: {tmp_path}\n", "store.path", "is a directory"),
        (f"{ids}store:\n  path: {tmp_path / 'afile' / 'kiosk.db'}\n", "store.path", "is a file"),
        ("mqtt:\n  store_id: s\n", "mqtt.device_id is not set", "mqtt.enabled: false"),
    ]
    if os.geteuid() != 0:  # root may write anywhere but on a read-only mount
        cases.append((f"{ids}store:\n  path: {tmp_path / 'ro' / 'kiosk.db'}\n", "store.path", "not writable"))
    for text, key, says in cases:
        proc = _check(tmp_path, text)
        assert proc.returncode == 78 and key in proc.stderr and says in proc.stderr, (text, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert _check(tmp_path, "mqtt:\n  enabled: false\n").returncode == 0  # no broker: no device id needed
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "check-config", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 78 and "is a directory" in proc.stderr  # not click's usage error (2)


@pytest.mark.parametrize(
    "polygon, says",
    [
        ([[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]], "encloses no area"),
        ([[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]], "crosses itself"),
    ],
)
def test_zero_area_and_self_intersecting_polygons_are_refused(polygon, says):
    with pytest.raises(ConfigError) as exc:
        parse_config({"zones": [{"id": "a", "polygon": polygon}]})
    assert "zones[0].polygon" in str(exc.value) and says in str(exc.value)
    assert parse_config({"zones": [{"id": "a", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]}]})
