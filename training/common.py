"""What every training command shares: paths, seeding, a resumable Keras fit, the report's figures."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.common import PROJECT


def run_dir(name: str) -> Path:
    d = Path(os.environ.get("KIOSK_TRAINING_DIR", PROJECT / ".cache" / "training")) / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def seed_everything(seed: int) -> None:
    """Python, numpy and TensorFlow seeded; op determinism is not forced (it slows CPU training ~2x)."""
    import keras

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out): ``fraction`` of every class held out, chosen with ``seed``."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = max(1, int(round(fraction * len(idx))))
        held.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


@dataclass(frozen=True)
class FitResult:
    epochs_run: int
    best_epoch: int
    best_value: float


def resumable_fit(
    model,
    train_data,
    val_data,
    *,
    out: Path,
    epochs: int,
    monitor: str,
    mode: str,
    patience: int,
    class_weight: dict[int, float] | None = None,
    extra_callbacks: Sequence = (),
) -> FitResult:
    """``model.fit`` that checkpoints every epoch and resumes after an interruption.

    ``out/backup`` holds the last epoch (weights, optimizer, epoch number: Keras's BackupAndRestore),
    ``out/best.keras`` the best model on the held-out split, ``out/history.csv`` every epoch's figures.
    """
    import keras

    # a resumed run keeps the best model so far unless it is beaten (ModelCheckpoint forgets it otherwise)
    earlier = [row[monitor] for row in read_history(out / "history.csv") if monitor in row]
    threshold = (max(earlier) if mode == "max" else min(earlier)) if earlier and (out / "best.keras").exists() else None
    callbacks = [
        *extra_callbacks,
        keras.callbacks.BackupAndRestore(str(out / "backup"), save_freq="epoch", delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(
            str(out / "best.keras"), monitor=monitor, mode=mode, save_best_only=True, initial_value_threshold=threshold
        ),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=False),
        _epoch_timer(out / "epoch_seconds.json"),
    ]
    model.fit(
        train_data,
        validation_data=val_data,
        epochs=epochs,
        callbacks=callbacks,
        class_weight=class_weight,
        verbose=2,
    )
    hist = read_history(out / "history.csv")
    values = [row[monitor] for row in hist]
    best = int(np.argmax(values) if mode == "max" else np.argmin(values))
    return FitResult(len(hist), best + 1, float(values[best]))


def _epoch_timer(path: Path):
    """A callback recording each epoch's wall time (the report's training time survives resumes)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            times = json.loads(path.read_text()) if path.exists() else {}
            times[str(epoch + 1)] = round(time.monotonic() - self._t, 1)
            path.write_text(json.dumps(times))

    return EpochTimer()


def read_history(path: Path) -> list[dict[str, float]]:
    """history.csv, one row per epoch (the last row wins for an epoch logged twice by a resume)."""
    import csv

    rows: dict[int, dict[str, float]] = {}
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            rows[int(r["epoch"])] = {k: float(v) for k, v in r.items() if v not in ("", None)}
    return [rows[k] for k in sorted(rows)]


def training_seconds(out: Path) -> float:
    p = out / "epoch_seconds.json"
    return float(sum(json.loads(p.read_text()).values())) if p.exists() else 0.0


def confusion(truth: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (truth, pred), 1)
    return m


def plot_curves(history: list[dict[str, float]], keys: Sequence[tuple[str, str]], path: Path, title: str) -> None:
    """Training and held-out curves (matplotlib, Agg) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6))
    axes = np.atleast_1d(axes)
    epochs = [int(r["epoch"]) + 1 for r in history]
    for ax, (train_key, val_key) in zip(axes, keys, strict=True):
        ax.plot(epochs, [r.get(train_key, np.nan) for r in history], label=f"train {train_key}")
        ax.plot(epochs, [r.get(val_key, np.nan) for r in history], label=f"held out {train_key}")
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{rates[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if rates[i, j] < 0.6 else "white",
            )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
