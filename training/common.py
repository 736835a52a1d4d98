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


def add_run_arguments(ap, *, epochs: int, batch: int, seed: int, widths: str, lr: float, patience: int) -> None:
    """The options every training command has (their defaults are the command's)."""
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--seed", type=int, default=seed)
    ap.add_argument("--widths", default=widths, help="channels per stage (comma separated)")
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--patience", type=int, default=patience)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N examples only (a smoke test)")


RUN_SETTINGS = ("epochs", "batch", "seed", "widths", "lr", "patience", "limit")


def claim_run(out: Path, args) -> dict:
    """The run folder's settings: written for a new run; a folder holding another run's is refused
    (resuming needs the same settings), with what to do."""
    settings = {k: getattr(args, k) for k in RUN_SETTINGS}
    saved = out / "settings.json"
    if saved.exists() and json.loads(saved.read_text()) != settings:
        raise SystemExit(
            f"{out} holds a run with other settings ({saved.read_text().strip()}): "
            f"delete the folder (cached inputs such as chips-*.npz may stay) to start again, "
            f"or run with those settings to resume it"
        )
    saved.write_text(json.dumps(settings))
    return settings


def adamw_cosine(lr: float, steps_per_epoch: int, epochs: int):
    """AdamW (weight decay 1e-4) on a cosine schedule with a warm-up of two epochs (at most 10%)."""
    import keras

    steps = steps_per_epoch * epochs
    warmup = min(steps_per_epoch * 2, steps // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        lr / 20, decay_steps=steps - warmup, warmup_target=lr, warmup_steps=warmup, alpha=0.01
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4)


def epoch_batches(n: int, batch: int, seed: int, make_batch):
    """Shuffled batches of ``n`` examples, ``make_batch(indices, rng)`` building each; the order and
    the rng depend on (seed, epoch, batch) only, so a resumed run sees what it would have seen.
    Returns the dataset and the callback that tells it the epoch."""
    import math

    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch = 0
            self._order = np.arange(n)

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch
            self._order = np.random.default_rng([seed, epoch]).permutation(n)

        def __len__(self) -> int:
            return math.ceil(n / batch)

        def __getitem__(self, i: int):
            idx = self._order[i * batch : (i + 1) * batch]
            return make_batch(idx, np.random.default_rng([seed, self.epoch, i]))

    data = Batches()

    class EpochSetter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            data.set_epoch(epoch)

    return data, EpochSetter()


def vgg_features(inp, widths: Sequence[int], dropout: float):
    """The small VGG-style trunk both models use: 3x3 convolutions, batch norm, ReLU, the first at
    stride 2, max-pool between stages, global average pool, dropout."""
    from keras import layers

    def conv(x, ch, stride=1):
        x = layers.Conv2D(ch, 3, strides=stride, padding="same", use_bias=False, kernel_initializer="he_normal")(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x)

    x = conv(inp, widths[0], stride=2)
    for i, w in enumerate(widths):
        x = conv(x, w)
        if i:
            x = conv(x, w)
        if i < len(widths) - 1:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Dropout(dropout)(x)


def load_trained_run(name: str, description: str, argv: list[str] | None):
    """For a converter: the run folder (``--run``, default ``.cache/training/<name>``), its settings
    and its best model (uncompiled: the device model needs no loss)."""
    import argparse

    import keras

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--run", type=Path, default=PROJECT / ".cache" / "training" / name)
    run: Path = ap.parse_args(argv).run
    if not (run / "best.keras").exists():
        raise SystemExit(f"{run / 'best.keras'} is absent: train first (python -m training.{name})")
    settings = json.loads((run / "settings.json").read_text())
    return run, settings, keras.models.load_model(run / "best.keras", compile=False)
