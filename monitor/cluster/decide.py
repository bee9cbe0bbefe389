"""Deciding, when an article arrives, whether it is a duplicate, a report or a new development.

Pure: everything comes in as arguments (the stored features of the recent developments' members
and the corpus document frequencies); no I/O and no clock.

Method, within one watch topic:
1. Duplicate: a member with the same guid, or whose body text nearly contains the article's or
   is nearly contained in it (sampled 4-word shingles, containment of the shorter body >=
   ``duplicate_containment``), is the same article under another URL.
2. Otherwise the article is compared with the candidate developments (last seen within
   ``window`` of the article). A cheap pass keeps the ``shortlist`` closest; for those, the
   similarities of ``FEATURE_NAMES`` (TF-IDF cosines of text, lead, names and numbers; names the
   development never had; prominent names the article lacks; conflicting years; sizes) go
   through a logistic model: the probability that the article reports the same event.
3. The most probable development takes the article as a "report" when that probability reaches
   ``join_threshold`` (``join_threshold_single`` for a development of one article), unless the
   article's title or lead announces a turn (cancelled, overturned, resigned) that none of the
   development's articles did; otherwise the article is the "first" of a new development.
The coefficients and thresholds are fitted on ECB+ by ``bench/developments.py --fit`` (logistic
regression on each article against the developments before it, thresholds tuned by replaying
the stream); the same script reports their cross-validated quality.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal

from monitor.cluster.features import DocFeatures
from monitor.cluster.similarity import (
    FEATURE_NAMES,
    Profile,
    Weigher,
    cosine,
    rough_closeness,
)
from monitor.cluster.similarity import pair_features as _pair_features
from monitor.cluster.stats import DocFreqs

Relation = Literal["first", "report", "duplicate"]

# Fitted by ``bench/developments.py --fit`` on all ECB+ topics (see its output and README).
DEFAULT_BIAS = 0.544
DEFAULT_COEFS = (  # in the order of FEATURE_NAMES
    0.667,  # cos_words
    0.696,  # cos_lead
    2.625,  # cos_names
    6.408,  # cos_facts
    2.475,  # max_member
    -2.359,  # names_novel
    -1.59,  # dev_top_missing
    -1.946,  # core_missing
    -1.389,  # year_conflict
    -1.312,  # log_size
    2.173,  # doc_short
)
assert len(DEFAULT_COEFS) == len(FEATURE_NAMES)


# Stems (English Snowball) of words that turn a story, by the kind of turn.
TURN_CUES = {
    "cancel": "cancel",
    "scrap": "cancel",
    "postpon": "cancel",
    "overturn": "reverse",
    "revers": "reverse",
    "repeal": "reverse",
    "revok": "reverse",
    "rescind": "reverse",
    "resign": "resign",
}


@dataclass(frozen=True)
class ClusterParams:
    window: timedelta = timedelta(days=3)
    join_threshold: float = 0.2  # probability of "same event" needed to join a development
    join_threshold_single: float = 0.4  # ... one that holds a single article so far
    duplicate_containment: float = 0.8
    min_guid_length: int = 8  # shorter guids ("123") collide across sites
    min_duplicate_shingles: int = 12  # shorter bodies ("Read more.") are not compared
    merge_threshold: float = 0.5  # mean probability for find_merges
    shortlist: int = 4  # developments given the full comparison
    detect_turns: bool = True  # see ``turns``
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
    score: float = 0.0  # probability for the best development, containment for duplicates


@dataclass(frozen=True)
class DevelopmentView:
    id: int
    first_seen: datetime
    last_seen: datetime
    members: tuple[Member, ...]

    @cached_property
    def profile(self) -> Profile:
        return Profile.of(m.features for m in self.members)

    @cached_property
    def sketch_union(self) -> frozenset[int]:
        """Every member's sketch hashes: an article sharing none duplicates no member."""
        return frozenset().union(*(m.features.sketch_sorted for m in self.members))

    def with_member(self, member: Member) -> DevelopmentView:
        """The development after ``member`` joined (its profile grown, not rebuilt)."""
        grown = replace(
            self,
            first_seen=min(self.first_seen, member.seen),
            last_seen=max(self.last_seen, member.seen),
            members=(*self.members, member),
        )
        profile = self.profile.copy()
        profile.add(member.features)
        grown.__dict__["profile"] = profile  # seeds the cached_property
        union = self.__dict__.get("sketch_union")
        if union is not None:
            grown.__dict__["sketch_union"] = union.union(member.features.sketch_sorted)
        return grown

    def merged_with(self, other: DevelopmentView) -> DevelopmentView:
        return DevelopmentView(
            self.id,
            min(self.first_seen, other.first_seen),
            max(self.last_seen, other.last_seen),
            self.members + other.members,
        )


def decide(
    doc: Candidate,
    developments: Sequence[DevelopmentView],
    stats: DocFreqs,
    params: ClusterParams | None = None,
) -> Decision:
    """Decide the relation of ``doc`` to the topic's recent developments."""
    params = params or ClusterParams()
    live = [d for d in developments if in_window(d, doc.seen, params.window)]
    duplicate = find_duplicate(doc, live, params)
    if duplicate is not None:
        return duplicate
    by_id = {d.id: d for d in live}
    scored = score_developments(doc.features, live, stats, params)
    for prob, dev_id in scored:
        dev = by_id[dev_id]
        if params.detect_turns and turns(doc.features, dev):
            continue
        need = params.join_threshold_single if len(dev.members) == 1 else params.join_threshold
        if prob >= need:
            return Decision("report", dev_id, None, round(prob, 6))
    return Decision("first", None, None, round(scored[0][0], 6) if scored else 0.0)


def turns(doc: DocFeatures, dev: DevelopmentView) -> bool:
    """Whether ``doc`` announces a turn (cancelled, overturned, resigned) ``dev`` never had.

    The story that turns is a new development even inside the window: "parade announced" and
    "parade cancelled" share every name. Cues are read in the title and lead only, where the news
    is, and only in English stems for now.
    """
    cues = turn_cues(doc.lead)
    return bool(cues) and not cues <= turn_cues(dev.profile.lead)


def turn_cues(lead: Iterable[str]) -> set[str]:
    return {TURN_CUES[t] for t in lead if t in TURN_CUES}


def in_window(dev: DevelopmentView, when: datetime, window: timedelta) -> bool:
    """Whether ``dev`` was active within ``window`` of ``when`` (either side)."""
    return dev.last_seen >= when - window and dev.first_seen <= when + window


def score_developments(
    doc: DocFeatures,
    developments: Sequence[DevelopmentView],
    stats: DocFreqs,
    params: ClusterParams,
) -> list[tuple[float, int]]:
    """(probability, development id) for the shortlisted developments, most probable first."""
    scored = [
        (probability(feats, params), dev.id)
        for dev, feats in candidate_features(doc, developments, stats, params.shortlist)
    ]
    return sorted(scored, key=lambda pair: (-pair[0], pair[1]))


def candidate_features(
    doc: DocFeatures,
    developments: Sequence[DevelopmentView],
    stats: DocFreqs,
    shortlist: int,
) -> list[tuple[DevelopmentView, tuple[float, ...]]]:
    """The ``shortlist`` developments closest to ``doc`` by a cheap measure, with features."""
    if not developments:
        return []
    weigher = Weigher(stats)
    weigher.prime(doc, ())
    words, names = weigher.unit("w:", doc.words), weigher.unit("n:", doc.names)
    closeness = {d.id: rough_closeness(words, names, d.profile) for d in developments}
    ranked = sorted(developments, key=lambda d: (-closeness[d.id], d.id))[:shortlist]
    weigher.prime(None, [d.profile for d in ranked])
    return [(dev, pair_features(doc, dev, weigher)) for dev in ranked]


def pair_features(doc: DocFeatures, dev: DevelopmentView, weigher: Weigher) -> tuple[float, ...]:
    return _pair_features(doc, dev.profile, [m.features for m in dev.members], weigher)


def probability(feats: Sequence[float], params: ClusterParams) -> float:
    z = params.bias + sum(w * x for w, x in zip(params.coefs, feats, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


# --- duplicates -------------------------------------------------------------------------------


def find_duplicate(
    doc: Candidate, developments: Iterable[DevelopmentView], params: ClusterParams
) -> Decision | None:
    """The member ``doc`` repeats (same guid, or near-identical body), if any."""
    guid = (doc.guid or "").strip()
    best: tuple[float, int, int] | None = None  # containment, -item id, development id
    # Members' sketches are read as sorted tuples (no set kept per member); a member sharing
    # no hash has containment 0, skipped by a set check that stops early.
    ra = doc.features.sketch_sorted
    sa, a_capped = frozenset(ra), doc.features.sketch_capped
    check_disjoint = params.duplicate_containment > 0.0
    for dev in sorted(developments, key=lambda d: d.id):
        # A larger development is first checked whole: sharing no hash, only guids can match.
        apart = (
            check_disjoint
            and len(dev.members) >= UNION_CHECK_MEMBERS
            and sa.isdisjoint(dev.sketch_union)
        )
        if apart and len(guid) < params.min_guid_length:
            continue
        for member in dev.members:
            if len(guid) >= params.min_guid_length and (member.guid or "").strip() == guid:
                return Decision("duplicate", dev.id, member.item_id, 1.0)
            if apart:
                continue
            if min(doc.features.n_shingles, member.features.n_shingles) < (
                params.min_duplicate_shingles
            ):
                continue
            rb = member.features.sketch_sorted
            if check_disjoint and sa.isdisjoint(rb):
                continue
            overlap = _containment(sa, ra, rb, a_capped or member.features.sketch_capped)
            if overlap < params.duplicate_containment:
                continue
            key = (overlap, -member.item_id, dev.id)
            if best is None or key > best:
                best = key
    if best is None:
        return None
    return Decision("duplicate", best[2], -best[1], round(best[0], 6))


UNION_CHECK_MEMBERS = 4  # developments this large are checked whole first (``sketch_union``)


def containment(a: DocFeatures, b: DocFeatures) -> float:
    """Share of the shorter body's shingles found in the other (estimated from samples)."""
    return _containment(
        a.sketch, a.sketch_sorted, b.sketch_sorted, a.sketch_capped or b.sketch_capped
    )


def _containment(
    sa: frozenset[int], ra: tuple[int, ...], rb: tuple[int, ...], capped: bool
) -> float:
    """``containment`` from one sketch as a set and ascending, the other ascending (``capped``:
    either sketch is)."""
    if not sa or not rb:
        return 0.0
    if ra == rb:  # copies: every hash shared, below any cap
        return 1.0
    common = sa.intersection(rb)
    if capped:
        # Capped sketches keep the smallest hashes: compare below the lower of the caps.
        # (Counted by bisection on cached sorted sketches: this runs for every member.)
        limit = min(ra[-1], rb[-1])
        smaller = min(bisect_right(ra, limit), bisect_right(rb, limit))
        # (when every shared hash is below the limit, as for copies, there is nothing to count)
        shared = len(common) if max(common, default=0) <= limit else sum(h <= limit for h in common)
    else:
        smaller, shared = min(len(sa), len(rb)), len(common)
    return shared / smaller if smaller else 0.0


# --- merges -----------------------------------------------------------------------------------


def find_merges(
    developments: Sequence[DevelopmentView],
    stats: DocFreqs,
    params: ClusterParams | None = None,
    weigher: Weigher | None = None,
) -> list[tuple[int, int]]:
    """Pairs (kept, merged) of developments found to report the same event after all.

    Each member of the smaller development is scored against the other as if it arrived now;
    when their mean probability reaches ``merge_threshold``, the younger development is merged
    into the older. Only developments active within the window of each other are compared, and
    only pairs whose centroids are close at all. Chains collapse onto the oldest development.
    ``weigher``: one made from ``stats`` already, shared by calls over the same statistics (its
    weights and vectors are computed once).
    """
    params = params or ClusterParams()
    devs = sorted(developments, key=lambda d: (d.first_seen, d.id))
    weigher = weigher or Weigher(stats)
    weigher.prime(None, [d.profile for d in devs])  # members' terms are in their profiles
    centroids = {d.id: weigher.centroid("w:", d.profile.words) for d in devs}
    absorbed: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for i, older in enumerate(devs):
        if older.id in absorbed:
            continue
        for younger in devs[i + 1 :]:
            if younger.id in absorbed or younger.first_seen - older.last_seen > params.window:
                continue
            if cosine(centroids[older.id], centroids[younger.id]) < MERGE_GATE:
                continue
            if params.detect_turns and turn_cues(older.profile.lead) != turn_cues(
                younger.profile.lead
            ):
                continue  # a story and its turn stay apart
            if _mean_probability(older, younger, weigher, params) >= params.merge_threshold:
                absorbed.add(younger.id)
                pairs.append((older.id, younger.id))
    return pairs


MERGE_GATE = 0.2  # centroid cosine below which two developments are not compared further


def _mean_probability(
    a: DevelopmentView, b: DevelopmentView, weigher: Weigher, params: ClusterParams
) -> float:
    small, large = (a, b) if len(a.members) <= len(b.members) else (b, a)
    total = sum(
        probability(pair_features(m.features, large, weigher), params) for m in small.members
    )
    return total / len(small.members)
