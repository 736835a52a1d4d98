"""Convert the project's own two-head age and gender model (``training/age_gender.py``) to full-int8
TFLite, measure it beside the upstream pair, report.

    .venv-train/bin/python -m converters.age_gender_trained [--run .cache/training/age_gender]

Calibration: every 10th chip of the training run's held-out split (training data only).
Evaluation, once, at the end: UTKFace dev (3,000 faces), chips cut by the device's own chain
(``converters.age_gender.utk_chips``), float Keras against int8 through the device's
``AgeGenderEstimator`` (the converter fails if the mean |int8 - float| age difference exceeds
1 year, int8's MAE is more than 0.3 years worse, gender agreement is below 97% or int8 gender
accuracy more than 1 point below float); age MAE, mean bias and gender accuracy per age band, for
this model and the upstream age + gender models on the same chips; one thread, median ms per face.
Writes ``models/age_gender_kiosk_int8.tflite``, its manifest entry (training data, command, seed,
figures, sha256) and ``models/reports/age_gender_kiosk.md`` with curves and the gender confusion.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from converters.age_gender import utk_chips
from converters.common import (
    MODELS,
    fail_if,
    file_fields,
    keras_full_int8,
    machine_description,
    median_ms,
    update_manifest,
    write_model,
)
from kiosk.vision.classifiers import AgeEstimator, AgeGenderEstimator, GenderClassifier, age_gender_input, softmax
from kiosk.vision.runtime import TFLiteModel
from training.age_gender import BANDS, HELD_OUT, age_band, band_names, load_chips, logits_model
from training.common import (
    confusion,
    load_trained_run,
    plot_confusion,
    plot_curves,
    read_history,
    stratified_split,
    training_seconds,
)

OUT_NAME = "age_gender_kiosk_int8.tflite"
MODEL_ID = "age_gender_kiosk"
MAX_MEAN_AGE_DIFF = 1.0  # years, int8 vs float
MAX_MAE_INCREASE = 0.3  # years
MIN_GENDER_AGREEMENT = 0.97
MAX_GENDER_ACCURACY_DROP = 0.01
REPORTS = MODELS / "reports"


def keras_predictions(model, chips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([age_gender_input(c) for c in chips])
    age_logits, gender_logits = model.predict(x, batch_size=256, verbose=0)
    return softmax(age_logits) @ np.arange(age_logits.shape[1]), softmax(gender_logits)[:, 1]


def kiosk_predictions(path: Path, chips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with TFLiteModel(path, num_threads=1) as m:
        est = AgeGenderEstimator(m)
        out = [est.estimate(c) for c in chips]
    return np.array([a for a, _ in out]), np.array([g[1] for _, g in out])


def upstream_predictions(c64: np.ndarray, c32: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with (
        TFLiteModel(MODELS / "age_int8.tflite", num_threads=1) as am,
        TFLiteModel(MODELS / "gender_int8.tflite", num_threads=1) as gm,
    ):
        age, gender = AgeEstimator(am), GenderClassifier(gm)
        return np.array([age.estimate(c) for c in c64]), np.array([gender.classify(c)[1] for c in c32])


def timings(path: Path, chip64: np.ndarray, chip32: np.ndarray) -> tuple[float, float]:
    """Median ms per face, one thread: this model (both heads, one run) and the upstream age + gender."""
    with TFLiteModel(path, num_threads=1) as m:
        est = AgeGenderEstimator(m)
        ms = median_ms(lambda: est.estimate(chip64))
    with (
        TFLiteModel(MODELS / "age_int8.tflite", num_threads=1) as am,
        TFLiteModel(MODELS / "gender_int8.tflite", num_threads=1) as gm,
    ):
        age, gender = AgeEstimator(am), GenderClassifier(gm)
        ms_up = median_ms(lambda: (age.estimate(chip64), gender.classify(chip32)))
    return ms, ms_up


def figures(ages: np.ndarray, males: np.ndarray, pred_age: np.ndarray, p_male: np.ndarray) -> dict:
    """Age MAE and bias, gender accuracy: overall, for ages 20+ and per band."""
    err = pred_age - ages
    right = (p_male > 0.5) == males.astype(bool)
    band = age_band(ages)
    per_band = {}
    for i, name in enumerate(band_names()):
        sel = band == i
        per_band[name] = {
            "faces": int(sel.sum()),
            "age_mae": round(float(np.abs(err[sel]).mean()), 3),
            "age_bias": round(float(err[sel].mean()), 3),
            "gender_accuracy": round(float(right[sel].mean()), 4),
        }
    adults = ages >= 20
    return {
        "age_mae": round(float(np.abs(err).mean()), 3),
        "age_within_5": round(float((np.abs(err) <= 5).mean()), 4),
        "gender_accuracy": round(float(right.mean()), 4),
        "gender_accuracy_20_plus": round(float(right[adults].mean()), 4),
        "bands": per_band,
    }


def main(argv: list[str] | None = None) -> int:
    run, settings, trained = load_trained_run("age_gender", __doc__.splitlines()[0], argv)
    export = logits_model(trained)

    chips, ages_train, genders_train = load_chips(run)
    cells = age_band(ages_train) * 2 + genders_train.astype(np.int64)
    _, held = stratified_split(cells, HELD_OUT, settings["seed"])
    calib = np.concatenate([age_gender_input(chips[i]) for i in held[::10]])

    c64, c32, ages, genders = utk_chips("utkface-dev")
    ref_age, ref_male = keras_predictions(export, c64)
    with tempfile.TemporaryDirectory() as tmp:
        cand = Path(tmp) / OUT_NAME
        cand.write_bytes(keras_full_int8(export, calib))
        got_age, got_male = kiosk_predictions(cand, c64)
        ms, ms_up = timings(cand, c64[0], c32[0])
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(cand))
        in_det, out_det = it.get_input_details(), it.get_output_details()
        tflite = cand.read_bytes()
    up_age, up_male = upstream_predictions(c64, c32)

    float_fig, int8_fig, up_fig = (
        figures(ages, genders, a, g) for a, g in ((ref_age, ref_male), (got_age, got_male), (up_age, up_male))
    )
    mean_diff = float(np.abs(got_age - ref_age).mean())
    g_agree = float(((got_male > 0.5) == (ref_male > 0.5)).mean())
    print(f"float: {json.dumps(float_fig)}")
    print(f"int8:  {json.dumps(int8_fig)}")
    print(f"upstream int8: {json.dumps(up_fig)}")
    print(f"int8 vs float: mean |age diff| {mean_diff:.3f} y, gender agreement {g_agree:.4f}")
    print(f"ms per face, one thread: {ms:.3f} both heads (upstream age + gender {ms_up:.3f})")
    fail_if(mean_diff > MAX_MEAN_AGE_DIFF, f"age mean |int8 - float| {mean_diff:.2f} > {MAX_MEAN_AGE_DIFF} years")
    fail_if(
        int8_fig["age_mae"] - float_fig["age_mae"] > MAX_MAE_INCREASE,
        f"int8 age MAE {int8_fig['age_mae']} vs float {float_fig['age_mae']}",
    )
    fail_if(g_agree < MIN_GENDER_AGREEMENT, f"gender agreement {g_agree:.3f} < {MIN_GENDER_AGREEMENT}")
    fail_if(
        float_fig["gender_accuracy"] - int8_fig["gender_accuracy"] > MAX_GENDER_ACCURACY_DROP,
        f"int8 gender accuracy {int8_fig['gender_accuracy']} vs float {float_fig['gender_accuracy']}",
    )

    history = read_history(run / "history.csv")
    best = min(history, key=lambda r: r["val_loss"])
    seconds = training_seconds(run)
    out = write_model(tflite, OUT_NAME)
    evaluation = {
        "set": f"UTKFace dev, {len(ages)} faces, chips from kiosk's face mesh on the whole crop, evaluated once after training",
        "keras": float_fig,
        "int8": int8_fig,
        "ms_per_face_1_thread": round(ms, 3),
        "upstream": {**up_fig, "ms_per_face_1_thread": round(ms_up, 3)},
    }
    command = (
        "python -m training.age_gender "
        + " ".join(f"--{k} {v}" for k, v in settings.items() if k != "limit" or v)
        + "; python -m converters.age_gender_trained"
    )
    update_manifest(
        {
            **file_fields(MODEL_ID, "age_gender", out, in_det, out_det),
            "labels": [
                "age: logits for the years 0..100 (years = sum(softmax * [0..100]))",
                "gender: logits (female, male)",
            ],
            "preprocessing": "as age (the same 64x64 RGB dlib chip, padding 0.2, and (pixel - mean) / 256); "
            "both heads from one run; softmax on the device, in float",
            "licence": "the project's own weights; trained on UTKFace, a non-commercial research data set",
            "provenance": {
                "kind": "trained",
                "converter": "python -m converters.age_gender_trained (TFLiteConverter.from_keras_model, "
                "TFLITE_BUILTINS_INT8, int8 input, float32 output)",
                "calibration": f"every 10th chip of the held-out 10% of utkface-train ({len(calib)} faces)",
                "agreement": {
                    "dev_set": f"UTKFace dev, {len(ages)} faces",
                    "source_mae_years": float_fig["age_mae"],
                    "int8_mae_years": int8_fig["age_mae"],
                    "source_accuracy": float_fig["gender_accuracy"],
                    "int8_accuracy": int8_fig["gender_accuracy"],
                    "mean_abs_age_difference_years": round(mean_diff, 3),
                    "gender_agreement": round(g_agree, 4),
                    "bounds": f"mean |int8 - float| <= {MAX_MEAN_AGE_DIFF} y, MAE increase <= {MAX_MAE_INCREASE} y, "
                    f"gender agreement >= {MIN_GENDER_AGREEMENT}, accuracy drop <= {MAX_GENDER_ACCURACY_DROP}",
                },
                "training": {
                    "data": f"utkface-train ({len(ages_train)} faces): {len(ages_train) - len(held)} trained on, "
                    f"{len(held)} held out (10% of each age band and gender) for selection and early stopping",
                    "command": command,
                    "seed": settings["seed"],
                    "parameters": int(trained.count_params()),
                    "epochs": len(history),
                    "best_epoch": int(best["epoch"]) + 1,
                    "held_out": {
                        "loss": round(best["val_loss"], 4),
                        "age_mae": round(best.get("val_age_age_mae", float("nan")), 3),
                        "gender_accuracy": round(best.get("val_gender_accuracy", float("nan")), 4),
                    },
                    "evaluation": evaluation,
                    "training_seconds": round(seconds),
                    "machine": machine_description(),  # where the times were measured
                },
            },
        }
    )
    write_report(history, evaluation, genders, got_male, trained.count_params(), out, seconds, command)
    print(f"wrote {out}, its manifest entry and {REPORTS / 'age_gender_kiosk.md'}")
    return 0


def write_report(history, ev, truth, p_male, params, model_file, seconds, command) -> None:
    REPORTS.mkdir(exist_ok=True)
    plot_curves(
        history,
        [("age_age_mae", "val_age_age_mae"), ("gender_accuracy", "val_gender_accuracy"), ("loss", "val_loss")],
        REPORTS / "age_gender_kiosk_curves.png",
        "age_gender_kiosk: utkface-train (augmented, weighted) and its held-out 10%",
    )
    m = confusion(truth.astype(np.int64), (p_male > 0.5).astype(np.int64), 2)
    plot_confusion(
        m, ["female", "male"], REPORTS / "age_gender_kiosk_confusion.png", "age_gender_kiosk int8 gender, UTKFace dev"
    )
    up, own = ev["upstream"], ev["int8"]
    rows = "\n".join(
        f"| {b} | {own['bands'][b]['faces']} | {up['bands'][b]['age_mae']:.2f} | {own['bands'][b]['age_mae']:.2f} "
        f"| {up['bands'][b]['age_bias']:+.2f} | {own['bands'][b]['age_bias']:+.2f} "
        f"| {up['bands'][b]['gender_accuracy']:.3f} | {own['bands'][b]['gender_accuracy']:.3f} |"
        for b in band_names()
    )
    best = min(history, key=lambda r: r["val_loss"])
    text = f"""# age_gender_kiosk: the project's own age and gender model

Made by `{command}` on a 2-core x86_64 CPU: {len(history)} epochs, {seconds / 3600:.2f} h of training;
best held-out loss at epoch {int(best["epoch"]) + 1} (10% of utkface-train): age MAE
{best.get("val_age_age_mae", float("nan")):.2f} years, gender {best.get("val_gender_accuracy", float("nan")):.4f}.
{params:,} parameters, {model_file.stat().st_size:,} bytes int8, both heads in one run.

## UTKFace dev (3,000 faces), evaluated once after training

Chips cut by the device's chain (face mesh, five alignment points, 64 px dlib chip; the upstream
gender model gets its 32 px chip).

| | upstream (dlib-models age + gender, int8) | age_gender_kiosk (int8) |
|---|---|---|
| age MAE, years | {up["age_mae"]:.3f} | {own["age_mae"]:.3f} (Keras float {ev["keras"]["age_mae"]:.3f}) |
| age within 5 years | {up["age_within_5"]:.3f} | {own["age_within_5"]:.3f} |
| gender accuracy | {up["gender_accuracy"]:.4f} | {own["gender_accuracy"]:.4f} (Keras float {ev["keras"]["gender_accuracy"]:.4f}) |
| gender accuracy, ages 20+ | {up["gender_accuracy_20_plus"]:.4f} | {own["gender_accuracy_20_plus"]:.4f} |
| ms per face, one thread, this machine (age and gender) | {up["ms_per_face_1_thread"]:.3f} | {ev["ms_per_face_1_thread"]:.3f} |

Per age band (bias: mean of predicted - true age; bands {", ".join(band_names())}, edges {BANDS[1:-1]}):

| band | faces | age MAE upstream | age MAE kiosk | bias upstream | bias kiosk | gender upstream | gender kiosk |
|---|---|---|---|---|---|---|---|
{rows}

![curves](age_gender_kiosk_curves.png)
![gender confusion](age_gender_kiosk_confusion.png)
"""
    (REPORTS / "age_gender_kiosk.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
