"""The built wheel works without the source tree (and without the test-only ``kiosk.testing``): installed into a fresh virtual environment with its declared
dependencies and run from elsewhere, it finds its manifest, its own int8 models and its payload schemas (package data, read
with importlib.resources), installs and verifies the models, checks a config, analyses a photo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(program: Path, args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    out = subprocess.run([str(program), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (args, out.stdout[-2000:], out.stderr[-2000:])
    return out


def test_the_wheel_runs_without_the_source_tree(tmp_path, sample_image):
    # built from a copy: a build/ folder left in the tree by an earlier build would leak stale files into it
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", ".cache", "build", "dist", "*.egg-info", "__pycache__", "face_*.tflite", "out"
        ),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("kiosk-*.whl"))
    # a fresh virtual environment with nothing but the wheel and the dependencies it declares
    # (from the registry, or pip's cache of it): what a device gets from `pip install kiosk-*.whl`
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python, kiosk = venv / "bin" / "python", venv / "bin" / "kiosk"  # the console script the wheel declares
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    assert (site / "kiosk" / "modelfiles" / "bundled" / "manifest.yaml").is_file()
    assert (site / "kiosk" / "setup" / "page.html").is_file()  # kiosk setup's page travels with the wheel
    assert not (site / "kiosk" / "testing").exists()  # the scene generators and the attacker stay in the checkout
    models = tmp_path / "models"
    models.mkdir()
    for upstream in ROOT.glob(
        "models/face_*.tflite"
    ):  # fetched from their wheels already; the project's own come from ours
        shutil.copyfile(upstream, models / upstream.name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["KIOSK_MODELS_DIR"] = str(models)
    where = run(python, ["-c", "import kiosk; print(kiosk.__file__)"], elsewhere, env).stdout.strip()
    assert where.startswith(str(site)), where  # the installed wheel, not the source tree
    installed = run(kiosk, ["models", "install"], elsewhere, env).stdout
    assert "emotion_int8.tflite" in installed and (models / "emotion_int8.tflite").is_file(), installed
    run(kiosk, ["models", "verify"], elsewhere, env)
    schemas = run(
        python,
        [
            "-c",
            # read where the collector reads them (its jsonschema comes with the `collect` extra only)
            "import json; from kiosk.fleet.collector import SCHEMA_DIR as d; print(' '.join(json.loads((d / n)"
            ".read_text())['$id'] for n in ('summary.v2.json', 'status.v1.json', 'stats.v2.json')))",
        ],
        elsewhere,
        env,
    )
    assert schemas.stdout.split() == ["kiosk.summary/2", "kiosk.status/1", "kiosk.stats/2"], schemas.stdout
    config = tmp_path / "kiosk.yaml"
    config.write_text(f"store:\n  path: {tmp_path / 'kiosk.db'}\nmqtt:\n  device_id: shelf-1\n  store_id: s1\n")
    run(kiosk, ["check-config", str(config)], elsewhere, env)
    records = [
        json.loads(line) for line in run(kiosk, ["analyze", str(sample_image)], elsewhere, env).stdout.splitlines()
    ]
    assert records[-1]["summary"]["faces"] >= 1, records[-1]
