"""The TFLite runtime shim."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kiosk.modelfiles.manifest import project_models_dir
from kiosk.vision.runtime import TFLiteModel, runtime_name


def test_expected_runtime_is_in_use():
    """scripts/test runs the vision tests a second time under tflite-runtime and says so here."""
    expected = os.environ.get("KIOSK_EXPECT_RUNTIME", "ai-edge-litert")
    assert runtime_name() == expected


def test_quantized_io_and_close():
    with TFLiteModel(project_models_dir() / "gender_int8.tflite", num_threads=1) as m:
        assert m.inputs[0].quantized and m.inputs[0].dtype == "int8"
        (probs,) = m.run(np.zeros((1, 32, 32, 3), np.float32))
        assert probs.dtype == np.float32 and probs.shape == (1, 2)
        assert probs.sum() == pytest.approx(1.0, abs=0.02)
        assert m.invocations == 1 and m.invoke_seconds > 0
    assert m.closed
    with pytest.raises(RuntimeError, match="closed"):
        m.run(np.zeros((1, 32, 32, 3), np.float32))


def test_wrong_number_of_inputs():
    with TFLiteModel(project_models_dir() / "emotion_int8.tflite") as m:
        with pytest.raises(ValueError, match="takes 1 inputs"):
            m.run()
