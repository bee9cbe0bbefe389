"""A contrastive split: does a group of articles hold two look-alike events?

Two look-alike events (two players of one team arrested for drunk driving) share the words that
make them look alike; what tells them apart is what only some members share. Inside one group,
each term is weighed by an IDF over the group's own members (times its corpus IDF), so terms
every member carries weigh nothing and terms shared by a subset dominate; the group is cut in two
by average linkage on those local vectors. The cut is kept only when each part has a headline term
of its own: for each part, the best difference between the share of its members whose title+lead
carry a term and the share of the other part's that do; the smaller of the two is the contrast.

Pure: features and weights come in as arguments.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from monitor.cluster.features import DocFeatures
from monitor.cluster.linkage import average_linkage
from monitor.cluster.similarity import Weigher, cosine_shared


def local_vectors(docs: Sequence[DocFeatures], weigher: Weigher) -> list[dict[str, float]]:
    """Unit vectors of words and names, each term weighed by log-tf x corpus IDF x local IDF.

    The local IDF is log(n / df) over the ``n`` documents; terms in one document only (they
    link nothing) or in all of them (they separate nothing) are left out.
    """
    n = len(docs)
    bags: list[dict[str, tuple[float, float]]] = []
    for doc in docs:
        bag: dict[str, tuple[float, float]] = {}
        for space, channel in (("w:", doc.words), ("n:", doc.names)):
            for term, count in channel.items():
                if count > 0:
                    bag[space + term] = (1.0 + math.log(count), weigher.idf(space, term))
        bags.append(bag)
    df = Counter(key for bag in bags for key in bag)
    vectors = []
    for bag in bags:
        vec = {
            key: tf * idf * math.log(n / df[key])
            for key, (tf, idf) in bag.items()
            if 2 <= df[key] < n
        }
        norm = math.sqrt(sum(v * v for v in vec.values()))
        vectors.append({k: v / norm for k, v in vec.items()} if norm else {})
    return vectors


def bisect(vectors: Sequence[Mapping[str, float]]) -> tuple[list[int], list[int]]:
    """Indexes of the two parts of an average-linkage clustering stopped at two groups.

    Members linked to nobody (no shared weighed term) join the part they are closer to on
    average, the larger one when equal. Each part is sorted; the one holding index 0 comes first.
    """
    n = len(vectors)
    sim = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            sim[i][j] = sim[j][i] = cosine_shared(vectors[i], vectors[j])
    # Average linkage (the groups regrouped hold up to ``regroup_members`` articles), stopped
    # at two groups; unlinked pairs are left out of the sums.
    sums = {i: {j: sim[i][j] for j in range(n) if j != i and sim[i][j] > 0.0} for i in range(n)}
    groups = average_linkage(range(n), dict.fromkeys(range(n), 1), sums, 0.0, until=2)
    ranked = sorted(groups, key=lambda g: (-len(g), min(g)))
    first, second = list(ranked[0]), list(ranked[1]) if len(ranked) > 1 else []
    for rest in ranked[2:]:
        for i in rest:
            to_first = sum(sim[i][j] for j in first) / len(first)
            to_second = sum(sim[i][j] for j in second) / len(second)
            (second if to_second > to_first else first).append(i)
    parts = sorted((sorted(first), sorted(second)), key=lambda p: p[0] if p else n)
    return parts[0], parts[1]


def contrast(leads: Sequence[Mapping[str, float]], a: Sequence[int], b: Sequence[int]) -> float:
    """The smaller, over the two parts, of the best (share of the part whose title+lead carries a
    term) - (share of the other part's that do); 0 when a part is empty."""
    if not a or not b:
        return 0.0
    best = []
    for part, other in ((a, b), (b, a)):
        own = Counter(t for i in part for t in leads[i])
        theirs = Counter(t for i in other for t in leads[i])
        best.append(
            max((c / len(part) - theirs.get(t, 0) / len(other) for t, c in own.items()), default=0)
        )
    return min(best)


def contrastive_split(
    docs: Sequence[DocFeatures], weigher: Weigher, min_part: int
) -> tuple[list[int], list[int], float] | None:
    """The two parts of ``docs`` (indexes) and their contrast, or None when a part would hold
    fewer than ``min_part`` documents. ``weigher`` must have been primed with ``docs``."""
    if len(docs) < 2 * min_part:
        return None
    a, b = bisect(local_vectors(docs, weigher))
    if min(len(a), len(b)) < min_part:
        return None
    return a, b, contrast([d.lead for d in docs], a, b)
