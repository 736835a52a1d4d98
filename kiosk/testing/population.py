"""Visit populations for disclosure tests: a day of a store's zones, as finished visits.

Vision is not what is under test here, so the visits are drawn directly, with the spread a shelf
camera sees: traffic from a handful to dozens of visits per 5-minute period and zone (quiet
mornings, a lunchtime peak), a queue zone, a few passers-by per visit, ages skewed to adults
with some children and over-65s, about one visit in ten of unknown gender, mostly neutral and
happy faces with every other emotion rare (disgust rarest), dwell times log-normal around 8 s
with a long tail past 5 minutes, attention a share of the dwell, and two content labels that
switch at set hours. Each figure is chosen to make small cells common, as they are in a store.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from kiosk.aggregate import Aggregator
from kiosk.config.vocabulary import DEFAULT_AGE_BANDS
from kiosk.store.aggregates import AggregateStore
from kiosk.visits import Visit, age_band

EMOTION_WEIGHTS = {
    "neutral": 0.55,
    "happy": 0.22,
    "sad": 0.06,
    "surprise": 0.06,
    "angry": 0.04,
    "fear": 0.03,
    "disgust": 0.01,
    None: 0.03,
}
GENDER_WEIGHTS = {"female": 0.48, "male": 0.42, "unknown": 0.10}


@dataclass(frozen=True)
class Population:
    periods: tuple[int, ...]
    truth: dict  # period_start -> zone -> margin -> key -> count


def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _age(rng: random.Random) -> float | None:
    r = rng.random()
    if r < 0.05:
        return None
    if r < 0.13:
        return rng.uniform(4, 17)
    if r < 0.9:
        return rng.uniform(18, 64)
    return rng.uniform(65, 88)


def generate_day(
    db,
    *,
    seed: int,
    t0: int,
    periods: int = 48,
    period_s: int = 300,
    zones: tuple[str, ...] = ("shelf-a", "shelf-b", "checkout"),
    labels: tuple[str, str] = ("spring", "promo"),
    min_attention_s: float = 1.0,
) -> Population:
    """Writes ``periods`` periods of visits into ``db`` (through the aggregator and the store, as the
    daemon does) and returns the true margins per period and zone."""
    rng = random.Random(seed)
    agg = Aggregator(period_s)
    truth: dict = {}
    starts = tuple(t0 + i * period_s for i in range(periods))
    for i, start in enumerate(starts):
        hour = 8 + 12 * i / max(1, periods)  # the day from 8:00 to 20:00
        peak = math.exp(-(((hour - 13.0) / 2.5) ** 2))
        for zone in zones:
            rate = rng.choice((0.3, 1.0, 3.0, 6.0)) + 30.0 * peak * rng.uniform(0.3, 1.0)
            n = _poisson(rng, rate)
            for _ in range(n):
                visit = _visit(
                    rng, zone, start, period_s, labels[0] if hour < 12 or hour > 16 else labels[1], min_attention_s
                )
                agg.add(visit)
                _count(truth, start, visit)
            for _ in range(_poisson(rng, rate * 1.5)):
                agg.add(_visit(rng, zone, start, period_s, labels[0], min_attention_s, passer=True))
            if zone == "checkout":
                for s in range(0, period_s, 5):
                    agg.add_occupancy(start + s + 0.5, zone, _poisson(rng, 2.0 + 6 * peak))
    AggregateStore(db).write(agg.drain())
    return Population(starts, truth)


def _poisson(rng: random.Random, lam: float) -> int:
    threshold, n, p = math.exp(-lam), 0, rng.random()
    while p > threshold:
        n += 1
        p *= rng.random()
    return n


def _visit(
    rng: random.Random, zone: str, start: int, period_s: int, label: str, min_attention_s: float, passer: bool = False
) -> Visit:
    end = start + rng.uniform(1, period_s - 1)
    dwell = rng.uniform(0.5, 2.9) if passer else min(900.0, 3.0 + rng.lognormvariate(math.log(6), 1.0))
    attention = dwell * rng.betavariate(1.2, 2.5)
    dominant = _pick(rng, EMOTION_WEIGHTS)
    first = dominant if rng.random() < 0.6 else _pick(rng, EMOTION_WEIGHTS)
    return Visit(
        kind="passer_by" if passer else "visit",
        zone_id=zone,
        content=label,
        wall_start=end - dwell,
        wall_end=end,
        dwell_s=dwell,
        attention_s=attention,
        attentive=attention >= min_attention_s,
        first_reaction=first,
        dominant_emotion=dominant,
        age_band=age_band(_age(rng), DEFAULT_AGE_BANDS),
        gender=_pick(rng, GENDER_WEIGHTS),
    )


def _count(truth: dict, start: int, v: Visit) -> None:
    z = truth.setdefault(start, {}).setdefault(v.zone_id, {"age_bands": {}, "gender": {}, "content": {}})
    for margin, key in (("age_bands", v.age_band), ("gender", v.gender), ("content", v.content)):
        z[margin][key] = z[margin].get(key, 0) + 1
