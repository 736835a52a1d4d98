"""Train the project's own two-head age and gender model on the UTKFace training split.

    .venv-train/bin/python -m training.age_gender [--epochs 45] [--seed 17] [--widths 32,64,128,256]

One network, two outputs, on the chip the device already cuts for the upstream age model: the
64x64 RGB dlib chip (padding 0.2) from the face mesh's five alignment points, with the same input
scaling ((pixel - mean) / 256, ``kiosk.vision.classifiers.age_gender_input``), so the device's chip
and look-up table serve both.

- Data: ``utkface-train`` only, chips cut by ``converters.age_gender.utk_chips`` (the device's own
  chain: mesh on the whole crop, alignment points, dlib-exact chip) and cached in the run folder.
  10% of every (age band, gender) cell (seed-fixed) is held out for model selection and early
  stopping; ``utkface-dev`` is looked at once, by the converter, at the end.
- Outputs: ``age`` 101 logits for the years 0..100 (the device takes the expectation of their
  softmax) and ``gender`` 2 logits (female, male). Age is learnt as a label distribution (DLDL-v2,
  Gao et al. 2018): KL divergence to a Gaussian around the true age (sigma 2 years) plus the L1
  error of the expectation; gender with cross-entropy (label smoothing 0.05).
- Ages are unevenly represented (UTKFace: many 20-35 year olds, few over 60) and an estimator
  pulls the rare bands towards the common ones: each face is weighted by the inverse square root of
  its age band's frequency, so no band is ignored and the common bands still dominate.
- Network: the emotion model's VGG-style CNN (3x3 convolutions, batch norm, ReLU, max-pool, global
  average pool, dropout), first convolution at stride 2, widths 32, 64, 128, 256: 1.2M parameters,
  int8 with one thread here for both heads 0.32 ms per face beside the upstream age and gender
  nets' 0.80 ms in the same run (2026-12-07; 1.3 against 2.7 ms on 2026-12-03: compare same-run
  figures only; the budget is 2 ms).
- Augmentation on the fly, as the run-time chip varies: horizontal flip, rotation (+-8 deg),
  scale (0.92-1.08), shift (+-3 px): the mesh's alignment points move by that much between
  frames and detectors; brightness, contrast and saturation (store lighting); random erasing
  (a hand, glasses, a shelf edge).
- Every epoch is checkpointed under ``.cache/training/age_gender/``; run the command again to
  resume. ``python -m converters.age_gender_trained`` turns ``best.keras`` into
  ``models/age_gender_kiosk_int8.tflite`` with its report and manifest entry.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import cv2
import numpy as np

from kiosk.vision.classifiers import AGE_CHIP, age_gender_input
from training.common import (
    adamw_cosine,
    add_run_arguments,
    claim_run,
    epoch_batches,
    read_history,
    resumable_fit,
    run_dir,
    seed_everything,
    stratified_split,
    vgg_features,
)

NAME = "age_gender"
SIZE = AGE_CHIP
HELD_OUT = 0.10
AGES = 101  # output bins: 0, 1, ..., 100 years
SIGMA = 2.0  # years, the label distribution's width
L1_WEIGHT = 0.1  # of the expectation's L1 error (years) against the KL term
BANDS = (0, 13, 20, 30, 40, 50, 60, 200)  # band edges (years) for stratifying, weighting and reports


def age_band(ages: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.array(BANDS[1:-1]), ages, side="right")


def band_names() -> list[str]:
    names = [f"{lo}-{hi - 1}" for lo, hi in zip(BANDS[:-2], BANDS[1:-1])]
    return names + [f"{BANDS[-2]}+"]


def load_chips(out, folder: str = "utkface-train") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 64, 64, 3) RGB chips, ages, genders (1 = male), cut once and cached in the run folder."""
    from converters.age_gender import utk_chips

    cache = out / f"chips-{folder}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["chips"], z["ages"], z["genders"]
    t0 = time.monotonic()
    chips, _, ages, genders = utk_chips(folder)
    np.savez(cache, chips=chips, ages=ages, genders=genders)
    print(f"{folder}: {len(ages)} chips cut in {time.monotonic() - t0:.0f} s -> {cache}", flush=True)
    return chips, ages, genders


def augment(chip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One randomly transformed 64x64 RGB chip, scaled as the device scales it: (64, 64, 3) float32."""
    if rng.random() < 0.5:
        chip = chip[:, ::-1]
    c = (SIZE - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), rng.uniform(-8, 8), rng.uniform(0.92, 1.08))
    m[:, 2] += rng.uniform(-3, 3, size=2)
    chip = cv2.warpAffine(
        np.ascontiguousarray(chip), m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    ).astype(np.float32)
    gray = chip.mean(axis=2, keepdims=True)
    chip = gray + (chip - gray) * rng.uniform(0.7, 1.3)  # saturation
    chip = (chip - 128.0) * rng.uniform(0.75, 1.25) + 128.0 + rng.uniform(-25, 25)
    x = age_gender_input(np.clip(chip, 0, 255).astype(np.uint8))[0]
    if rng.random() < 0.3:  # random erasing: 2-12% of the area, noise-filled
        area = rng.uniform(0.02, 0.12) * SIZE * SIZE
        aspect = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
        h = min(SIZE, int(round(math.sqrt(area * aspect))))
        w = min(SIZE, int(round(math.sqrt(area / aspect))))
        y0, x0 = rng.integers(0, SIZE - h + 1), rng.integers(0, SIZE - w + 1)
        x[y0 : y0 + h, x0 : x0 + w] = rng.uniform(-0.5, 0.5, size=(h, w, 3))
    return x


def age_targets(ages: np.ndarray) -> np.ndarray:
    """A Gaussian label distribution over 0..100 years around each (clipped) age: (N, 101) float32."""
    bins = np.arange(AGES, dtype=np.float32)
    a = np.clip(ages, 0, AGES - 1).astype(np.float32)[:, None]
    d = np.exp(-0.5 * ((bins[None] - a) / SIGMA) ** 2)
    return (d / d.sum(1, keepdims=True)).astype(np.float32)


def targets(ages: np.ndarray, genders: np.ndarray) -> dict[str, np.ndarray]:
    # the age target carries the distribution and, in its last column, the age itself (for the L1 term)
    age = np.concatenate([age_targets(ages), np.clip(ages, 0, AGES - 1)[:, None].astype(np.float32)], axis=1)
    gender = np.eye(2, dtype=np.float32)[genders.astype(np.int64)]
    return {"age": age, "gender": gender}


def sample_weights(ages: np.ndarray) -> np.ndarray:
    """Inverse square root of the age band's frequency, mean 1."""
    band = age_band(ages)
    counts = np.bincount(band, minlength=len(BANDS) - 1).astype(np.float64)
    w = 1.0 / np.sqrt(np.maximum(counts[band], 1))
    return (w / w.mean()).astype(np.float32)


def make_dataset(chips: np.ndarray, ages: np.ndarray, genders: np.ndarray, batch: int, seed: int):
    """Augmented, shuffled, weighted batches; the permutation and transforms depend on (seed, epoch) only."""
    y_all = targets(ages, genders)
    w_all = sample_weights(ages)

    def make_batch(idx, rng):
        x = np.stack([augment(chips[j], rng) for j in idx])
        w = w_all[idx]
        return x, {k: v[idx] for k, v in y_all.items()}, {"age": w, "gender": w}

    return epoch_batches(len(chips), batch, seed, make_batch)


def build_model(widths: tuple[int, ...], dropout: float = 0.3):
    """The training model: softmax age distribution (101) and gender probabilities (2).
    ``logits_model(model)`` is the exported one (logits, so int8 keeps small probabilities)."""
    import keras
    from keras import layers

    inp = keras.Input((SIZE, SIZE, 3), name="chip")
    x = vgg_features(inp, widths, dropout)
    age_logits = layers.Dense(AGES, name="age_logits")(x)
    gender_logits = layers.Dense(2, name="gender_logits")(x)
    age = layers.Softmax(name="age")(age_logits)
    gender = layers.Softmax(name="gender")(gender_logits)
    return keras.Model(inp, {"age": age, "gender": gender}, name="kiosk_age_gender")


def logits_model(model):
    """The exported graph: the chip in, (age logits (101), gender logits (2)) out."""
    import keras

    return keras.Model(
        model.input,
        [model.get_layer("age_logits").output, model.get_layer("gender_logits").output],
        name="kiosk_age_gender",
    )


def age_loss(y_true, y_pred):
    """KL(label distribution || prediction) + L1_WEIGHT * |E[prediction] - age|."""
    from keras import ops

    dist, age = y_true[:, :AGES], y_true[:, AGES]
    p = ops.clip(y_pred, 1e-7, 1.0)
    kl = ops.sum(dist * (ops.log(ops.clip(dist, 1e-7, 1.0)) - ops.log(p)), axis=1)
    expected = ops.sum(y_pred * ops.arange(AGES, dtype="float32"), axis=1)
    return kl + L1_WEIGHT * ops.abs(expected - age)


def age_mae(y_true, y_pred):
    from keras import ops

    return ops.abs(ops.sum(y_pred * ops.arange(AGES, dtype="float32"), axis=1) - y_true[:, AGES])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(ap, epochs=45, batch=96, seed=17, widths="32,64,128,256", lr=2e-3, patience=45)
    args = ap.parse_args(argv)
    widths = tuple(int(v) for v in args.widths.split(","))

    import keras

    out = run_dir(NAME)
    chips, ages, genders = load_chips(out)
    claim_run(out, args)
    seed_everything(args.seed)

    cells = age_band(ages) * 2 + genders.astype(np.int64)
    tr, va = stratified_split(cells, HELD_OUT, args.seed)
    if args.limit:
        tr = tr[np.random.default_rng(args.seed).permutation(len(tr))[: args.limit]]
    x_val = np.concatenate([age_gender_input(chips[i]) for i in va])
    y_val = targets(ages[va], genders[va])
    train_data, setter = make_dataset(chips[tr], ages[tr], genders[tr], args.batch, args.seed)
    print(f"utkface-train: {len(tr)} to train on, {len(va)} held out", flush=True)

    model = build_model(widths)
    model.compile(
        optimizer=adamw_cosine(args.lr, len(train_data), args.epochs),
        loss={"age": age_loss, "gender": keras.losses.CategoricalCrossentropy(label_smoothing=0.05)},
        metrics={"age": [age_mae], "gender": ["accuracy"]},
    )
    print(f"model: {model.count_params()} parameters, widths {widths}", flush=True)
    result = resumable_fit(
        model,
        train_data,
        (x_val, y_val),
        out=out,
        epochs=args.epochs,
        monitor="val_loss",
        mode="min",
        patience=args.patience,
        extra_callbacks=[setter],
    )
    hist = read_history(out / "history.csv")
    last = hist[-1]
    print(
        f"done: {result.epochs_run} epochs, best held-out loss {result.best_value:.4f} at epoch {result.best_epoch} "
        f"(held-out age MAE {hist[result.best_epoch - 1].get('val_age_age_mae', float('nan')):.2f} y, gender accuracy "
        f"{hist[result.best_epoch - 1].get('val_gender_accuracy', float('nan')):.4f}); {out / 'best.keras'} "
        f"(last epoch: training age MAE {last.get('age_age_mae', float('nan')):.2f})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
