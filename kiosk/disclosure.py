"""Statistical disclosure control: the rules every published count goes through.

The device publishes, per period and zone, a total (visits) and margins that each sum to it:
age bands, gender, content label, dominant emotion, first reaction, and the dwell and attention
histograms. An attacker holding a summary knows every published figure and every equality
between them (each margin sums to the zone's visits; the attentive visits are the attention
histogram's bins at or above the threshold). The rules below make sure that from all of it
together no count of 1 to k-1 people can be learnt:

1. **Primary suppression.** A count of 1 to k-1 is published as ``null``. Zero is published: it
   describes nobody. A zone whose visits are suppressed publishes no visit figure at all.
2. **Complementary suppression.** In a margin whose total is published, the suppressed cells
   together must hold 0 or at least k people and be at least two: otherwise the total minus
   the published cells gives one of them back (``visits 16``, ``female 6``, ``male 7`` gives
   ``unknown 3``), or tells that fewer than k people fell in the suppressed group. The cells
   added are the smallest published ones, preferring the same sub-group (so that a subtotal such
   as the attentive visits can stay published).
3. **Fixed key sets.** Every margin lists every category in every summary, suppressed ones as
   ``null``, so the presence of a key says nothing; every configured zone is listed in every
   summary, with zeros when nobody came.
4. **Histograms are published coarser, not with holes.** A dwell or attention bin of 1..k-1 is
   merged with its neighbours until every published bin holds 0 or at least k (the merged
   edges are in the payload), without crossing the attentive threshold when both sides allow
   it. Hidden bins beside a published sum would be given back by it (five visits, four hidden
   in the 0-5 s bin and one in the 60-120 s bin: a dwell sum of 84 s rules out 5+0, at most
   25 s, and 3+2, at least 120 s), so a histogram with a hidden bin never goes out beside its
   sum; a merged one does, and the sum (and mean) of a zone of at least k visits is published.
   The attentive count goes out when it is the sum of published bins (the threshold is a bin
   edge and the merge kept it). The queue's mean and peak occupancy follow its peak.

This module holds the rules and nothing else: no storage, no payload layout. It is pure and
small so that a reviewer can check it against the tests that attack the payloads
(``tests/test_disclosure.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

Protected = dict[str, int | None]


def check_k(k: int) -> int:
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a whole number of at least 1, got {k!r}")
    return k


def protect_count(n: int, k: int) -> int | None:
    """A count on its own (a zone's visits or passers-by): 0, at least k, or None."""
    return n if n == 0 or n >= k else None


def protect_margin(counts: Mapping[str, int], k: int, groups: Sequence[Iterable[str]] = ()) -> Protected:
    """One margin whose cells sum to a published total of at least k (or 0).

    Returns the cells with those to hide set to None: every cell of 1..k-1 (primary), then,
    while the hidden cells are fewer than two or hold fewer than k people together, the smallest
    published non-zero cell (complementary). ``groups`` lists sub-groups of the keys whose
    subtotals should stay unrecoverable or published together: a complementary cell is taken
    from a group that already has a hidden cell when there is one.
    """
    check_k(k)
    if any(n < 0 for n in counts.values()):
        raise ValueError(f"negative count in {dict(counts)}")
    group_of = {key: i for i, g in enumerate(groups) for key in g}
    hidden = {key for key, n in counts.items() if 0 < n < k}
    order = list(counts)  # ties go to the first listed key: deterministic

    def hidden_total() -> int:
        return sum(counts[key] for key in hidden)

    while hidden and (len(hidden) < 2 or hidden_total() < k):
        candidates = [key for key in order if key not in hidden and counts[key] > 0]
        if not candidates:  # every person of the margin is hidden already: the total is the sum
            candidates = [key for key in order if key not in hidden]
            if not candidates or hidden_total() >= k:
                break
        touched = {group_of.get(key) for key in hidden} - {None}
        same = [key for key in candidates if group_of.get(key) in touched]
        pool = same or candidates
        hidden.add(min(pool, key=lambda key: (counts[key], order.index(key))))
    return {key: (None if key in hidden else n) for key, n in counts.items()}


def merge_bins(counts: Sequence[int], k: int, breaks: Iterable[int] = ()) -> tuple[list[tuple[int, int]], bool]:
    """Runs ``[start, end)`` of neighbouring histogram bins, each holding 0 or at least k visits.

    A histogram is published coarser rather than with holes: a bin of 1..k-1 is merged with its
    neighbours until the merged bin holds at least k, and an empty bin stays a bin of its own.
    ``breaks`` are bin indices where a run must start (the attentive threshold), so that the sums
    on either side stay published; when one side holds 1..k-1 visits it cannot stand alone, the
    sides are merged across the break, and the second value returned is False (the subtotals on
    either side are then not published). Needs ``sum(counts)`` to be 0 or at least k.
    """
    check_k(k)
    n = len(counts)
    cuts = sorted({0, n} | {b for b in breaks if 0 < b < n})
    segments = [(a, b) for a, b in zip(cuts, cuts[1:])]
    kept = True
    while len(segments) > 1:
        bad = next((i for i, (a, b) in enumerate(segments) if 0 < sum(counts[a:b]) < k), None)
        if bad is None:
            break
        j = bad + 1 if bad + 1 < len(segments) else bad - 1  # merge with the next side, else the previous
        lo, hi = min(bad, j), max(bad, j)
        segments[lo : hi + 1] = [(segments[lo][0], segments[hi][1])]
        kept = False
    runs: list[tuple[int, int]] = []
    for a, b in segments:
        runs += _merge_segment(counts, a, b, k)
    return runs, kept


def _merge_segment(counts: Sequence[int], a: int, b: int, k: int) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    start, acc = a, 0
    for i in range(a, b):
        if acc == 0 and counts[i] == 0:  # an empty bin with nothing pending: a bin of its own
            runs.append((i, i + 1))
            start = i + 1
            continue
        acc += counts[i]
        if acc >= k:
            runs.append((start, i + 1))
            start, acc = i + 1, 0
    if acc:  # 1..k-1 left over: into the previous run with values, trailing empty bins kept apart
        last = max(i for i in range(start, b) if counts[i])
        while runs and sum(counts[runs[-1][0] : runs[-1][1]]) == 0:
            runs.pop()  # empty bins between the previous run and the leftover join them
        if not runs:
            raise ValueError(f"bins {a}..{b} hold {acc} < k={k} visits: they cannot be published on their own")
        runs[-1] = (runs[-1][0], last + 1)
        runs += [(i, i + 1) for i in range(last + 1, b)]
    return runs


def all_hidden(keys: Iterable[str]) -> Protected:
    return dict.fromkeys(keys)
