"""Deciding, when an article arrives, whether it is a duplicate, a report or a new development.

Pure: everything comes in as arguments (the stored features of recent developments' members
and the corpus document frequencies); no I/O and no clock.

Method, per watch topic:
1. Duplicate: a member with the same guid, or whose body text the article's body nearly
   contains (sampled 4-word shingles, containment of the shorter in the longer >=
   ``duplicate_containment``), is the same article under another URL.
2. Otherwise the article is compared with each candidate development (last seen within
   ``window`` of the article) through a handful of similarities (TF-IDF cosine of the whole text,
   of the title and lead, of proper names, of numbers and dates; how much of the article's lead
   the development has never mentioned; how many of the development's recurring names the article
   lacks; whether the years mentioned agree). A logistic model combines them into the
   probability that the article reports the same event; its coefficients were fitted, and the
   threshold tuned, on ECB+ by cross-validation (``bench/developments.py``).
3. The best development joins the article as a "report" when that probability reaches
   ``join_threshold``; otherwise the article is the "first" of a new development.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal

from monitor.cluster.features import DocFeatures
from monitor.cluster.stats import DocFreqs, idf_of

Relation = Literal["first", "report", "duplicate"]

FEATURE_NAMES = (
    "cos_words",  # whole text vs the development's centroid
    "cos_lead",  # title+lead vs the centroid of the members' titles+leads
    "cos_lead_full",  # title+lead vs the whole-text centroid
    "cos_names",  # proper names vs the names centroid
    "cos_facts",  # numbers, months, weekdays
    "lead_novelty",  # share of the lead's IDF mass the development never mentioned
    "core_missing",  # share of the development's recurring names the article lacks
    "year_agree",  # both mention years and share one
    "year_conflict",  # both mention years and share none
    "median_member",  # median whole-text cosine with the members (robust to a stray member)
    "lead_names_novel",  # share of the names in the article's lead the development never named
    "names_novel",  # the same for all the article's names (weighted by count)
    "log_size",  # log(1 + members)
    "novelty_x_size",  # lead_novelty * log_size: novelty means more against a big development
    "doc_short",  # 1 for a title-only article, towards 0 for long ones
    "facts_novel",  # share of the article's numbers and dates the development never had
    "lead_core_missing",  # share of the names most members lead with, absent from the article
    "lead_names_missing",  # how many names of the article's lead the development never named
    "doc_top_missing",  # the article's two most prominent names, share the development lacks
    "dev_top_missing",  # the development's two most prominent names, share the article lacks
    "month_conflict",  # both name months and share none
)

# Fitted by bench/developments.py (logistic regression on ECB+, see its --fit output).
DEFAULT_BIAS = -4.0
DEFAULT_COEFS = (
    6.0,
    2.0,
    2.0,
    3.0,
    1.0,
    -3.0,
    -2.0,
    0.5,
    -1.0,
    3.0,
    -2.0,
    -1.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
)


@dataclass(frozen=True)
class ClusterParams:
    window: timedelta = timedelta(days=3)
    join_threshold: float = 0.5  # probability of "same event" needed to join
    join_threshold_single: float = 0.5  # ... to join a development of one article
    duplicate_containment: float = 0.8
    min_guid_length: int = 8  # shorter guids ("123") collide across sites
    merge_threshold: float = 0.8  # average probability for find_merges
    shortlist: int = 4  # developments given the full comparison
    bias: float = DEFAULT_BIAS
    coefs: tuple[float, ...] = DEFAULT_COEFS


@dataclass(frozen=True)
class Member:
    item_id: int
    features: DocFeatures
    seen: datetime
    guid: str | None = None


@dataclass(frozen=True)
class Candidate:
    """The article being decided (its item may not have an id yet)."""

    features: DocFeatures
    seen: datetime
    guid: str | None = None
    item_id: int | None = None


@dataclass(frozen=True)
class Decision:
    relation: Relation
    development_id: int | None  # None for "first": the caller opens a development
    duplicate_of: int | None = None  # item id, for "duplicate"
    score: float = 0.0  # probability of the chosen development, or containment for duplicates


@dataclass
class Profile:
    """A development's members summed per channel (unit-length log-tf vectors), before IDF."""

    size: int = 0
    words: Counter[str] = field(default_factory=Counter)
    lead: Counter[str] = field(default_factory=Counter)
    names: Counter[str] = field(default_factory=Counter)
    facts: Counter[str] = field(default_factory=Counter)
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
            self.words.copy(),
            self.lead.copy(),
            self.names.copy(),
            self.facts.copy(),
            self.name_members.copy(),
            self.years.copy(),
        )


@dataclass(frozen=True)
class DevelopmentView:
    id: int
    first_seen: datetime
    last_seen: datetime
    members: tuple[Member, ...]

    @cached_property
    def profile(self) -> Profile:
        profile = Profile()
        for member in self.members:
            profile.add(member.features)
        return profile

    def with_member(self, member: Member) -> DevelopmentView:
        """The development after ``member`` joined (its profile carried over, not rebuilt)."""
        grown = replace(
            self,
            first_seen=min(self.first_seen, member.seen),
            last_seen=max(self.last_seen, member.seen),
            members=(*self.members, member),
        )
        profile = self.profile.copy()
        profile.add(member.features)
        grown.__dict__["profile"] = profile  # seed the cached_property
        return grown


def decide(
    doc: Candidate,
    developments: Sequence[DevelopmentView],
    stats: DocFreqs,
    params: ClusterParams | None = None,
) -> Decision:
    """Decide the relation of ``doc`` to the topic's recent developments."""
    params = params or ClusterParams()
    live = [d for d in developments if in_window(d, doc.seen, params.window)]
    dup = find_duplicate(doc, live, params)
    if dup is not None:
        return dup
    scored = score_developments(doc.features, live, stats, params)
    sizes = {d.id: len(d.members) for d in live}
    for prob, dev_id in scored:
        need = params.join_threshold_single if sizes[dev_id] == 1 else params.join_threshold
        if prob >= need:
            return Decision("report", dev_id, None, round(prob, 6))
    return Decision("first", None, None, round(scored[0][0], 6) if scored else 0.0)


def score_developments(
    doc: DocFeatures,
    developments: Sequence[DevelopmentView],
    stats: DocFreqs,
    params: ClusterParams,
) -> list[tuple[float, int]]:
    """(probability, development id) for the closest developments, best first.

    A cheap pass (mean similarity to the members, before length normalisation) keeps the
    ``shortlist`` closest developments; only those get the full comparison.
    """
    if not developments:
        return []
    weigher = Weigher(stats)
    shortlist = shortlist_for(doc, developments, weigher, params.shortlist)
    scored = [(probability(pair_features(doc, dev, weigher), params), dev.id) for dev in shortlist]
    return sorted(scored, key=lambda pair: (-pair[0], pair[1]))


def shortlist_for(
    doc: DocFeatures, developments: Sequence[DevelopmentView], weigher: Weigher, size: int
) -> list[DevelopmentView]:
    """The ``size`` developments closest to ``doc`` by a cheap measure; primes ``weigher``."""
    weigher.prime(doc, ())
    words = weigher.unit("w:", doc.words)
    names = weigher.unit("n:", doc.names)
    ranked = []
    for dev in developments:
        prof = dev.profile
        rough = (_dot(words, prof.words) + _dot(names, prof.names)) / max(prof.size, 1)
        ranked.append((-rough, dev.id, dev))
    ranked.sort(key=lambda r: (r[0], r[1]))
    chosen = [dev for _, _, dev in ranked[:size]]
    weigher.prime(None, [d.profile for d in chosen])
    return chosen


def in_window(dev: DevelopmentView, when: datetime, window: timedelta) -> bool:
    return dev.last_seen >= when - window and dev.first_seen <= when + window


def probability(feats: Sequence[float], params: ClusterParams) -> float:
    z = params.bias + sum(w * x for w, x in zip(params.coefs, feats, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


# --- duplicates -------------------------------------------------------------------------------


def find_duplicate(
    doc: Candidate, developments: Iterable[DevelopmentView], params: ClusterParams
) -> Decision | None:
    guid = (doc.guid or "").strip()
    best: tuple[float, int, int] | None = None  # containment, item id, development id
    for dev in sorted(developments, key=lambda d: d.id):
        for member in dev.members:
            if len(guid) >= params.min_guid_length and (member.guid or "").strip() == guid:
                return Decision("duplicate", dev.id, member.item_id, 1.0)
            overlap = containment(doc.features, member.features)
            if overlap >= params.duplicate_containment and (best is None or overlap > best[0]):
                best = (overlap, member.item_id, dev.id)
    if best is None:
        return None
    return Decision("duplicate", best[2], best[1], round(best[0], 6))


def containment(a: DocFeatures, b: DocFeatures) -> float:
    """Share of the shorter body's shingles found in the other (estimated from the samples)."""
    sa, sb = a.sketch, b.sketch
    if not sa or not sb:
        return 0.0
    if a.sketch_capped or b.sketch_capped:
        # Capped sketches keep the smallest hashes: compare below the lower of the caps.
        limit = min(max(sa), max(sb))
        sa = frozenset(h for h in sa if h <= limit)
        sb = frozenset(h for h in sb if h <= limit)
    small, large = (sa, sb) if len(sa) <= len(sb) else (sb, sa)
    if len(small) < 3 and min(a.n_shingles, b.n_shingles) > 3 * len(small):
        return 0.0  # too few shingles to say anything
    return len(small & large) / len(small)


# --- similarities ---------------------------------------------------------------------------


class Weigher:
    """IDF weights for one decision, fetched from the corpus statistics in bulk."""

    SPACES = ("w:", "n:", "f:")

    def __init__(self, stats: DocFreqs) -> None:
        self._stats = stats
        self._n = stats.n_docs
        self._default = idf_of(self._n, 0)
        self._idf: dict[str, dict[str, float]] = {space: {} for space in self.SPACES}

    def prime(self, doc: DocFeatures | None, profiles: Iterable[Profile]) -> None:
        """Look up, in one call, every term the coming comparisons will weigh."""
        wanted: dict[str, set[str]] = {space: set() for space in self.SPACES}
        if doc is not None:
            wanted["w:"].update(doc.words, doc.lead)
            wanted["n:"].update(doc.names, doc.lead_names)
            wanted["f:"].update(doc.facts)
        for p in profiles:
            wanted["w:"].update(p.words, p.lead)
            wanted["n:"].update(p.names)
            wanted["f:"].update(p.facts)
        missing = [
            space + term
            for space, terms in wanted.items()
            for term in terms
            if term not in self._idf[space]
        ]
        if not missing:
            return
        found = self._stats.dfs(missing)
        for key in missing:
            self._idf[key[:2]][key[2:]] = idf_of(self._n, found.get(key, 0))

    def idf(self, space: str, term: str) -> float:
        return self._idf[space].get(term, self._default)

    def unit(self, space: str, bag: Mapping[str, float]) -> dict[str, float]:
        """Log-tf x IDF, scaled to unit length."""
        idf, default = self._idf[space], self._default
        vec = {t: (1.0 + math.log(x)) * idf.get(t, default) for t, x in bag.items() if x > 0}
        return _normalised(vec)

    def centroid(self, space: str, summed: Mapping[str, float]) -> dict[str, float]:
        idf, default = self._idf[space], self._default
        vec = {t: x * idf.get(t, default) for t, x in summed.items() if x > 0}
        return _normalised(vec)


def pair_features(doc: DocFeatures, dev: DevelopmentView, weigher: Weigher) -> tuple[float, ...]:
    """The similarities of ``doc`` to ``dev`` named in ``FEATURE_NAMES``, in that order."""
    prof = dev.profile
    words = weigher.unit("w:", doc.words)
    lead = weigher.unit("w:", doc.lead)
    c_words = weigher.centroid("w:", prof.words)
    year_agree, year_conflict = _years(doc.years, prof.years)
    lead_novelty = _lead_novelty(doc, prof, weigher)
    log_size = math.log1p(prof.size)
    member_sims = [_dot(words, weigher.unit("w:", m.features.words)) for m in dev.members]
    return (
        _dot(words, c_words),
        _dot(lead, weigher.centroid("w:", prof.lead)),
        _dot(lead, c_words),
        _dot(weigher.unit("n:", doc.names), weigher.centroid("n:", prof.names)),
        _dot(weigher.unit("f:", doc.facts), weigher.centroid("f:", prof.facts)),
        lead_novelty,
        _core_missing(doc, prof, weigher),
        year_agree,
        year_conflict,
        statistics.median(member_sims),
        _novel(doc.lead_names, prof.names, weigher, "n:"),
        _novel(doc.names, prof.names, weigher, "n:"),
        log_size,
        lead_novelty * log_size,
        1.0 / (1.0 + len(doc.words) / 20.0),
        _novel(doc.facts, prof.facts, weigher, "f:"),
        _lead_core_missing(doc, dev, weigher),
        min(3.0, float(sum(1 for n in doc.lead_names if n not in prof.names))),
        _top_missing(doc.names, prof.names, weigher),
        _top_missing(prof.names, doc.names, weigher),
        _month_conflict(doc.facts, prof.facts),
    )


def _top_missing(
    bag: Mapping[str, float], other: Mapping[str, float], weigher: Weigher, k: int = 2
) -> float:
    ranked = sorted(bag.items(), key=lambda kv: (-kv[1] * weigher.idf("n:", kv[0]), kv[0]))
    top = [t for t, _ in ranked[:k]]
    return sum(1 for t in top if t not in other) / len(top) if top else 0.0


def _month_conflict(doc: Mapping[str, float], dev: Mapping[str, float]) -> float:
    a = {t for t in doc if t.startswith("month")}
    b = {t for t in dev if t.startswith("month")}
    return 1.0 if a and b and not (a & b) else 0.0


def _lead_core_missing(doc: DocFeatures, dev: DevelopmentView, weigher: Weigher) -> float:
    counts: Counter[str] = Counter()
    for member in dev.members:
        counts.update(member.features.lead_names.keys())
    need = max(1, math.ceil(len(dev.members) / 2))
    total = missing = 0.0
    for name, count in counts.items():
        if count < need:
            continue
        weight = weigher.idf("n:", name)
        total += weight
        if name not in doc.names:
            missing += weight
    return missing / total if total else 0.0


def _novel(
    bag: Mapping[str, float], seen: Mapping[str, float], weigher: Weigher, space: str
) -> float:
    """IDF-weighted share of ``bag`` (by count) absent from ``seen``."""
    total = novel = 0.0
    for term, count in bag.items():
        weight = count * weigher.idf(space, term)
        total += weight
        if term not in seen:
            novel += weight
    return novel / total if total else 0.0


def _lead_novelty(doc: DocFeatures, prof: Profile, weigher: Weigher) -> float:
    total = novel = 0.0
    for term in doc.lead:
        weight = weigher.idf("w:", term)
        total += weight
        if term not in prof.words:
            novel += weight
    return novel / total if total else 0.0


def _core_missing(doc: DocFeatures, prof: Profile, weigher: Weigher) -> float:
    """Names in at least half the members (all of them for one or two members)."""
    need = max(1, math.ceil(prof.size / 2))
    total = missing = 0.0
    for name, count in prof.name_members.items():
        if count < need:
            continue
        weight = weigher.idf("n:", name)
        total += weight
        if name not in doc.names:
            missing += weight
    return missing / total if total else 0.0


def _years(doc_years: Sequence[int], dev_years: Mapping[int, int]) -> tuple[float, float]:
    if not doc_years or not dev_years:
        return 0.0, 0.0
    shared = any(y in dev_years for y in doc_years)
    return (1.0, 0.0) if shared else (0.0, 1.0)


def _add_unit(target: Counter[str], bag: Mapping[str, float]) -> None:
    vec = {t: 1.0 + math.log(x) for t, x in bag.items() if x > 0}
    norm = math.sqrt(sum(v * v for v in vec.values()))
    if norm:
        for t, v in vec.items():
            target[t] += v / norm


def _normalised(vec: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(v * v for v in vec.values()))
    return {t: v / norm for t, v in vec.items()} if norm else {}


def _dot(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(t, 0.0) for t, v in a.items())


# --- merges -------------------------------------------------------------------------------------


def find_merges(
    developments: Sequence[DevelopmentView],
    stats: DocFreqs,
    params: ClusterParams | None = None,
) -> list[tuple[int, int]]:
    """Pairs (kept, merged) of developments found to report the same event after all.

    Every member of the smaller development is scored against the other (as if it arrived now);
    when the average probability reaches ``merge_threshold`` the younger development is merged
    into the older. Only developments whose activity overlaps within the window are compared.
    """
    params = params or ClusterParams()
    devs = sorted(developments, key=lambda d: (d.first_seen, d.id))
    merged: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for i, older in enumerate(devs):
        if older.id in merged:
            continue
        for younger in devs[i + 1 :]:
            if younger.id in merged or younger.first_seen - older.last_seen > params.window:
                continue
            if _same_event(older, younger, stats, params):
                pairs.append((older.id, younger.id))
                merged.add(younger.id)
    return pairs


def _same_event(
    a: DevelopmentView, b: DevelopmentView, stats: DocFreqs, params: ClusterParams
) -> bool:
    small, large = (a, b) if len(a.members) <= len(b.members) else (b, a)
    total = 0.0
    weigher = Weigher(stats)
    weigher.prime(None, [large.profile])
    for member in small.members:
        weigher.prime(member.features, ())
        total += probability(pair_features(member.features, large, weigher), params)
    return total / len(small.members) >= params.merge_threshold
