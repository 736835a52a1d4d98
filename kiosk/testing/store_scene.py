"""Harder store scenes: scripted shoppers made from real faces, with the behaviours a shelf camera
sees every day, and their ground truth.

    python -m kiosk.testing.store_scene --out DIR [--seed 1] [--duration 240] [--people 36] [--size 1280x720]

Every range below comes from what happens in front of a shelf, never from a setting of the
tracker or the detector (a scene shaped by the code it tests cannot find that code's errors):

- **Dwell at the shelf, 5-60 s, log-uniform**: most shelf stops are short (a look, a grab), a
  few are long (comparing products, reading labels).
- **Look-aways, 3-15 s each, up to one per 10 s of dwell**: a shopper turns to the shelf beside
  the camera, reads a label, checks a phone or a list, talks to a companion. The side or the
  back of the head is what the camera sees meanwhile; they turn back and go on looking.
- **Occlusion, 1-5 s**: a passer-by in the nearer part of the aisle walks in front of a shopper,
  or a tall restocking cage is pushed past or stops in front.
- **Leaving**: most shoppers turn to the aisle and walk off with the back or the side of the head
  to the camera (the face is not seen while they go); some walk off facing it.
- **The same spot, 2-10 s later**: the next shopper often takes the spot the last one left. Some
  walk up facing the shelf, some arrive sideways and turn to it at the spot.
- **Faces 40-200 px** (distance from the camera, log-uniform), at 1280x720 or 640x480, 15 frames
  per second; 2 to 6 people in view at once; about a quarter walk past without stopping.
- **Walking, 0.6-1.3 m/s** (slower near the shelves, passers-by up to 1.6 m/s): a face is about
  0.22 m wide, so a walker crosses 3 to 7 of their own face widths per second whatever their
  distance; near the camera that is the whole frame in a second or two.
- **Lighting**: a slow drift of the exposure and one step (lights switched, a door opened).
- **Staff**: a cashier stays in the exclusion zone on the right all along.
- **Clothing**: a third of the shoppers wear dark clothes (black, navy, grey), as in any crowd,
  so two people at one spot may look alike below the face.

Ground truth (times are video seconds): a person is present from the first to the last frame in
which their face is shown to the camera: frontal, with at least half of its core (eyes, nose and
mouth) inside the frame and not behind what is drawn over it: a nearer person's face, head, neck or
torso, or a cage (a face cut by the frame's edge or half behind someone's head is still a face in
view, the rule an annotator would use; before 2026-12-02 a face had to be whole inside the frame,
which left out shoppers standing at the frame's edge that any detector finds; before 2026-12-03 only
the face's centre was tested, against a nearer face 25% narrower than the one drawn, so a face
two-thirds behind a neighbour's counted as seen); turned away or hidden in between counts as present (a look-away is part of the visit, so is its time). A person who walks
off turned away is gone when the camera last saw the face: nothing in the image says more.
Attention is the time the face is shown and not hidden. ``unseen`` lists the spans between the
first and the last sight in which the face was not shown, whatever the cause (a look-away and a
passer-by in front right after it make one longer span): a visit split across a span longer than
the tracker's waiting time is not a failure of the wait (kiosk.testing.evaluate). The zone is the
one holding the face centre for most of the present time. A shopper scripted to stop whose face was shown for less than
``MIN_VISIT_S`` (kiosk's default definition of a visit, ``visits.min_dwell_s``) is a passer-by in
the truth: the camera saw no more of them than of someone walking past.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from kiosk.testing.scenario import _face_patch, _load_faces, _paste, scene_config, zone_of

ZONES = [
    {"id": "shelf-a", "type": "shelf", "label": "SKU-1001 coffee", "rect": [0.0, 0.0, 0.43, 1.0]},
    {"id": "shelf-b", "type": "shelf", "label": "SKU-2002 tea", "rect": [0.43, 0.0, 0.86, 1.0]},
]
EXCLUSION = [0.86, 0.0, 1.0, 1.0]
SPOTS = [0.08, 0.22, 0.36, 0.50, 0.64, 0.78]  # where shoppers stand (normalized face-centre x)
EDGE = 0.14  # people come and go beyond the frame's edges, this far out
MIN_VISIT_S = 3.0  # seconds of presence that make a visit (kiosk's default visits.min_dwell_s)
FACE_M = 0.22  # metres: the side of the face square, to turn walking speeds into pixels
DARK = [(25, 25, 25), (40, 35, 30), (70, 45, 30), (60, 60, 60), (90, 90, 90)]  # BGR: black, navy, grey


@dataclass(frozen=True)
class SceneSize:
    width: int = 1280
    height: int = 720
    fps: float = 15.0
    face_px: tuple[int, int] = (40, 200)


@dataclass
class Move:
    t0: float
    t1: float
    x0: float
    x1: float
    state: str = "face"  # "face", "side" or "back"


@dataclass
class Shopper:
    id: int
    kind: str  # "visit", "passer_by", "excluded"
    face_path: str
    age: int
    gender: str
    size: int  # face square side in pixels
    y: float  # face centre height (normalized)
    clothes: tuple[int, int, int]
    hair: tuple[int, int, int]
    moves: list = field(default_factory=list)
    spot: float | None = None
    successor_of: int | None = None  # the shopper whose spot this one took a few seconds later

    def pose(self, t: float) -> tuple[float, str] | None:
        for m in self.moves:
            if m.t0 <= t < m.t1:
                a = (t - m.t0) / (m.t1 - m.t0)
                return m.x0 + a * (m.x1 - m.x0), m.state
        return None


@dataclass
class Cage:
    """A tall restocking cage in front of a shopper for a while (an occluder, drawn last)."""

    t0: float
    t1: float
    x: float  # normalized centre
    y: float
    w: int
    h: int


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _clothes(rng: random.Random) -> tuple[int, int, int]:
    if rng.random() < 1 / 3:
        base = rng.choice(DARK)
        return tuple(int(min(255, max(0, c + rng.randint(-12, 12)))) for c in base)
    return tuple(rng.randint(30, 230) for _ in range(3))


def _walk(t: float, x0: float, x1: float, speed: float, state: str = "face") -> Move:
    """From x0 to x1 (normalized) at ``speed`` frame widths per second."""
    return Move(t, t + abs(x1 - x0) / speed, x0, x1, state)


def _speed(rng: random.Random, face_px: int, width: int, lo: float = 0.6, hi: float = 1.3) -> float:
    """A walking speed of lo-hi m/s, in frame widths per second for a face of ``face_px``."""
    return rng.uniform(lo, hi) / FACE_M * face_px / width


def _stay_moves(rng: random.Random, t: float, spot: float, dwell: float) -> tuple[list[Move], float]:
    """Standing at ``spot`` for ``dwell`` seconds from ``t`` with 0..n look-aways of 3-15 s."""
    moves: list[Move] = []
    end = t + dwell
    n = rng.randint(0, int(dwell // 10))
    cursor = t
    for _ in range(n):
        away = rng.uniform(3.0, 15.0)
        facing = rng.uniform(1.5, 6.0)  # they look at the products in between
        if cursor + facing + away + 1.5 > end:
            break
        moves.append(Move(cursor, cursor + facing, spot, spot))
        moves.append(Move(cursor + facing, cursor + facing + away, spot, spot, rng.choice(["side", "back"])))
        cursor += facing + away
    moves.append(Move(cursor, max(end, cursor + 1.5), spot, spot))
    return moves, max(end, cursor + 1.5)


def make_store_script(
    data: Path, seed: int = 1, duration: float = 240.0, people: int = 36, size: SceneSize = SceneSize()
) -> tuple[list[Shopper], list[Cage]]:
    rng = random.Random(seed)
    chosen = _load_faces(data, rng, 2 * people + 4)
    if not chosen:
        raise ValueError(f"no usable face (adult, sharp, near-frontal) under {data / 'utkface-dev'}")
    faces = itertools.cycle(chosen)
    out: list[Shopper] = []
    cages: list[Cage] = []
    busy: dict[float, float] = {s: 0.0 for s in SPOTS}  # spot -> free from

    def shopper(kind: str, face_px: int | None = None) -> Shopper:
        f = next(faces)
        lo, hi = size.face_px
        px = face_px or int(round(_log_uniform(rng, lo, hi)))
        y = 0.30 + 0.12 * (px - lo) / max(1, hi - lo) + rng.uniform(-0.03, 0.03)  # nearer: a little lower
        s = Shopper(
            len(out),
            kind,
            f["path"],
            int(f["age"]),
            f["gender"],
            px,
            y,
            _clothes(rng),
            rng.choice([(20, 20, 25), (30, 45, 70), (60, 90, 130), (150, 150, 150), (40, 30, 30)]),
        )
        out.append(s)
        return s

    arrivals = sorted(rng.uniform(1.0, duration - 25.0) for _ in range(people))
    for start in arrivals:
        in_view = sum(1 for p in out if p.moves and p.moves[0].t0 <= start < p.moves[-1].t1)
        if in_view >= 6:
            continue  # a full aisle: this one does not come
        rightward = rng.random() < 0.5
        side_in = -EDGE if rightward else EXCLUSION[0] - 0.02
        if rng.random() < 0.25:
            # a passer-by, nearer the camera than the shoppers at the shelf (larger face)
            p = shopper("passer_by", int(round(min(size.face_px[1], _log_uniform(rng, 70, 200)))))
            p.y = 0.40 + rng.uniform(-0.03, 0.03)
            far = EXCLUSION[0] - 0.02 if rightward else -EDGE
            speed = _speed(rng, p.size, size.width, 0.9, 1.6)
            p.moves = [_walk(start, side_in, far, speed, "face" if rng.random() < 0.6 else "side")]
            continue
        free = [s for s, t_free in busy.items() if t_free <= start]
        if not free:
            continue
        spot = rng.choice(free)
        p = shopper("visit")
        p.spot = spot
        speed = _speed(rng, p.size, size.width)
        walk_in = _walk(start, side_in, spot, speed)
        dwell = _log_uniform(rng, 5.0, 60.0)
        stay, t_end = _stay_moves(rng, walk_in.t1, spot, dwell)
        leave_side = -EDGE if rng.random() < 0.5 else EXCLUSION[0] - 0.02
        leaving = "back" if rng.random() < 0.7 else "face"
        p.moves = [walk_in, *stay, _walk(t_end, spot, leave_side, speed, leaving)]
        busy[spot] = p.moves[-1].t1 + 1.0
        if rng.random() < 0.35 and t_end + 20 < duration:  # the next shopper takes the same spot
            gap = rng.uniform(2.0, 10.0)
            q = shopper("visit")
            q.spot, q.successor_of = spot, p.id
            speed = _speed(rng, q.size, size.width)
            t_at = t_end + gap
            if rng.random() < 0.5:  # arrives sideways and turns to the shelf at the spot
                approach = _walk(t_at - abs(spot - side_in) / speed, side_in, spot, speed, "side")
            else:
                approach = _walk(t_at - abs(spot - side_in) / speed, side_in, spot, speed)
            stay2, t_end2 = _stay_moves(rng, approach.t1, spot, _log_uniform(rng, 5.0, 40.0))
            q.moves = [approach, *stay2, _walk(t_end2, spot, leave_side, speed, "back")]
            busy[spot] = q.moves[-1].t1 + 1.0
        if rng.random() < 0.3:  # a cage pushed past or parked in front for 1-5 s
            t0 = rng.uniform(walk_in.t1 + 1.0, max(walk_in.t1 + 1.5, t_end - 5.0))
            cages.append(Cage(t0, t0 + rng.uniform(1.0, 5.0), spot, p.y, int(p.size * 2.2), int(size.height)))
    cashier = shopper("excluded", min(size.face_px[1], 110, int(0.1 * size.width)))  # whole inside the frame
    cashier.moves = [Move(0.0, duration, 0.93, 0.93)]
    return out, cages


def _background(seed: int, size: SceneSize) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w, h = size.width, size.height
    bg = np.zeros((h, w, 3), np.uint8)
    bg[:] = (200, 205, 210)
    step = max(40, h // 6)
    for y in range(0, h, step):
        cv2.rectangle(bg, (0, y + step - 8), (w, y + step - 2), (90, 100, 110), -1)
        x = 0
        while x < w:
            pw = int(rng.integers(w // 60, w // 28))
            color = tuple(int(c) for c in rng.integers(40, 230, 3))
            cv2.rectangle(bg, (x, y + step // 4), (x + pw - 3, y + step - 8), color, -1)
            x += pw
    cv2.rectangle(bg, (int(EXCLUSION[0] * w), 0), (w, h), (170, 160, 150), -1)
    noise = rng.normal(0, 4, bg.shape)
    return np.clip(bg + noise, 0, 255).astype(np.uint8)


def _draw_person(frame: np.ndarray, cx: float, cy: float, s: int, p: Shopper, state: str) -> None:
    """Neck, torso and, unless the face is shown, the side or the back of the head."""
    cv2.rectangle(
        frame, (int(cx - s * 0.16), int(cy + s * 0.3)), (int(cx + s * 0.16), int(cy + s * 0.62)), (90, 120, 160), -1
    )
    top = int(cy + s * 0.58)
    cv2.ellipse(frame, (int(cx), top + int(s * 0.25)), (int(s * 0.85), int(s * 0.32)), 0, 180, 360, p.clothes, -1)
    cv2.rectangle(frame, (int(cx - s * 0.85), top + int(s * 0.25)), (int(cx + s * 0.85), frame.shape[0]), p.clothes, -1)
    if state == "back":
        cv2.ellipse(frame, (int(cx), int(cy - s * 0.06)), (int(s * 0.42), int(s * 0.5)), 0, 0, 360, p.hair, -1)
    elif state == "side":  # a profile: hair over most of the head, an ear and a cheek's edge of skin
        cv2.ellipse(frame, (int(cx), int(cy - s * 0.04)), (int(s * 0.38), int(s * 0.5)), 0, 0, 360, (120, 150, 200), -1)
        cv2.ellipse(
            frame, (int(cx - s * 0.06), int(cy - s * 0.1)), (int(s * 0.36), int(s * 0.46)), 0, 0, 360, p.hair, -1
        )
        cv2.ellipse(frame, (int(cx + s * 0.05), int(cy)), (int(s * 0.06), int(s * 0.1)), 0, 0, 360, (110, 140, 190), -1)


def _in_ellipse(px: float, py: float, cx: float, cy: float, ax: float, ay: float) -> bool:
    return ((px - cx) / ax) ** 2 + ((py - cy) / ay) ** 2 <= 1.0


def _covers(cx: float, cy: float, s: float, state: str, px: float, py: float) -> bool:
    """Whether what :func:`render` draws for a person at (cx, cy), face size s, covers point (px, py):
    the face patch (``_face_patch``: the crop padded 12% each side, its feathered mask an ellipse of
    0.47 x 0.5 of the patch), or the back or side of the head; the neck; the torso."""
    if state == "face":
        head = _in_ellipse(px, py, cx, cy, 0.583 * s, 0.62 * s)
    else:
        head = _in_ellipse(px, py, cx, cy - 0.05 * s, 0.42 * s, 0.5 * s)
    neck = abs(px - cx) <= 0.16 * s and cy + 0.3 * s <= py <= cy + 0.62 * s
    shoulders = py >= cy + 0.83 * s or _in_ellipse(px, py, cx, cy + 0.83 * s, 0.85 * s, 0.32 * s)
    return head or neck or (abs(px - cx) <= 0.85 * s and shoulders)


# A face counts as shown when at least half of its core (eyes, nose and mouth: the central 0.8 x 0.8
# of the face square, sampled on a 5 x 5 grid) is in the frame and not behind anything drawn over it.
TRUTH_VERSION = 3  # bumped when the truth's rules change: a cached scene's truth is then written again
_CORE = [(gx * 0.2, gy * 0.2) for gx in range(-2, 3) for gy in range(-2, 3)]
MAX_HIDDEN_SHARE = 0.5


def _hidden_share(
    x: float, y: float, s: int, above: list[tuple[float, float, int, str]], cages: list, size: SceneSize
) -> float:
    hidden = 0
    for gx, gy in _CORE:
        px, py = x + gx * s, y + gy * s
        if not (0 <= px < size.width and 0 <= py < size.height):
            hidden += 1
        elif any(x0 <= px <= x1 and y0 <= py <= y1 for x0, y0, x1, y1 in cages) or any(
            _covers(ox, oy, os_, st, px, py) for ox, oy, os_, st in above
        ):
            hidden += 1
    return hidden / len(_CORE)


def _placed(people: list[Shopper], t: float, size: SceneSize) -> list[tuple[Shopper, float, float, str]]:
    """People present at t as (person, x px, y px, state), farthest (smallest face) first."""
    out = []
    for p in people:
        pose = p.pose(t)
        if pose is not None:
            out.append((p, pose[0] * size.width, p.y * size.height, pose[1]))
    out.sort(key=lambda item: item[0].size)
    return out


def _cages_at(cages: list[Cage], t: float, size: SceneSize) -> list[tuple[int, int, int, int]]:
    boxes = []
    for c in cages:
        if c.t0 <= t < c.t1:
            x = int(c.x * size.width)
            y0 = int(c.y * size.height - c.w * 0.5)
            boxes.append((x - c.w // 2, y0, x + c.w // 2, size.height))
    return boxes


def _lighting(t: float, duration: float, seed: int) -> float:
    """A gain on the whole frame: a slow drift and one step for 20 s."""
    rng = random.Random(seed * 7919)
    step_at = rng.uniform(0.2, 0.7) * duration
    gain = 0.95 + 0.15 * math.sin(2 * math.pi * t / 90.0 + rng.uniform(0, 6.28))
    if step_at <= t < step_at + 20.0:
        gain *= 0.72
    return gain


def render(
    people: list[Shopper], cages: list[Cage], data: Path, out_video: Path, duration: float, seed: int, size: SceneSize
) -> None:
    bg = _background(seed, size)
    patches: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    writer = cv2.VideoWriter(str(out_video), cv2.VideoWriter_fourcc(*"MJPG"), size.fps, (size.width, size.height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {out_video}")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    for i in range(int(duration * size.fps)):
        t = i / size.fps
        frame = bg.copy()
        for p, x, y, state in _placed(people, t, size):
            _draw_person(frame, x, y, p.size, p, state)
            if state == "face":
                if p.id not in patches:
                    patches[p.id] = _face_patch(cv2.imread(str(data / "utkface-dev" / p.face_path)), p.size)
                _paste(frame, *patches[p.id], x, y)
        for x0, y0, x1, y1 in _cages_at(cages, t, size):
            cv2.rectangle(frame, (x0, y0), (x1, y1), (70, 75, 80), -1)
            for gx in range(x0, x1, max(6, (x1 - x0) // 8)):
                cv2.line(frame, (gx, y0), (gx, y1), (150, 155, 160), 2)
        gain = _lighting(t, duration, seed)
        if abs(gain - 1.0) > 1e-3:
            frame = cv2.convertScaleAbs(frame, alpha=gain)
        writer.write(frame)
    writer.release()


@dataclass(frozen=True)
class FaceInView:
    id: int
    x: float  # face centre, pixels
    y: float
    size: int  # face square side, pixels
    shown: bool  # frontal, at least half of its core in the frame and not hidden: a face the camera can see


def faces_at(people: list[Shopper], cages: list[Cage], t: float, size: SceneSize) -> list[FaceInView]:
    """Every person in view at video time t, and whether their face is shown (the per-frame truth)."""
    placed = _placed(people, t, size)
    boxes = _cages_at(cages, t, size)
    out = []
    for k, (p, x, y, state) in enumerate(placed):
        shown = False
        if state == "face":
            above = [(ox, oy, o.size, st) for o, ox, oy, st in placed[k + 1 :]]  # drawn after: on top
            shown = _hidden_share(x, y, p.size, above, boxes, size) < MAX_HIDDEN_SHARE
        out.append(FaceInView(p.id, x, y, p.size, shown))
    return out


def truth(people: list[Shopper], cages: list[Cage], duration: float, size: SceneSize) -> list[dict]:
    dt = 1.0 / size.fps
    shown: dict[int, list[float]] = {p.id: [] for p in people}
    attention = {p.id: 0.0 for p in people}
    zones: dict[int, dict[str, float]] = {p.id: {} for p in people}
    samples: dict[int, list[tuple[float, str]]] = {p.id: [] for p in people}
    for i in range(int(duration * size.fps)):
        t = i / size.fps
        for f in faces_at(people, cages, t, size):
            samples[f.id].append((t, zone_of(f.x / size.width, ZONES, EXCLUSION)))
            if f.shown:
                shown[f.id].append(t)
                attention[f.id] += dt
    out = []
    for p in people:
        if not shown[p.id]:
            continue
        start, end = shown[p.id][0], shown[p.id][-1]
        for t, zone in samples[p.id]:
            if start <= t <= end:
                zones[p.id][zone] = zones[p.id].get(zone, 0.0) + dt
        zone = max(zones[p.id], key=zones[p.id].get)
        away = [[round(m.t0, 2), round(m.t1, 2)] for m in p.moves if m.state != "face" and m.x0 == m.x1]
        # what the camera did not see of the face between first and last sight, whatever the cause
        # (turned away, hidden, both in a row): a look-away followed by a passer-by is one longer gap
        unseen = [[round(a + dt, 2), round(b, 2)] for a, b in itertools.pairwise(shown[p.id]) if b - a > 1.5 * dt]
        kind = (
            "excluded"
            if zone == "excluded"
            else "passer_by"
            if p.kind == "visit" and end - start < MIN_VISIT_S
            else p.kind
        )
        out.append(
            {
                "id": p.id,
                "kind": kind,
                "start": round(start, 2),
                "end": round(end, 2),
                "dwell": round(end - start, 2),
                "attention": round(attention[p.id], 2),
                "zone": zone,
                "age": p.age,
                "gender": p.gender,
                "size_px": p.size,
                "turned_away": bool(away),
                "away": away,
                "successor_of": p.successor_of,
                "occluded": [[round(c.t0, 2), round(c.t1, 2)] for c in cages if p.spot == c.x and start <= c.t0 <= end],
                "unseen": unseen,
            }
        )
    return out


def config_for_store_scene() -> dict:
    return scene_config(ZONES, EXCLUSION)


def generate_store(
    out_dir: Path, data: Path, seed: int = 1, duration: float = 240.0, people: int = 36, size: SceneSize = SceneSize()
) -> tuple[Path, Path]:
    """The video and its truth; a video already there is kept (the script is deterministic), and
    only its truth is written again."""
    out_dir.mkdir(parents=True, exist_ok=True)
    script, cages = make_store_script(data, seed, duration, people, size)
    stem = f"store-{seed}-{size.width}x{size.height}"
    video = out_dir / f"{stem}.avi"
    if not video.exists():
        render(script, cages, data, video, duration, seed, size)
    truth_path = out_dir / f"{stem}.json"
    truth_path.write_text(
        json.dumps(
            {
                "fps": size.fps,
                "size": [size.width, size.height],
                "duration": duration,
                "seed": seed,
                "people_asked": people,
                "truth_version": TRUTH_VERSION,
                "config": config_for_store_scene(),
                "people": truth(script, cages, duration, size),
                "script": [asdict(p) for p in script],
                "cages": [asdict(c) for c in cages],
            },
            indent=1,
        )
    )
    return video, truth_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "data")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=240.0)
    ap.add_argument("--people", type=int, default=36)
    ap.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT, e.g. 1280x720 or 640x480")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))
    if not (a.data / "utkface-dev").is_dir():
        raise SystemExit(f"no UTKFace faces under {a.data}: pass --data with a folder holding utkface-dev/")
    video, truth_path = generate_store(a.out, a.data, a.seed, a.duration, a.people, SceneSize(w, h))
    print(json.dumps({"video": str(video), "truth": str(truth_path)}))


if __name__ == "__main__":
    main()
