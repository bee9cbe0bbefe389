"""Agglomerative clustering with average linkage over sparse pair sums.

Shared by ``decide.regroup`` (members joined while their average pair probability reaches a
threshold) and ``contrast.bisect`` (a group cut in two). Pure.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence


def average_linkage(
    reps: Sequence[int],
    weight: dict[int, int],
    sums: dict[int, dict[int, float]],
    threshold: float,
    *,
    until: int = 1,
) -> list[list[int]]:
    """The groups of ``reps`` (each sorted; groups by first member), joined most similar first.

    ``sums[a][b]``: the sum of pair scores between ``a`` and ``b`` (both ways; absent: 0), each
    item counting ``weight`` times; a pair of groups is as similar as their sum over the product
    of their weights. Joining stops below ``threshold`` or at ``until`` groups. ``sums`` is
    consumed: pass a copy if it is needed afterwards.
    """
    size = dict(weight)
    items = {r: [r] for r in reps}
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
        for k, s in row.items():
            lo, hi = (k, new) if k < new else (new, k)
            heapq.heappush(heap, (-s / (size[new] * size[k]), lo, hi))
    return sorted((sorted(g) for g in items.values()), key=lambda g: g[0])
