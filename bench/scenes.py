"""Visit counting on generated store scenes (kiosk.testing.store_scene), against their truth. Prints JSON.

    .venv/bin/python bench/scenes.py [--seeds 1 2 3] [--sizes 1280x720 640x480] [--duration 240] [--people 36]
                                     [--set tracking.reacquire_s=0 --set vision.detector.tiles=3 ...]

Scenes are generated once into .cache/scenes/ (they need ../shared/data/utkface-dev). For each
scene: the visit count and its error, visits split by a look-away or an occlusion (and of those,
the ones where the face was unseen no longer than tracking.reacquire_s), the same-spot
pairs (one person leaves, another takes the spot 2-10 s later: two visits) told apart, median
dwell and attention errors, staff counted, and the analysis cost per frame. ``--set`` overrides
a config key (dotted path) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.camera.sources import video_frames  # noqa: E402
from kiosk.config import parse_config  # noqa: E402
from kiosk.testing.evaluate import store_scene_report  # noqa: E402
from kiosk.testing.store_scene import EXCLUSION, TRUTH_VERSION, SceneSize, faces_at, generate_store, make_store_script  # noqa: E402
from kiosk.wiring import (
    VisitChain,  # noqa: E402
    open_pipeline,  # noqa: E402
)

T0 = 1_800_000_000.0


def _set(cfg: dict, dotted: str) -> None:
    key, _, raw = dotted.partition("=")
    *parents, leaf = key.split(".")
    node = cfg
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = yaml.safe_load(raw)


def _recall_probe(truth: dict, data: Path, min_px: int = 48):
    """Per-frame detection recall for faces of at least ``min_px`` that the camera can see, and the
    delay from a face first being seen to it first being found (detected or followed)."""
    w, h = truth["size"]
    size = SceneSize(w, h, truth["fps"])
    people, cages = make_store_script(data, truth["seed"], truth["duration"], truth.get("people_asked", 36), size)
    state = {"seen": 0, "found": 0, "first_shown": {}, "first_found": {}}

    def probe(chain, t: float) -> None:
        tracks = [tr for tr in chain.observer.tracker.tracks if tr.detection is not None and tr.last_seen == t]
        for f in faces_at(people, cages, t, size):
            if not f.shown or f.size < min_px or f.x / w >= EXCLUSION[0]:
                continue  # hidden, small, or staff (never analysed, so never found)
            state["seen"] += 1
            state["first_shown"].setdefault(f.id, t)
            hit = any(abs(tr.box[0] - f.x) < 0.5 * f.size and abs(tr.box[1] - f.y) < 0.5 * f.size for tr in tracks)
            if hit:
                state["found"] += 1
                state["first_found"].setdefault(f.id, t)

    def summary() -> dict:
        delays = [state["first_found"].get(i, float("inf")) - t0 for i, t0 in state["first_shown"].items()]
        return {
            "recall_48px": round(state["found"] / max(1, state["seen"]), 3),
            "found_within_1s": round(sum(d <= 1.0 for d in delays) / max(1, len(delays)), 3),
            "median_find_delay_s": round(statistics.median(delays), 2) if delays else None,
        }

    return probe, summary


def evaluate_scene(video: Path, truth_path: Path, overrides: list[str], data: Path | None = None) -> dict:
    truth = json.loads(truth_path.read_text())
    probe, recall = _recall_probe(truth, data) if data is not None else (None, None)
    raw = {**truth["config"], "visits": {}, "store": {"period_s": 300}}
    for o in overrides:
        _set(raw, o)
    cfg = parse_config(raw)
    visits, frames, faces = [], 0, 0
    started = time.perf_counter()
    with open_pipeline(cfg.vision) as pipeline:
        chain = VisitChain(cfg, pipeline)
        for _, t, frame in video_frames(str(video)):
            visits += chain.process(frame, t, T0 + t)
            if probe is not None:
                probe(chain, t)
        visits += chain.finish()
        frames, faces = chain.frames, chain.faces
    elapsed = time.perf_counter() - started
    return {
        **store_scene_report(truth["people"], visits, T0, wait_s=cfg.tracking.reacquire_s),
        "frames": frames,
        "faces_per_frame": round(faces / max(1, frames), 2),
        "ms_per_frame": round(1000 * elapsed / max(1, frames), 2),
        **(recall() if recall is not None else {}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--sizes", nargs="+", default=["1280x720", "640x480"])
    ap.add_argument("--duration", type=float, default=240.0)
    ap.add_argument("--people", type=int, default=36)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "scenes")
    ap.add_argument(
        "--recall", action="store_true", help="also per-frame recall of faces >= 48 px and time to find them"
    )
    ap.add_argument(
        "--set", dest="overrides", action="append", default=[], help="config override, e.g. tracking.reacquire_s=0"
    )
    a = ap.parse_args()
    if not (a.data / "utkface-dev").is_dir():
        raise SystemExit(f"{a.data / 'utkface-dev'} is absent: the scenes are made of its faces")
    rows = []
    for size in a.sizes:
        w, h = (int(v) for v in size.split("x"))
        for seed in a.seeds:
            folder = a.cache / f"d{int(a.duration)}-p{a.people}"
            video = folder / f"store-{seed}-{w}x{h}.avi"
            truth_path = video.with_suffix(".json")
            if not (video.exists() and truth_path.exists()) or (
                json.loads(truth_path.read_text()).get("truth_version") != TRUTH_VERSION
            ):  # a missing scene is made; an older version's truth is written again
                generate_store(folder, a.data, seed, a.duration, a.people, SceneSize(w, h))
            row = {
                "seed": seed,
                "size": size,
                **evaluate_scene(video, truth_path, a.overrides, a.data if a.recall else None),
            }
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
    keys = ("visit_count_error", "median_dwell_error_s", "median_attention_error_s", "ms_per_frame")
    print(
        json.dumps(
            {
                "overrides": a.overrides,
                "scenes": rows,
                "median": {k: statistics.median(r[k] for r in rows) for k in keys},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
