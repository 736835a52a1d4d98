"""The VOC group photos of the shared data (``group-photos/``) and their labelled face boxes, and
one of their faces placed at a chosen size and place of a grey frame: for the detector's tests and
``bench/view_boxes.py``.

The boxes are dlib imglab XML (``training.xml``, ``testing.xml``: ``<image file=...><box top
left width height [ignore='1']/>``); a box marked ``ignore`` is not counted as a face.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

LABEL_FILES = ("training.xml", "testing.xml")


@dataclass(frozen=True)
class LabelledPhoto:
    """One photo and its faces as (x0, y0, x1, y1) in its pixels."""

    path: Path
    faces: tuple[tuple[int, int, int, int], ...]


def labelled_photos(root: Path) -> Iterator[LabelledPhoto]:
    """Every labelled photo under ``root`` (the ``group-photos`` folder), in the files' order."""
    for name in LABEL_FILES:
        for image in ET.parse(root / name).getroot().iter("image"):
            faces = tuple(
                (
                    int(b.get("left", 0)),
                    int(b.get("top", 0)),
                    int(b.get("left", 0)) + int(b.get("width", 0)),
                    int(b.get("top", 0)) + int(b.get("height", 0)),
                )
                for b in image.iter("box")
                if b.get("ignore") != "1"
            )
            yield LabelledPhoto(root / image.get("file", ""), faces)


def labelled_faces(root: Path) -> Iterator[tuple[Path, tuple[int, int, int, int]]]:
    """Each labelled face as (its photo, its box)."""
    for photo in labelled_photos(root):
        for face in photo.faces:
            yield photo.path, face


def place_face(
    photo: np.ndarray,
    face: tuple[int, int, int, int],
    size: int,
    at: tuple[int, int],
    frame_size: tuple[int, int] = (1280, 720),
    grey: int = 110,
) -> np.ndarray:
    """A grey frame (``frame_size`` as width, height) holding ``photo`` scaled so that its
    ``face`` box is ``size`` px wide, the box's centre (its width below the top: dlib boxes are
    square) at ``at``. Downscaled by area (anti-aliased, as a camera's optics and sensor
    average), upscaled bilinearly."""
    x0, y0, x1, _ = face
    width = x1 - x0
    k = size / width
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    small = cv2.resize(photo, None, fx=k, fy=k, interpolation=interp)
    fw, fh = frame_size
    frame = np.full((fh, fw, 3), grey, np.uint8)
    ox, oy = int(at[0] - (x0 + width / 2) * k), int(at[1] - (y0 + width / 2) * k)
    cx0, cy0 = max(ox, 0), max(oy, 0)
    cx1, cy1 = min(ox + small.shape[1], fw), min(oy + small.shape[0], fh)
    frame[cy0:cy1, cx0:cx1] = small[cy0 - oy : cy1 - oy, cx0 - ox : cx1 - ox]
    return frame
