from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("KIOSK_DATA_DIR", PROJECT.parent / "shared" / "data"))
SAMPLE = PROJECT / ".cache" / "samples" / "astronaut.png"


def data_path(*parts: str) -> Path:
    """A path under ../shared/data; the test is skipped, with the reason, when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"test data {path} is absent (../shared/data is not beside this checkout; set KIOSK_DATA_DIR)")
    return path


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
