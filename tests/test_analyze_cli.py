"""`kiosk analyze` on images, folders, videos and face crops."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from tests.conftest import data_path


def _analyze(*args: str):
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "analyze", *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


def test_astronaut(sample_image):
    records, _ = _analyze(str(sample_image))
    assert len(records) == 2
    (face,) = records[0]["faces"]
    assert set(face) >= {"box", "score", "keypoints", "pose", "emotion", "age", "gender"}
    assert len(face["keypoints"]) == 6 and set(face["pose"]) == {"yaw", "pitch", "roll"}
    assert face["dominant_emotion"] == "happy"
    assert face["gender"]["female"] > 0.9
    assert 25 <= face["age"] <= 60
    assert abs(sum(face["emotion"].values()) - 1) < 0.01
    assert records[1]["summary"]["faces"] == 1


def test_folder_and_video_with_every(tmp_path):
    clip = data_path("videos", "hamilton-speech.mp4")
    records, _ = _analyze(str(clip), "--every", "30")
    frames = [r for r in records if "frame" in r]
    assert [r["frame"] for r in frames] == list(range(0, 30 * len(frames), 30))
    assert 9 <= len(frames) <= 10 and abs(frames[1]["t"] - 1.0) < 0.01
    assert sum(len(r["faces"]) for r in frames) >= len(frames)  # at least one face per sampled frame
    assert records[-1]["summary"]["video_frames"] == len(frames)


def test_face_crops_folder(tmp_path):
    src = data_path("fer2013-publictest", "happy")
    for p in sorted(src.iterdir())[:5]:
        shutil.copy(p, tmp_path / p.name)
    records, _ = _analyze(str(tmp_path), "--face-crops")
    images = [r for r in records if "faces" in r]
    assert len(images) == 5 and all(len(r["faces"]) == 1 for r in images)
    assert records[-1]["summary"]["dominant_emotions"]["happy"] >= 3


def test_annotate_is_opt_in_and_says_it_writes_images(tmp_path, sample_image):
    out = tmp_path / "debug"
    _, stderr = _analyze(str(sample_image))
    assert "writes images" not in stderr
    _, stderr = _analyze(str(sample_image), "--annotate", str(out))
    assert "writes images of faces" in stderr
    assert [p.name for p in out.iterdir()] == ["astronaut.annotated.jpg"]


def test_invalid_config_exits_78_naming_the_path(tmp_path, sample_image):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("vision:\n  detector:\n    score_treshold: 0.4\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "analyze", "--config", str(cfg), str(sample_image)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 78
    assert "vision.detector.score_treshold" in proc.stderr


def test_annotate_works_for_images_with_alpha(tmp_path, sample_image):
    import cv2

    rgba = tmp_path / "with-alpha.png"
    cv2.imwrite(str(rgba), cv2.cvtColor(cv2.imread(str(sample_image)), cv2.COLOR_BGR2BGRA))
    out = tmp_path / "debug"
    records, _ = _analyze(str(rgba), "--annotate", str(out))
    assert len(records[0]["faces"]) == 1
    assert cv2.imread(str(out / "with-alpha.annotated.jpg")).shape[2] == 3
