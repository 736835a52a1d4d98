from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("KIOSK_DATA_DIR", PROJECT.parent / "shared" / "data"))
SAMPLE = PROJECT / ".cache" / "samples" / "astronaut.png"
SCENE_T0 = 1_800_000_000.0  # wall time of the generated scene's first frame (2027-01-15T08:00:00Z)


def data_path(*parts: str) -> Path:
    """A path under ../shared/data; the test is skipped, with the reason, when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"test data {path} is absent (../shared/data is not beside this checkout; set KIOSK_DATA_DIR)")
    return path


@pytest.fixture
def broker(tmp_path):
    """A real Mosquitto on a free loopback port, for one test."""
    from tests.broker import Broker

    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def pipeline():
    from kiosk.vision.pipeline import VisionPipeline

    with VisionPipeline() as p:
        yield p


@pytest.fixture(scope="session")
def sample_image() -> Path:
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is missing: run `kiosk models install --samples` (the README's commands do)")
    return SAMPLE


@pytest.fixture(scope="session")
def scene(tmp_path_factory):
    from kiosk.config import parse_config
    from kiosk.testing.evaluate import score
    from kiosk.testing.scenario import generate
    from tests.helpers import run_visits

    data_path("utkface-dev")
    video, truth_path = generate(tmp_path_factory.mktemp("scene"), DATA, seed=11, duration=240.0, people=40)
    truth = json.loads(truth_path.read_text())
    cfg = parse_config(truth["config"])
    visits, chain = run_visits(cfg, video, SCENE_T0)
    result = score(truth["people"], visits, SCENE_T0)
    print(json.dumps(result.summary()))
    return truth, visits, result, chain
