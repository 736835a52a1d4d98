"""The one place that imports a TFLite interpreter.

LiteRT (``ai-edge-litert``) is tried first, ``tflite-runtime`` second. The
interpreter object never leaves this module: callers get a :class:`TFLiteModel`
that takes and returns numpy arrays and is closed with a context manager.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

_RUNTIME_ENV = "KIOSK_TFLITE_RUNTIME"  # "litert" or "tflite" forces one runtime


class RuntimeUnavailableError(RuntimeError):
    """Neither LiteRT nor tflite-runtime can be imported."""


@dataclass(frozen=True)
class TensorSpec:
    """Shape, dtype and affine quantization of one model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0


def _import_interpreter() -> tuple[str, Any]:
    forced = os.environ.get(_RUNTIME_ENV, "").strip().lower()
    errors: list[str] = []
    if forced in ("", "litert"):
        try:
            from ai_edge_litert.interpreter import Interpreter

            return "ai-edge-litert", Interpreter
        except ImportError as exc:  # pragma: no cover - depends on the environment
            errors.append(f"ai-edge-litert: {exc}")
    if forced in ("", "tflite"):
        try:
            from tflite_runtime.interpreter import Interpreter

            return "tflite-runtime", Interpreter
        except ImportError as exc:  # pragma: no cover - depends on the environment
            errors.append(f"tflite-runtime: {exc}")
    raise RuntimeUnavailableError(
        "no TFLite runtime could be imported ("
        + "; ".join(errors or [f"{_RUNTIME_ENV}={forced!r} is not 'litert' or 'tflite'"])
        + "). Install one: `pip install ai-edge-litert` (recommended), or "
        "`pip install 'tflite-runtime==2.14.0' 'numpy<2'`."
    )


def runtime_name() -> str:
    """Name of the runtime that :class:`TFLiteModel` will use."""
    return _import_interpreter()[0]


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorSpec(
        name=str(detail["name"]),
        shape=tuple(int(v) for v in detail["shape"]),
        dtype=np.dtype(detail["dtype"]).name,
        scale=float(scale),
        zero_point=int(zero_point),
    )


class TFLiteModel:
    """One loaded ``.tflite`` model: numpy in, numpy out.

    Float inputs given to a quantized input tensor are quantized with the
    tensor's own scale and zero point; quantized outputs are dequantized, so
    callers always see float32 results. Time spent inside ``invoke()`` is
    accumulated in :attr:`invoke_seconds` (the benchmark reads it).
    """

    def __init__(self, path: str | os.PathLike[str], num_threads: int = 2) -> None:
        self.path = Path(path)
        self.runtime, interpreter_cls = _import_interpreter()
        self._interpreter = interpreter_cls(model_path=str(self.path), num_threads=max(1, int(num_threads)))
        self._interpreter.allocate_tensors()
        in_details = self._interpreter.get_input_details()
        out_details = self._interpreter.get_output_details()
        self._in_index = [int(d["index"]) for d in in_details]
        self._out_index = [int(d["index"]) for d in out_details]
        self.inputs = tuple(_spec(d) for d in in_details)
        self.outputs = tuple(_spec(d) for d in out_details)
        self._in_dtypes = [np.dtype(d["dtype"]) for d in in_details]
        self.invoke_seconds = 0.0
        self.invocations = 0

    def __enter__(self) -> TFLiteModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the interpreter; the model cannot run afterwards."""
        self._interpreter = None

    @property
    def closed(self) -> bool:
        return self._interpreter is None

    def _prepare(self, index: int, array: np.ndarray) -> np.ndarray:
        spec, dtype = self.inputs[index], self._in_dtypes[index]
        if array.dtype == dtype:
            return array
        if spec.quantized and dtype.kind in "iu":
            info = np.iinfo(dtype)
            q = np.round(array / spec.scale) + spec.zero_point
            return np.clip(q, info.min, info.max).astype(dtype)
        return array.astype(dtype)

    def run_in_place(self, fill, read=None):
        """Run once, writing the input straight into the interpreter's buffer (no copy):
        ``fill(*inputs)`` gets a writable view of every input tensor, in the tensor's own dtype.
        ``read(*outputs)`` gets read-only views of the outputs and must return copies of what it
        keeps (the views die with the next run); without it, every output as float32, as :meth:`run`.
        """
        interp = self._live()
        views = [interp.tensor(i)() for i in self._in_index]
        fill(*views)
        del views  # the interpreter refuses to run while a view of its buffers is alive
        self._invoke(interp)
        if read is None:
            return self._outputs()
        outs = [interp.tensor(i)() for i in self._out_index]
        try:
            return read(*outs)
        finally:
            del outs

    def _live(self) -> Any:
        """The interpreter, or a clear error when the model has been closed."""
        if self._interpreter is None:
            raise RuntimeError(f"model {self.path.name} is closed")
        return self._interpreter

    def _invoke(self, interp: Any) -> None:
        """One invoke(), timed into :attr:`invoke_seconds` (the benchmark reads it)."""
        start = time.perf_counter()
        interp.invoke()
        self.invoke_seconds += time.perf_counter() - start
        self.invocations += 1

    def _outputs(self) -> list[np.ndarray]:
        results = []
        for spec, index in zip(self.outputs, self._out_index):
            out = self._interpreter.get_tensor(index)
            if spec.quantized:
                out = (out.astype(np.float32) - spec.zero_point) * spec.scale
            results.append(out.astype(np.float32, copy=False))
        return results

    def run(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Run the model once; returns every output as float32."""
        interp = self._live()
        if len(arrays) != len(self._in_index):
            raise ValueError(f"{self.path.name} takes {len(self._in_index)} inputs, got {len(arrays)}")
        for i, (index, array) in enumerate(zip(self._in_index, arrays)):
            interp.set_tensor(index, self._prepare(i, array))
        self._invoke(interp)
        return self._outputs()
