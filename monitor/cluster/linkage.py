"""Agglomerative clustering with average linkage over sparse pair sums.

Shared by ``decide.regroup`` (members joined while their average pair probability reaches a
threshold; with the name and year vetoes) and ``contrast.bisect`` (a group cut in two). Pure.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Collection, Mapping, Sequence


def average_linkage(
    reps: Sequence[int],
    weight: dict[int, int],
    sums: dict[int, dict[int, float]],
    threshold: float,
    *,
    until: int = 1,
    names: Mapping[int, Collection[str]] | None = None,
    name_veto: float = 2.0,
    veto_min: int = 4,
    years: Mapping[int, Collection[int]] | None = None,
    year_veto: float = 2.0,
) -> list[list[int]]:
    """The groups of ``reps`` (each sorted; groups by first member), joined most similar first.

    ``sums[a][b]``: the sum of pair scores between ``a`` and ``b`` (both ways; absent: 0), each
    item counting ``weight`` times; a pair of groups is as similar as their sum over the product
    of their weights. Joining stops below ``threshold`` or at ``until`` groups. ``sums`` is
    consumed: pass a copy if it is needed afterwards.

    Name veto: with ``names`` (each rep's names), two groups of ``veto_min`` reps or more are not
    joined when each has a name of its own: ``name_contrast`` of the two reaches ``name_veto``
    (above 1: never). The pair stays apart until one of them joins another group.

    Year veto: with ``years`` (each rep's years), two such groups are not joined either when one
    has a year the other (almost) never mentions: ``year_contrast`` reaches ``year_veto``.
    """
    size = dict(weight)
    items = {r: [r] for r in reps}
    veto = names is not None and name_veto <= 1.0
    counts = {r: Counter(set(names[r])) for r in reps} if names is not None and veto else {}
    by_year = years is not None and year_veto <= 1.0
    year_counts = {r: Counter(set(years[r])) for r in reps} if years is not None and by_year else {}
    heap = [
        (-s / (size[a] * size[b]), a, b) for a, row in sums.items() for b, s in row.items() if a < b
    ]
    heapq.heapify(heap)
    next_id = max(reps) + 1
    while heap and len(items) > until:
        neg, a, b = heapq.heappop(heap)
        if a not in items or b not in items:
            continue
        if -neg < threshold:
            break
        if (veto or by_year) and len(items[a]) >= veto_min and len(items[b]) >= veto_min:
            n_a, n_b = len(items[a]), len(items[b])
            if veto and name_contrast(counts[a], n_a, counts[b], n_b) >= name_veto:
                continue
            if by_year and year_contrast(year_counts[a], n_a, year_counts[b], n_b) >= year_veto:
                continue
        new = next_id
        next_id += 1
        row_a, row_b = sums.pop(a), sums.pop(b)
        row_a.pop(b, None)
        row_b.pop(a, None)
        row: dict[int, float] = {}
        for k in set(row_a) | set(row_b):
            s = row_a.get(k, 0.0) + row_b.get(k, 0.0)
            row[k] = s
            other = sums[k]
            other.pop(a, None)
            other.pop(b, None)
            other[new] = s
        sums[new] = row
        size[new] = size.pop(a) + size.pop(b)
        items[new] = items.pop(a) + items.pop(b)
        if veto:
            counts[new] = counts.pop(a) + counts.pop(b)
        if by_year:
            year_counts[new] = year_counts.pop(a) + year_counts.pop(b)
        for k, s in row.items():
            lo, hi = (k, new) if k < new else (new, k)
            heapq.heappush(heap, (-s / (size[new] * size[k]), lo, hi))
    return sorted((sorted(g) for g in items.values()), key=lambda g: g[0])


def name_contrast(a: Counter[str], size_a: int, b: Counter[str], size_b: int) -> float:
    """How much each of two groups has a name of its own: per group, the best (share of its
    members carrying a name) - (share of the other group's members carrying it); the smaller of
    the two groups' values (0 when a group has no name the other carries less often)."""
    best = []
    for own, n_own, other, n_other in ((a, size_a, b, size_b), (b, size_b, a, size_a)):
        best.append(
            max((c / n_own - other.get(t, 0) / n_other for t, c in own.items()), default=0.0)
        )
    return max(0.0, min(best))


YEAR_RARE = 0.1  # the other group's share of articles mentioning a year, at most, for it to count
YEAR_DATING = 0.5  # the share of a group's articles mentioning a year for it to date the group


def date_year(counts: Counter[int], size: int) -> int | None:
    """The year a group is dated by: the latest year at least ``YEAR_DATING`` of its members
    mention (reports cite older years as background, the event's own year is the latest), or
    None."""
    return max((y for y, c in counts.items() if c >= YEAR_DATING * size), default=None)


def year_contrast(a: Counter[int], size_a: int, b: Counter[int], size_b: int) -> float:
    """How much one of two groups is dated by a year the other does not mention: over both
    groups, the best share of its members mentioning a year that at most ``YEAR_RARE`` of the
    other group's members mention (one-sided: the other group may mention no year at all, as
    reports of an old event often do; 0 when no year qualifies). Two groups dated by the same
    year (``date_year``) score 0: a background year only one of them cites (the year a burnt
    building was built) does not tell two reports of one fire apart."""
    dated = date_year(a, size_a)
    if dated is not None and dated == date_year(b, size_b):
        return 0.0
    best = 0.0
    for own, n_own, other, n_other in ((a, size_a, b, size_b), (b, size_b, a, size_a)):
        for year, c in own.items():
            if other.get(year, 0) <= YEAR_RARE * n_other and c / n_own > best:
                best = c / n_own
    return best
