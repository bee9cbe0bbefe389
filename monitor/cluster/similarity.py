"""How close an article is to a development: the similarities the decision model combines.

A development is summarised by a ``Profile`` (its members' term vectors summed per channel,
before IDF, so it can be grown one member at a time); IDF comes from the corpus statistics at
decision time through a ``Weigher``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from monitor.cluster.features import DocFeatures
from monitor.cluster.stats import DocFreqs, idf_of
from monitor.cluster.topicterms import TopicTerms

FEATURE_NAMES = (
    "cos_words",  # TF-IDF cosine, whole text vs the development's centroid
    "cos_lead",  # title+lead vs the centroid of the members' titles+leads
    "cos_names",  # proper names vs the development's names
    "cos_facts",  # numbers, months, weekdays
    "max_member",  # best whole-text cosine with a single member
    "names_novel",  # share of the article's names (by count x IDF) the development never named
    "dev_top_missing",  # share of the development's two most prominent names the article lacks
    "core_missing",  # share of the names most members carry that the article lacks
    "year_conflict",  # both mention years and share none
    "log_size",  # log(1 + members)
    "doc_short",  # 1 for an empty text, towards 0 for long articles
)

# The member-pair model of ``decide.regroup``: two articles, symmetric similarities.
PAIR_FEATURE_NAMES = (
    "cos_words",  # TF-IDF cosine of the whole texts
    "cos_lead",  # of the titles + leads
    "cos_names",  # of the proper names
    "cos_facts",  # of numbers, months, weekdays
    "names_novel",  # share of each one's names (count x IDF) the other lacks, mean of both ways
    "top_missing",  # share of each one's two heaviest names the other lacks, mean of both ways
    "year_conflict",  # both mention years and share none
    "doc_short",  # 1 for an empty text, towards 0 when both are long (the shorter counts)
    "cos_local",  # cosine of the terms shared within the regrouped scope, weighed by its own IDF
    # (3+ of them shared, else 0)
)

SPACES = ("w:", "n:", "f:")  # namespaces of DocFeatures.terms(): words, names, facts


@dataclass
class Profile:
    """A development's members summed per channel (unit-length log-tf vectors), before IDF."""

    size: int = 0
    words: dict[str, float] = field(default_factory=dict)
    lead: dict[str, float] = field(default_factory=dict)
    names: dict[str, float] = field(default_factory=dict)
    facts: dict[str, float] = field(default_factory=dict)
    name_members: Counter[str] = field(default_factory=Counter)  # members naming each name
    years: Counter[int] = field(default_factory=Counter)

    def add(self, feats: DocFeatures) -> None:
        self.size += 1
        _add_unit(self.words, feats.words)
        _add_unit(self.lead, feats.lead)
        _add_unit(self.names, feats.names)
        _add_unit(self.facts, feats.facts)
        self.name_members.update(feats.names.keys())
        self.years.update(feats.years)

    def copy(self) -> Profile:
        return Profile(
            self.size,
            dict(self.words),
            dict(self.lead),
            dict(self.names),
            dict(self.facts),
            self.name_members.copy(),
            self.years.copy(),
        )

    @classmethod
    def of(cls, many: Iterable[DocFeatures]) -> Profile:
        profile = cls()
        for feats in many:
            profile.add(feats)
        return profile


class Weigher:
    """IDF weights for one decision, looked up in the corpus statistics in bulk."""

    def __init__(self, stats: DocFreqs, ignore: TopicTerms | None = None) -> None:
        self._stats = stats
        self._ignore = ignore or None  # the topic's query words weigh 0 (``TopicTerms``)
        self._n = stats.n_docs
        self._default = idf_of(self._n, 0)
        self._idf: dict[str, dict[str, float]] = {space: {} for space in SPACES}
        # Vectors already weighed in this decision, by the identity of their bag: a member's
        # vector is needed again for every article of a merge check.
        self._memo: dict[tuple[str, int], tuple[Mapping[str, float], dict[str, float]]] = {}

    def prime(self, doc: DocFeatures | None, profiles: Iterable[Profile]) -> None:
        """Fetch, in one call, every term the coming comparisons will weigh."""
        wanted: dict[str, set[str]] = {space: set() for space in SPACES}
        if doc is not None:
            _want(wanted, doc.words, doc.lead, doc.names, doc.facts)
        for p in profiles:
            _want(wanted, p.words, p.lead, p.names, p.facts)
        self._fetch(wanted)

    def prime_docs(self, docs: Iterable[DocFeatures]) -> None:
        """``prime`` for many documents at once (one lookup)."""
        wanted: dict[str, set[str]] = {space: set() for space in SPACES}
        for d in docs:
            _want(wanted, d.words, d.lead, d.names, d.facts)
        self._fetch(wanted)

    def _fetch(self, wanted: Mapping[str, set[str]]) -> None:
        missing = [
            space + term
            for space, terms in wanted.items()
            for term in terms
            if term not in self._idf[space]
        ]
        if not missing:
            return
        found = self._stats.dfs(missing)
        ignore = self._ignore
        for key in missing:
            space, term = key[:2], key[2:]
            ignored = ignore is not None and ignore.covers(space, term)
            self._idf[space][term] = 0.0 if ignored else idf_of(self._n, found.get(key, 0))

    def idf(self, space: str, term: str) -> float:
        return self._idf[space].get(term, self._default)

    def unit(self, space: str, bag: Mapping[str, float]) -> dict[str, float]:
        """Log-tf x IDF, scaled to unit length (the vectors must not change meanwhile)."""
        memo = self._memo.get((space + "u", id(bag)))
        if memo is not None and memo[0] is bag:
            return memo[1]
        idf, default = self._idf[space], self._default
        vec = _normalised(
            {t: (1.0 + math.log(x)) * idf.get(t, default) for t, x in bag.items() if x > 0}
        )
        self._memo[space + "u", id(bag)] = (bag, vec)
        return vec

    def centroid(self, space: str, summed: Mapping[str, float]) -> dict[str, float]:
        memo = self._memo.get((space + "c", id(summed)))
        if memo is not None and memo[0] is summed:
            return memo[1]
        idf, default = self._idf[space], self._default
        vec = _normalised({t: x * idf.get(t, default) for t, x in summed.items() if x > 0})
        self._memo[space + "c", id(summed)] = (summed, vec)
        return vec


def rough_closeness(
    words: Mapping[str, float], names: Mapping[str, float], profile: Profile
) -> float:
    """Cheap: mean similarity to the members before length normalisation (for shortlists).

    ``words`` and ``names`` are the article's unit vectors (``Weigher.unit``).
    """
    return (_dot(words, profile.words) + _dot(names, profile.names)) / max(profile.size, 1)


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Dot product of two unit vectors."""
    return _dot(a, b)


def pair_features(
    doc: DocFeatures,
    profile: Profile,
    members: Sequence[DocFeatures],
    weigher: Weigher,
) -> tuple[float, ...]:
    """The similarities of ``doc`` to a development, in the order of ``FEATURE_NAMES``.

    ``weigher`` must have been primed with ``doc`` and ``profile``.
    """
    words = weigher.unit("w:", doc.words)
    return (
        _dot(words, weigher.centroid("w:", profile.words)),
        _dot(weigher.unit("w:", doc.lead), weigher.centroid("w:", profile.lead)),
        _dot(weigher.unit("n:", doc.names), weigher.centroid("n:", profile.names)),
        _dot(weigher.unit("f:", doc.facts), weigher.centroid("f:", profile.facts)),
        max((_dot(words, weigher.unit("w:", m.words)) for m in members), default=0.0),
        _novel(doc.names, profile.names, weigher),
        _top_missing(profile.names, doc.names, weigher),
        _core_missing(doc, profile, weigher),
        _year_conflict(doc.years, profile.years),
        math.log1p(profile.size),
        1.0 / (1.0 + len(doc.words) / 20.0),
    )


@dataclass(frozen=True)
class PairView:
    """One article weighed for member-pair comparisons (computed once per regroup)."""

    words: Mapping[str, float]
    lead: Mapping[str, float]
    names: Mapping[str, float]
    facts: Mapping[str, float]
    name_weights: Mapping[str, float]  # count x IDF of each name
    name_weight: float  # their sum
    top: tuple[str, ...]  # its two heaviest names
    years: frozenset[int]
    n_words: int
    local: Mapping[str, float]  # ``contrast.local_vectors`` over the scope compared (or empty)

    @classmethod
    def of(
        cls, doc: DocFeatures, weigher: Weigher, local: Mapping[str, float] | None = None
    ) -> PairView:
        weights = {t: c * weigher.idf("n:", t) for t, c in doc.names.items()}
        ranked = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls(
            weigher.unit("w:", doc.words),
            weigher.unit("w:", doc.lead),
            weigher.unit("n:", doc.names),
            weigher.unit("f:", doc.facts),
            weights,
            sum(weights.values()),
            tuple(t for t, _ in ranked[:2]),
            frozenset(doc.years),
            len(doc.words),
            local or {},
        )


def member_pair_features(a: PairView, b: PairView) -> tuple[float, ...]:
    """The similarities of two articles, in the order of ``PAIR_FEATURE_NAMES`` (symmetric)."""
    # Sums over shared keys only (set intersection in C): this runs for every pair of members.
    shared = a.name_weights.keys() & b.name_weights.keys()
    novel_a = 1.0 - sum(a.name_weights[t] for t in shared) / a.name_weight if a.name_weight else 0.0
    novel_b = 1.0 - sum(b.name_weights[t] for t in shared) / b.name_weight if b.name_weight else 0.0
    return (
        _dot_shared(a.words, b.words),
        _dot_shared(a.lead, b.lead),
        _dot_shared(a.names, b.names),
        _dot_shared(a.facts, b.facts),
        (novel_a + novel_b) / 2.0,
        (_top_share(a, b) + _top_share(b, a)) / 2.0,
        1.0 if a.years and b.years and a.years.isdisjoint(b.years) else 0.0,
        1.0 / (1.0 + min(a.n_words, b.n_words) / 20.0),
        _local_cosine(a, b),
    )


LOCAL_MIN_SHARED = 3  # terms two articles must share in their local vectors for ``cos_local``


def _local_cosine(a: PairView, b: PairView) -> float:
    """``cos_local``, counted only when the two share ``LOCAL_MIN_SHARED`` terms or more: a local
    vector holds only what its article shares with others in the scope, so an article that
    shares one rare word with another (and nothing else with anyone) would score near 1."""
    shared = a.local.keys() & b.local.keys()
    if len(shared) < LOCAL_MIN_SHARED:
        return 0.0
    return sum(a.local[t] * b.local[t] for t in shared)


def cosine_shared(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """``cosine`` summed over the shared keys only (faster for large, sparse vectors; the same
    value up to rounding)."""
    return sum(a[t] * b[t] for t in a.keys() & b.keys())


_dot_shared = cosine_shared


def _top_share(a: PairView, b: PairView) -> float:
    if not a.top:
        return 0.0
    return sum(1 for t in a.top if t not in b.name_weights) / len(a.top)


def _want(
    wanted: Mapping[str, set[str]],
    words: Iterable[str],
    lead: Iterable[str],
    names: Iterable[str],
    facts: Iterable[str],
) -> None:
    wanted["w:"].update(words, lead)
    wanted["n:"].update(names)
    wanted["f:"].update(facts)


def _novel(bag: Mapping[str, float], seen: Mapping[str, float], weigher: Weigher) -> float:
    total = novel = 0.0
    for term, count in bag.items():
        weight = count * weigher.idf("n:", term)
        total += weight
        if term not in seen:
            novel += weight
    return novel / total if total else 0.0


def _top_missing(
    bag: Mapping[str, float], other: Mapping[str, float], weigher: Weigher, k: int = 2
) -> float:
    """Of the ``k`` heaviest names of ``bag`` (weight x IDF), the share absent from ``other``."""
    weighed = [(count * weigher.idf("n:", term), term) for term, count in bag.items()]
    ranked = sorted((-w, term) for w, term in weighed if w > 0)  # 0: a topic's query word
    top = [term for _, term in ranked[:k]]
    return sum(1 for term in top if term not in other) / len(top) if top else 0.0


def _core_missing(doc: DocFeatures, profile: Profile, weigher: Weigher) -> float:
    """Names carried by at least half the members (IDF-weighted), share absent from ``doc``."""
    need = max(1, math.ceil(profile.size / 2))
    total = missing = 0.0
    for name, count in profile.name_members.items():
        if count < need:
            continue
        weight = weigher.idf("n:", name)
        total += weight
        if name not in doc.names:
            missing += weight
    return missing / total if total else 0.0


def _year_conflict(doc_years: Sequence[int], dev_years: Mapping[int, int]) -> float:
    if not doc_years or not dev_years:
        return 0.0
    return 0.0 if any(y in dev_years for y in doc_years) else 1.0


def _add_unit(target: dict[str, float], bag: Mapping[str, float]) -> None:
    vec = {t: 1.0 + math.log(x) for t, x in bag.items() if x > 0}
    norm = math.sqrt(sum(v * v for v in vec.values()))
    if norm:
        for t, v in vec.items():
            target[t] = target.get(t, 0.0) + v / norm


def _normalised(vec: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(v * v for v in vec.values()))
    return {t: v / norm for t, v in vec.items()} if norm else {}


def _dot(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(t, 0.0) for t, v in a.items())
