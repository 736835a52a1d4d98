"""Every frame of the video files given, decoded by this machine's OpenCV (its bundled FFmpeg): one
JSON object per file with each frame's sha256 and mean grey level. scripts/check-arm64 runs it on
both sides and compares: the device decodes the same pixels as the machine the figures come from."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import cv2


def digests(path: Path) -> dict:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        return {"file": path.name, "error": "cannot open"}
    shas, means = [], []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        shas.append(hashlib.sha256(frame.tobytes()).hexdigest()[:16] + f"/{frame.shape}")
        means.append(round(float(frame.mean()), 3))
    cap.release()
    return {"file": path.name, "frames": len(shas), "sha": shas, "mean": means, "opencv": cv2.__version__}


if __name__ == "__main__":
    print(json.dumps([digests(Path(p)) for p in sys.argv[1:]]))
