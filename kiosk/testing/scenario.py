"""Scenario generator: a video of scripted shoppers made from real faces, and its ground truth.

    python -m kiosk.testing.scenario --out DIR [--seed 1] [--duration 150] [--people 24]

Faces come from UTKFace dev (``../shared/data/utkface-dev``: real faces of
known age and gender), composited on a drawn shelf background. People walk in
and out (visits), walk past (passers-by), stop for a known dwell, turn away
(the back of the head replaces the face) and back, come two at a time, cross
each other, pass behind a pillar (short occlusion), and stand in the
exclusion zone (a cashier). The ground truth JSON lists every person with
start, end, dwell, attention, zone, age and gender; times are video seconds.

The scene has depth: people walk in aisle lanes nearer the camera (larger,
lower faces; the two directions use different lanes), step up to the shelf
to stand (smaller, higher faces), and nearer people hide farther ones.

Truth conventions: a person is present while their face square is fully in
the frame (facing or turned away, hidden or not); dwell is the length of
that interval; attention is the time the face is shown frontally and not
hidden (by the pillar or a nearer person); the zone is the one holding the
face centre for most of the time.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 640, 360, 10.0
# Zones in normalized coordinates: two shelves and the cashier's side (excluded).
ZONES = [
    {"id": "shelf-a", "type": "shelf", "label": "SKU-1001 coffee", "rect": [0.0, 0.0, 0.41, 1.0]},
    {"id": "shelf-b", "type": "shelf", "label": "SKU-2002 tea", "rect": [0.41, 0.0, 0.82, 1.0]},
]
EXCLUSION = [0.82, 0.0, 1.0, 1.0]
PILLAR_X = (0.40, 0.43)  # a pillar between the shelves: faces passing behind it are hidden
FACE_Y = 0.40  # face centre height at the shelf (normalized)
LANES = {1: (0.50, 1.14), 2: (0.57, 1.28)}  # aisle lanes: (face y, size factor); lane 0 is the shelf
RIGHT_EDGE = 0.80  # people other than the cashier come and go on the right by the cash desk, at this x
STEP_S = 0.6  # time to step between the aisle and the shelf


@dataclass
class Segment:
    t0: float
    t1: float
    x0: float  # normalized face-centre x at t0 and t1
    x1: float
    state: str = "face"  # "face" or "away" (back of the head)
    lane0: int = 0  # depth at t0 and t1: 0 = at the shelf, 1 and 2 = aisle lanes nearer the camera
    lane1: int = 0


@dataclass
class Person:
    id: int
    kind: str  # "visit", "passer_by", "excluded"
    face_path: str
    age: int
    gender: str
    size: int  # face square side in pixels at the shelf
    y: float  # face centre height at the shelf
    segments: list = field(default_factory=list)

    def pose(self, t: float) -> tuple[float, float, float, str] | None:
        """(x, y, size factor, state) of the face at video time t; None when absent."""
        for s in self.segments:
            if s.t0 <= t < s.t1:
                a = (t - s.t0) / (s.t1 - s.t0)
                y0, f0 = LANES.get(s.lane0, (self.y, 1.0))
                y1, f1 = LANES.get(s.lane1, (self.y, 1.0))
                return s.x0 + a * (s.x1 - s.x0), y0 + a * (y1 - y0), f0 + a * (f1 - f0), s.state
        return None


MAX_SOURCE_POSE_DEG = 15.0  # shoppers are scripted as facing the shelf: their photos must be near-frontal
MIN_SOURCE_SHARPNESS = 20.0  # variance of the Laplacian; the blurriest fifth of UTKFace are upscaled thumbnails


def _load_faces(data: Path, rng: random.Random, n: int) -> list[dict]:
    """Adults (20-60) whose photo is sharp and near-frontal, as measured by kiosk's face mesh on
    the whole crop: a UTKFace photo looking steeply up or aside would stand for a shopper not
    facing the shelf, which the script does not intend; the blurriest photos are thumbnails
    blown up, unlike a camera frame of someone a metre away."""
    from kiosk.modelfiles.manifest import default_models_dir
    from kiosk.vision.landmarks import FaceMesh, roi_from_image
    from kiosk.vision.runtime import TFLiteModel

    with (data / "utkface-dev" / "labels.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if 20 <= int(r["age"]) <= 60]
    rng.shuffle(rows)
    chosen = []
    with TFLiteModel(default_models_dir() / "face_landmark.tflite", num_threads=1) as model:
        mesh = FaceMesh(model)
        for r in rows:
            img = cv2.imread(str(data / "utkface-dev" / r["path"]))
            if cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var() < MIN_SOURCE_SHARPNESS:
                continue
            lm = mesh.landmarks(img, roi_from_image(img.shape))
            if lm.presence > 0.9 and max(abs(lm.pose.yaw), abs(lm.pose.pitch)) <= MAX_SOURCE_POSE_DEG:
                chosen.append(r)
                if len(chosen) == n:
                    break
    return chosen


def _walk(t: float, x_from: float, x_to: float, speed: float, lane: int) -> Segment:
    return Segment(t, t + abs(x_to - x_from) / speed, x_from, x_to, "face", lane, lane)


def _free_spot(rng: random.Random, slots: list[float], busy: list, t0: float, t1: float) -> float | None:
    free = [s for s in slots if not any(b[0] == s and b[1] < t1 and t0 < b[2] for b in busy)]
    return rng.choice(free) if free else None


def make_script(data: Path, seed: int = 1, duration: float = 150.0, people: int = 24) -> list[Person]:
    """Scripted people, deterministic for a seed: visits (some turning away for a moment),
    passers-by (some crossing each other), and a cashier in the exclusion zone."""
    rng = random.Random(seed)
    chosen = _load_faces(data, rng, 2 * people + 4)
    if not chosen:
        raise ValueError(f"no usable face (adult, sharp, near-frontal) under {data / 'utkface-dev'}")
    faces = itertools.cycle(chosen)  # a small face folder (the demo's samples) repeats its faces
    slots = [0.12, 0.27, 0.56, 0.70]  # standing spots: two per shelf, clear of the pillar
    crosses = max(1, people // 12)  # each "cross" is two passers-by at once
    entries = max(1, people - crosses)
    turns, passers = max(1, entries // 6), max(1, entries // 8)
    plan = ["cross"] * crosses + ["turn"] * turns + ["passer_by"] * passers
    plan += ["visit"] * max(0, entries - len(plan))
    rng.shuffle(plan)
    step = (duration - 20.0) / len(plan)
    out: list[Person] = []
    busy: list[tuple[float, float, float]] = []  # (spot, from, to): two people never stand in one place

    def person(kind: str) -> Person:
        f = next(faces)
        p = Person(
            len(out),
            kind,
            f["path"],
            int(f["age"]),
            f["gender"],
            rng.randint(84, 100),
            FACE_Y + rng.uniform(-0.03, 0.03),
        )
        out.append(p)
        return p

    for i, kind in enumerate(plan):
        start = 1.0 + i * step + rng.uniform(0, step * 0.3)
        edge = 0.12
        rightward = rng.random() < 0.5
        ends = (-edge, RIGHT_EDGE) if rightward else (RIGHT_EDGE, -edge)
        lane = 1 if rightward else 2  # the two walking directions keep to their own lane
        if kind in ("passer_by", "cross"):
            person("passer_by").segments = [_walk(start, ends[0], ends[1], 0.75, lane)]
            if kind == "cross":  # a second passer-by walking the other way at the same time
                person("passer_by").segments = [_walk(start, ends[1], ends[0], 0.75, 3 - lane)]
            continue
        speed = rng.uniform(0.28, 0.4)  # frame widths per second
        dwell = rng.uniform(4.0, 14.0)
        spot = _free_spot(rng, slots, busy, start, start + dwell + 6.0)
        if spot is None:
            continue  # every spot taken for that time: this shopper does not come
        p = person("visit")
        walk_in = _walk(start, ends[0], spot, speed, lane)
        t1 = walk_in.t1 + STEP_S
        segs = [walk_in, Segment(walk_in.t1, t1, spot, spot, "face", lane, 0)]
        if kind == "turn":
            away = rng.uniform(0.8, 1.5)  # shorter than the tracker's max_age
            mid = t1 + dwell * 0.5
            segs += [
                Segment(t1, mid, spot, spot),
                Segment(mid, mid + away, spot, spot, "away"),
                Segment(mid + away, t1 + dwell, spot, spot),
            ]
        else:
            segs.append(Segment(t1, t1 + dwell, spot, spot))
        exit_right = rng.random() < 0.5
        out_lane = 1 if exit_right else 2
        segs.append(Segment(t1 + dwell, t1 + dwell + STEP_S, spot, spot, "face", 0, out_lane))
        walk_out = _walk(t1 + dwell + STEP_S, spot, RIGHT_EDGE if exit_right else -edge, speed, out_lane)
        segs.append(walk_out)
        p.segments = segs
        busy.append((spot, start, walk_out.t1))
    cashier = person("excluded")  # inside the exclusion zone all along: never counted
    cashier.segments = [Segment(0.0, duration, 0.91, 0.91)]
    return out


def _background(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bg = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    bg[:] = (200, 205, 210)
    for y in range(0, HEIGHT, 60):  # shelves with products
        cv2.rectangle(bg, (0, y + 50), (WIDTH, y + 56), (90, 100, 110), -1)
        x = 0
        while x < WIDTH:
            w = int(rng.integers(14, 30))
            color = tuple(int(c) for c in rng.integers(40, 230, 3))
            cv2.rectangle(bg, (x, y + 18), (x + w - 3, y + 50), color, -1)
            x += w
    cv2.rectangle(bg, (int(EXCLUSION[0] * WIDTH), 0), (WIDTH, HEIGHT), (170, 160, 150), -1)  # cash desk area
    noise = rng.normal(0, 4, bg.shape)
    return np.clip(bg + noise, 0, 255).astype(np.uint8)


FACE_PAD = 0.12  # the UTKFace crops are tight: extend each by replicating its edges so a face keeps its outline


def _face_patch(src: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole crop (its own hair, ears and neck: an oval mask would remove gender cues),
    edge-extended, resized so that the original crop spans ``size`` pixels, with a feathered mask."""
    pad = int(round(src.shape[0] * FACE_PAD))
    padded = cv2.copyMakeBorder(src, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    full = int(round(size * (1 + 2 * FACE_PAD)))
    img = cv2.resize(padded, (full, full), interpolation=cv2.INTER_AREA)
    m = np.zeros((full, full), np.float32)
    cv2.ellipse(m, (full // 2, full // 2), (int(full * 0.47), int(full * 0.5)), 0, 0, 360, 1.0, -1)
    return img, cv2.GaussianBlur(m, (0, 0), full * 0.04)[:, :, None]


def _body(frame: np.ndarray, cx: float, cy: float, s: int, color: tuple, hair: tuple, back: bool = False) -> None:
    """A neck and a torso, so that a face has the context of a person; the back of the head when turned away."""
    if back:
        cv2.ellipse(frame, (int(cx), int(cy - s * 0.06)), (int(s * 0.42), int(s * 0.5)), 0, 0, 360, hair, -1)
    cv2.rectangle(
        frame, (int(cx - s * 0.16), int(cy + s * 0.3)), (int(cx + s * 0.16), int(cy + s * 0.62)), (90, 120, 160), -1
    )
    top = int(cy + s * 0.58)
    cv2.ellipse(frame, (int(cx), top + int(s * 0.25)), (int(s * 0.85), int(s * 0.32)), 0, 180, 360, color, -1)
    cv2.rectangle(frame, (int(cx - s * 0.85), top + int(s * 0.25)), (int(cx + s * 0.85), frame.shape[0]), color, -1)


def _covers(cx: float, cy: float, s: float, px: float, py: float) -> bool:
    """Whether the silhouette drawn by _body (and the head) of a person at (cx, cy, s) covers point (px, py)."""
    head = abs(px - cx) <= 0.45 * s and abs(py - cy) <= 0.5 * s
    torso = abs(px - cx) <= 0.85 * s and py >= cy + 0.58 * s
    return head or torso


def _paste(frame: np.ndarray, img: np.ndarray, mask: np.ndarray, cx: float, cy: float) -> None:
    s = img.shape[0]
    x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + s, frame.shape[1]), min(y0 + s, frame.shape[0])
    if fx1 <= fx0 or fy1 <= fy0:
        return
    sub = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    src = img[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32)
    m = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    frame[fy0:fy1, fx0:fx1] = (sub * (1 - m) + src * m).astype(np.uint8)


def _placed(people: list[Person], t: float) -> list[tuple[Person, float, float, int, str]]:
    """People present at t as (person, x px, y px, size px, state), farthest first (drawing order)."""
    placed = []
    for p in people:
        pose = p.pose(t)
        if pose is not None:
            x, y, factor, state = pose
            placed.append((p, x * WIDTH, y * HEIGHT, int(round(p.size * factor)), state))
    placed.sort(key=lambda item: item[3])
    return placed


def render(people: list[Person], data: Path, out_video: Path, duration: float, seed: int = 1) -> None:
    bg = _background(seed)
    faces: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    sources = {p.id: cv2.imread(str(data / "utkface-dev" / p.face_path)) for p in people}
    palette = np.random.default_rng(seed + 7)
    looks = {
        p.id: (tuple(int(c) for c in palette.integers(30, 220, 3)), tuple(int(c) for c in palette.integers(10, 70, 3)))
        for p in people
    }
    # Motion JPEG at high quality: mp4v's default quality smears small faces beyond recognition.
    writer = cv2.VideoWriter(str(out_video), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {out_video}")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    px0, px1 = int(PILLAR_X[0] * WIDTH), int(PILLAR_X[1] * WIDTH)
    for i in range(int(duration * FPS)):
        frame = bg.copy()
        for p, x, y, size, state in _placed(people, i / FPS):
            _body(frame, x, y, size, *looks[p.id], back=state != "face")
            if state == "face":
                key = (p.id, size)
                if key not in faces:
                    faces[key] = _face_patch(sources[p.id], size)
                _paste(frame, *faces[key], x, y)
        cv2.rectangle(frame, (px0, 0), (px1, HEIGHT), (120, 120, 125), -1)
        writer.write(frame)
    writer.release()


def truth(people: list[Person], duration: float) -> list[dict]:
    """Ground truth per person, sampled at the frame rate exactly as rendered."""
    out = []
    dt = 1.0 / FPS
    records = {p.id: {"present": [], "attention": 0.0, "zones": {}} for p in people}
    for i in range(int(duration * FPS)):
        t = i / FPS
        placed = _placed(people, t)
        for k, (p, x, y, size, state) in enumerate(placed):
            if x - size / 2 < 0 or x + size / 2 > WIDTH:
                continue  # not fully in the frame
            r = records[p.id]
            r["present"].append(t)
            behind_pillar = PILLAR_X[0] * WIDTH - size * 0.25 < x < PILLAR_X[1] * WIDTH + size * 0.25
            hidden = behind_pillar or any(
                _covers(ox, oy, os_, x, y) for _, ox, oy, os_, _ in placed[k + 1 :] if os_ > size
            )
            if state == "face" and not hidden:
                r["attention"] += dt
            zone = zone_of(x / WIDTH)
            r["zones"][zone] = r["zones"].get(zone, 0.0) + dt
    for p in people:
        r = records[p.id]
        if not r["present"]:
            continue
        start, end = r["present"][0], r["present"][-1]
        zone = max(r["zones"], key=r["zones"].get)
        out.append(
            {
                "id": p.id,
                "kind": p.kind if zone != "excluded" else "excluded",
                "start": round(start, 2),
                "end": round(end, 2),
                "dwell": round(end - start, 2),
                "attention": round(r["attention"], 2),
                "zone": zone,
                "age": p.age,
                "gender": p.gender,
                "turned_away": any(s.state == "away" for s in p.segments),
                "away": [[round(s.t0, 2), round(s.t1, 2)] for s in p.segments if s.state == "away"],
            }
        )
    return out


def zone_of(x: float, zones: list[dict] = ZONES, exclusion: list[float] = EXCLUSION) -> str:
    """The zone (vertical bands) holding normalized x: an id, "excluded" or "none"."""
    if x >= exclusion[0]:
        return "excluded"
    for z in zones:
        if z["rect"][0] <= x < z["rect"][2]:
            return z["id"]
    return "none"


def scene_config(zones: list[dict], exclusion: list[float]) -> dict:
    """The kiosk config sections that describe a generated scene."""
    return {
        "zones": [{"id": z["id"], "type": z["type"], "label": z["label"], "rect": z["rect"]} for z in zones],
        "exclusion_zones": [{"rect": exclusion, "label": "cashier"}],
    }


def config_for_scenario() -> dict:
    """The kiosk config sections that describe the generated scene."""
    return scene_config(ZONES, EXCLUSION)


def generate(out_dir: Path, data: Path, seed: int = 1, duration: float = 150.0, people: int = 24) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    script = make_script(data, seed, duration, people)
    video = out_dir / f"scenario-{seed}.avi"
    render(script, data, video, duration, seed)
    truth_path = out_dir / f"scenario-{seed}.json"
    truth_path.write_text(
        json.dumps(
            {
                "fps": FPS,
                "size": [WIDTH, HEIGHT],
                "duration": duration,
                "seed": seed,
                "config": config_for_scenario(),
                "people": truth(script, duration),
                "script": [asdict(p) for p in script],
            },
            indent=1,
        )
    )
    return video, truth_path


def face_folder_from_images(images: list[Path], out_root: Path) -> Path:
    """A UTKFace-like folder (``out_root/utkface-dev``: 200 px face crops and labels.csv) made from
    ordinary photos, for machines without ../shared/data. Labels are kiosk's own estimates."""
    from kiosk.vision.pipeline import VisionPipeline

    folder = out_root / "utkface-dev"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    with VisionPipeline() as pipeline:
        for path in images:
            img = cv2.imread(str(path))
            if img is None:
                continue
            for face in pipeline.analyze(img):
                b = face.detection.box
                x0, y0, x1, y1 = b.x0, b.y0, b.x1, b.y1
                cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, 1.7 * max(x1 - x0, y1 - y0)
                ix0, iy0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
                crop = img[iy0 : int(cy + side / 2), ix0 : int(cx + side / 2)]
                if crop.size == 0 or face.age is None or face.gender is None:
                    continue
                name = f"images/{len(rows):05d}.jpg"
                cv2.imwrite(str(folder / name), cv2.resize(crop, (200, 200), interpolation=cv2.INTER_AREA))
                gender = "female" if face.gender[0] > face.gender[1] else "male"
                rows.append((name, int(round(min(60, max(20, face.age)))), gender))
    with (folder / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "age", "gender"])
        w.writerows(rows)
    return out_root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "data")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=150.0)
    ap.add_argument("--people", type=int, default=24)
    ap.add_argument(
        "--faces-from",
        type=Path,
        nargs="+",
        default=None,
        help="Photos to take the faces from when there is no UTKFace folder (the demo's samples).",
    )
    a = ap.parse_args()
    if a.faces_from and not (a.data / "utkface-dev").is_dir():
        a.data = face_folder_from_images(a.faces_from, a.out / "faces")
    if not (a.data / "utkface-dev").is_dir():
        raise SystemExit(f"no UTKFace faces under {a.data}: pass --data with a folder holding utkface-dev/")
    video, truth_path = generate(a.out, a.data, a.seed, a.duration, a.people)
    print(json.dumps({"video": str(video), "truth": str(truth_path)}))


if __name__ == "__main__":
    main()
