"""The fixed categories and histogram edges every part agrees on: the config validates against
them, the stages count with them, the summaries publish them. Changing one changes the wire
format (a new summary schema version) and the store's columns (a new migration)."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
GENDERS: tuple[str, ...] = ("female", "male")
DWELL_BINS: tuple[int, ...] = (0, 5, 10, 20, 30, 60, 120, 300)  # lower edges, seconds
ATTENTION_BINS: tuple[int, ...] = (0, 1, 2, 5, 10, 20, 30, 60)  # lower edges, seconds
DEFAULT_AGE_BANDS: tuple[int, ...] = (18, 25, 35, 45, 55, 65)  # lower bounds of the bands after 0-17
