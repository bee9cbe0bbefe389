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
4. After each poll, ``find_merges`` records developments found to report one event, and
   ``regroup`` re-clusters the members of the developments the poll touched (and of those close
   to them) from pairwise probabilities of a second logistic model over pairs of articles
   (``member_pair_features``), by average linkage, then cuts a group in two when its halves each
   have a headline term of their own (``contrast``: two look-alike events the pair model joins);
   the store applies and records the moves.
The coefficients and thresholds are fitted on ECB+ by ``bench/developments.py --fit`` (logistic
regression on each article against the developments before it, and on pairs of articles;
thresholds tuned by replaying the stream); the same script reports their cross-validated quality.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal

from monitor.cluster.contrast import contrastive_split, local_vectors
from monitor.cluster.features import DocFeatures
from monitor.cluster.linkage import average_linkage, year_contrast
from monitor.cluster.similarity import (
    FEATURE_NAMES,
    PAIR_FEATURE_NAMES,
    PairView,
    Profile,
    Weigher,
    cosine,
    cosine_shared,
    member_pair_features,
    rough_closeness,
)
from monitor.cluster.similarity import pair_features as _pair_features
from monitor.cluster.stats import DocFreqs
from monitor.cluster.text import fold
from monitor.cluster.topicterms import NO_TOPIC_TERMS, TopicTerms

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

# The member-pair model of ``regroup`` (same fitting, on pairs of articles).
DEFAULT_PAIR_BIAS = -4.278
DEFAULT_PAIR_COEFS = (  # in the order of PAIR_FEATURE_NAMES
    -1.793,  # cos_words (negative beside cos_local: words shared by the whole scope link nothing)
    2.208,  # cos_lead
    5.145,  # cos_names
    5.97,  # cos_facts
    -0.281,  # names_novel
    -0.001,  # top_missing
    -1.138,  # year_conflict
    1.567,  # doc_short
    9.541,  # cos_local
)
assert len(DEFAULT_PAIR_COEFS) == len(PAIR_FEATURE_NAMES)
# The same model without ``cos_local`` (its coefficient 0), for scopes too small for an IDF of
# their own (``LOCAL_MIN_SCOPE``): fitted on pairs weighed by the corpus statistics alone.
DEFAULT_PLAIN_PAIR_BIAS = -3.814
DEFAULT_PLAIN_PAIR_COEFS = (  # in the order of PAIR_FEATURE_NAMES
    1.814,  # cos_words
    1.867,  # cos_lead
    6.711,  # cos_names
    6.528,  # cos_facts
    -0.83,  # names_novel
    0.145,  # top_missing
    -1.032,  # year_conflict
    1.107,  # doc_short
    0.0,  # cos_local
)
assert len(DEFAULT_PLAIN_PAIR_COEFS) == len(PAIR_FEATURE_NAMES)


# Stems (English and Russian Snowball) of words that turn a story, by the kind of turn. Words
# with an everyday second sense are left out ("перенёс": postponed, or went through an operation).
TURN_CUES = {
    "cancel": "cancel",
    "scrap": "cancel",
    "postpon": "cancel",
    # Talks, deals and plans that fall through ("talks collapse", "Russia suspends the deal").
    # Phrasal turns ("break down", "call off", "pull out") are not read: their particles are
    # stop words, and "break" alone heads every "Breaking:" title. "fail" is left out too: a
    # failed launch is itself the event, and ECB+ reports of one event differ in saying so.
    "collaps": "cancel",
    "stall": "cancel",
    "suspend": "cancel",
    "halt": "cancel",
    "abandon": "cancel",
    "withdraw": "cancel",
    "reject": "cancel",
    "terminat": "cancel",
    "overturn": "reverse",
    "revers": "reverse",
    "repeal": "reverse",
    "revok": "reverse",
    "rescind": "reverse",
    "resign": "resign",
    "отмен": "cancel",  # отменить, отменён, отменили
    "отм": "cancel",  # отмена
    "отлож": "cancel",  # отложить, отложен
    "сорва": "cancel",  # сорвались, сорвана (переговоры сорвались: talks fell through)
    "провал": "cancel",  # провалились
    "приостанов": "cancel",  # приостановил
    "приостановл": "cancel",  # приостановлен, приостановлены
    "аннулирова": "reverse",  # аннулировали, аннулирован
    "аннулирован": "reverse",  # аннулирование
    "упраздн": "reverse",  # упразднить
    "отставк": "resign",  # отставка, подал в отставку
}
# Korean is not stemmed: a word is its stem followed by particles or endings ("취소했다"), so
# these are prefixes, folded as the features fold words (NFKD: syllables become jamo). "연기"
# alone also means acting or smoke: only its verb forms count.
_TURN_PREFIXES_KO = {
    "취소": "cancel",
    "무산": "cancel",
    "결렬": "cancel",  # talks broke down
    "중단": "cancel",  # halted, suspended
    "연기했": "cancel",
    "연기됐": "cancel",
    "연기된": "cancel",
    "연기하기로": "cancel",
    "철회": "reverse",
    "번복": "reverse",
    "폐지": "reverse",
    "사임": "resign",
    "사퇴": "resign",
}
TURN_PREFIXES_KO = {fold(prefix): cue for prefix, cue in _TURN_PREFIXES_KO.items()}
_JAMO = ("\u1100", "\u11ff")  # a folded Korean word starts with a leading consonant jamo


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
    regroup: bool = True  # the store regroups after each poll (see ``regroup``)
    regroup_threshold: float = 0.35  # average pair probability below which groups stay apart
    regroup_members: int = 80  # members regrouped at once at most (cost grows with their square)
    regroup_gain: float = 0.1  # how much better (``_agreement``) a regrouping must fit
    regroup_min_split: int = 2  # members a group needs to be split off as a new development
    # The contrastive split of a regrouped group in two (``contrast``; tuned by the bench like
    # ``regroup_threshold``; above 1 it is off).
    split_threshold: float = 0.8  # contrast a group's two halves need to be split
    split_min_part: int = 4  # articles (units) each half needs
    # The name veto of ``regroup``'s average linkage: two groups of 4+ articles (units)
    # stay apart when each has a name of its own (``linkage.name_contrast``: the weaker group's
    # best share of its articles carrying a name minus the other group's share reaches this).
    # Look-alike events differ in who is involved (two players of one team arrested the same
    # weekend) while their pair probabilities join them; tuned by the bench after
    # ``split_threshold``; above 1 it is off.
    name_veto: float = 0.7
    # The year veto of the same linkage: two groups of 4+ articles stay apart when one has a
    # year the other's articles (almost) never mention (``linkage.year_contrast``: the best
    # share of one group's articles mentioning a year that at most 10 % of the other group's
    # mention reaches this). One-sided: reports of an old event often give no year at all
    # (the 2008 and 2013 Internet Explorer patches: "2013" in 82 % of the 2013 reports, no year
    # in most 2008 ones). Tuned by the bench after ``name_veto``; above 1 it is off.
    year_veto: float = 0.7
    pair_bias: float = DEFAULT_PAIR_BIAS
    pair_coefs: tuple[float, ...] = DEFAULT_PAIR_COEFS
    plain_pair_bias: float = DEFAULT_PLAIN_PAIR_BIAS  # below LOCAL_MIN_SCOPE articles
    plain_pair_coefs: tuple[float, ...] = DEFAULT_PLAIN_PAIR_COEFS
    # The topic's query words, weighed 0 in its comparisons (``TopicTerms``; none by default:
    # the ECB+ bench has one catch-all topic without a query).
    topic_terms: TopicTerms = NO_TOPIC_TERMS


@dataclass(frozen=True)
class Member:
    item_id: int
    features: DocFeatures
    seen: datetime
    guid: str | None = None
    duplicate_of: int | None = None  # the item this one repeats (it goes where that one goes)


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
    def cues(self) -> frozenset[str]:
        """The turns its members announce (``turns``)."""
        return frozenset().union(*(turn_cues(m.features.head) for m in self.members))

    @cached_property
    def sketch_union(self) -> frozenset[int]:
        """Every member's sketch hashes: an article sharing none duplicates no member."""
        return frozenset().union(*(m.features.sketch_sorted for m in self.members))

    @cached_property
    def sketch_groups(self) -> dict[tuple[tuple[int, ...], bool], tuple[int, ...]]:
        """Members' positions by (sketch ascending, capped): copies of one text (a story
        syndicated under several URLs) are compared with an article once, not once each."""
        groups: dict[tuple[tuple[int, ...], bool], tuple[int, ...]] = {}
        for pos, m in enumerate(self.members):
            key = (m.features.sketch_sorted, m.features.sketch_capped)
            groups[key] = (*groups.get(key, ()), pos)
        return groups

    @cached_property
    def first_by_guid(self) -> dict[str, int]:
        """Stripped guid -> item id of the first member (in order) that has it."""
        found: dict[str, int] = {}
        for m in self.members:
            guid = (m.guid or "").strip()
            if guid:
                found.setdefault(guid, m.item_id)
        return found

    def with_member(self, member: Member) -> DevelopmentView:
        """The development after ``member`` joined (its profile and indexes grown, not rebuilt)."""
        grown = replace(
            self,
            first_seen=min(self.first_seen, member.seen),
            last_seen=max(self.last_seen, member.seen),
            members=(*self.members, member),
        )
        profile = self.profile.copy()
        profile.add(member.features)
        grown.__dict__["profile"] = profile  # seeds the cached_property
        known = self.__dict__
        if "sketch_union" in known:
            grown.__dict__["sketch_union"] = self.sketch_union.union(member.features.sketch_sorted)
        if "sketch_groups" in known:  # copied: this view stays as it was
            groups = dict(self.sketch_groups)
            key = (member.features.sketch_sorted, member.features.sketch_capped)
            groups[key] = (*groups.get(key, ()), len(self.members))
            grown.__dict__["sketch_groups"] = groups
        if "first_by_guid" in known:
            guid = (member.guid or "").strip()
            firsts = self.first_by_guid
            if guid and guid not in firsts:
                firsts = {**firsts, guid: member.item_id}
            grown.__dict__["first_by_guid"] = firsts  # shared until it changes; never mutated
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
    "parade cancelled" share every name. Cues are read in the title and first sentence only,
    where the news is announced (``DocFeatures.head``): English and Russian stems, Korean word
    prefixes (``TURN_CUES``, ``TURN_PREFIXES_KO``). A development's cues are its members'.
    """
    cues = turn_cues(doc.head)
    return bool(cues) and not cues <= dev.cues


def turn_cues(head: Iterable[str]) -> frozenset[str]:
    found = set()
    for term in head:
        cue = TURN_CUES.get(term)
        if cue is None and term and _JAMO[0] <= term[0] <= _JAMO[1]:
            cue = next((c for p, c in TURN_PREFIXES_KO.items() if term.startswith(p)), None)
        if cue is not None:
            found.add(cue)
    return frozenset(found)


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
        for dev, feats in candidate_features(
            doc, developments, stats, params.shortlist, params.topic_terms
        )
    ]
    return sorted(scored, key=lambda pair: (-pair[0], pair[1]))


def candidate_features(
    doc: DocFeatures,
    developments: Sequence[DevelopmentView],
    stats: DocFreqs,
    shortlist: int,
    ignore: TopicTerms | None = None,
) -> list[tuple[DevelopmentView, tuple[float, ...]]]:
    """The ``shortlist`` developments closest to ``doc`` by a cheap measure, with features."""
    if not developments:
        return []
    weigher = Weigher(stats, ignore)
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
    """The member ``doc`` repeats (same guid, or near-identical body), if any.

    The first member (developments by id, members in order) with the same guid; otherwise the
    member of highest containment (then lowest item id, then highest development id) reaching
    ``duplicate_containment``. Members are compared by group of identical sketches
    (``DevelopmentView.sketch_groups``): the containment depends on the sketches only.
    """
    devs = sorted(developments, key=lambda d: d.id)
    guid = (doc.guid or "").strip()
    if len(guid) >= params.min_guid_length:
        for dev in devs:
            first = dev.first_by_guid.get(guid)
            if first is not None:
                return Decision("duplicate", dev.id, first, 1.0)
    best: tuple[float, int, int] | None = None  # containment, -item id, development id
    # A member sharing no hash has containment 0, skipped by a set check that stops early.
    ra = doc.features.sketch_sorted
    sa, a_capped = frozenset(ra), doc.features.sketch_capped
    n_doc = doc.features.n_shingles
    check_disjoint = params.duplicate_containment > 0.0
    for dev in devs:
        # A larger development is first checked whole.
        if (
            check_disjoint
            and len(dev.members) >= UNION_CHECK_MEMBERS
            and sa.isdisjoint(dev.sketch_union)
        ):
            continue
        members = dev.members
        for (rb, b_capped), positions in dev.sketch_groups.items():
            if check_disjoint and sa.isdisjoint(rb):
                continue
            overlap: float | None = None
            for pos in positions:
                member = members[pos]
                if min(n_doc, member.features.n_shingles) < params.min_duplicate_shingles:
                    continue
                if overlap is None:
                    overlap = _containment(sa, ra, rb, a_capped or b_capped)
                if overlap < params.duplicate_containment:
                    break  # the same for every member of the group
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
    apart: Collection[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """Pairs (kept, merged) of developments found to report the same event after all.

    Each member of the smaller development is scored against the other as if it arrived now;
    when their mean probability reaches ``merge_threshold``, the younger development is merged
    into the older. Only developments active within the window of each other are compared, and
    only pairs whose centroids are close at all. Chains collapse onto the oldest development.
    ``weigher``: one made from ``stats`` already, shared by calls over the same statistics (its
    weights and vectors are computed once). ``apart``: pairs of development ids never merged
    (a development and the one ``regroup`` split it off: merged back, the next regroup would
    split it again and alert it again).
    """
    params = params or ClusterParams()
    kept_apart = {frozenset(pair) for pair in apart}
    devs = sorted(developments, key=lambda d: (d.first_seen, d.id))
    weigher = weigher or Weigher(stats, params.topic_terms)
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
            if kept_apart and frozenset((older.id, younger.id)) in kept_apart:
                continue
            if cosine(centroids[older.id], centroids[younger.id]) < MERGE_GATE:
                continue
            if params.detect_turns and older.cues != younger.cues:
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


# --- regrouping -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """A member that ``regroup`` moves to another development.

    ``to_development`` None: a development split off; moves sharing ``group`` go to the same new
    one. ``score``: the member's mean pair probability with the rest of its new group.
    """

    item_id: int
    from_development: int
    to_development: int | None
    group: int
    score: float


def regroup(
    developments: Sequence[DevelopmentView],
    stats: DocFreqs,
    params: ClusterParams | None = None,
    focus: Collection[int] | None = None,
) -> list[Move]:
    """Members to move so that a topic's recent developments match an average-linkage regrouping.

    Decisions are made one article at a time against what came before; a first article that joined
    the look-alike event takes its later reports with it. Here every pair of members is scored by
    the member-pair model (``member_pair_features``; with ``LOCAL_MIN_SCOPE``+ members its
    ``cos_local`` weighs terms also by an IDF over them, ``contrast.local_vectors``: what two
    share and the others lack), and groups are joined, most probable first,
    while their average pair probability reaches ``regroup_threshold`` (agglomerative clustering
    with average linkage, from single articles; duplicates stay with what they repeat; a story and
    its turn stay apart; two groups of ``NAME_VETO_MIN``+ articles each with a name of its own
    stay apart: ``name_veto``, and so do two such groups when one has a year the other never
    mentions: ``year_veto``). A group whose contrastive bisection (``contrast.contrastive_split``:
    local IDF, each half a headline term the other lacks) reaches ``split_threshold`` becomes its
    two halves, even when the regrouping itself is not applied (below ``regroup_gain``). Each
    group then keeps the development holding most of its members; groups left without one are
    split off as new developments.

    ``focus``: the developments that changed (a poll opened or grew them); only they and the
    developments close to them (centroid cosine >= ``MERGE_GATE``) are regrouped, at most
    ``regroup_members`` members (the focus first, then the closest), whole developments only.
    """
    params = params or ClusterParams()
    if not params.regroup:
        return []
    weigher = Weigher(stats, params.topic_terms)
    scope = _regroup_scope(developments, weigher, params, focus)
    members = [(m, d.id) for d in scope for m in d.members]
    if len(members) < 2:
        return []
    # Units: an article with the duplicates of it in scope (they are compared as one, weighted).
    by_id = {m.item_id: m for m, _ in members}
    unit_of: dict[int, int] = {}
    for m, _ in members:
        root, seen = m.item_id, {m.item_id}
        while (up := by_id[root].duplicate_of) is not None and up in by_id and up not in seen:
            root = up
            seen.add(root)
        unit_of[m.item_id] = root
    reps = sorted({unit_of[m.item_id] for m, _ in members})
    weight = {r: 0 for r in reps}
    for m, _ in members:
        weight[unit_of[m.item_id]] += 1
    feats = {m.item_id: m.features for m, _ in members}
    weigher.prime_docs(feats[r] for r in reps)
    model = _pair_model(params, len(reps))
    local = local_vectors([feats[r] for r in reps], weigher) if model.scoped else [None] * len(reps)
    views = {r: PairView.of(feats[r], weigher, v) for r, v in zip(reps, local, strict=True)}
    cues = {r: turn_cues(feats[r].head) if params.detect_turns else frozenset() for r in reps}
    # Sums of pair probabilities between groups (absent: nothing worth counting).
    sums: dict[int, dict[int, float]] = {r: {} for r in reps}
    for i, a in enumerate(reps):
        for b in reps[i + 1 :]:
            if cues[a] != cues[b]:
                continue
            p = model.probability(member_pair_features(views[a], views[b]))
            if p >= PAIR_FLOOR:
                s = p * weight[a] * weight[b]
                sums[a][b] = s
                sums[b][a] = s
    pair_sums = {a: dict(row) for a, row in sums.items()}  # average_linkage consumes ``sums``
    groups = average_linkage(
        reps,
        weight,
        sums,
        params.regroup_threshold,
        names={r: feats[r].names.keys() for r in reps},
        name_veto=params.name_veto,
        veto_min=NAME_VETO_MIN,
        years={r: feats[r].years for r in reps},
        year_veto=params.year_veto,
    )
    # Hysteresis: the regrouping must beat the developments as they are by a margin, or members
    # would flip back and forth between two nearly equal groupings poll after poll.
    dev_of = {m.item_id: dev_id for m, dev_id in members}
    now_key = {r: dev_of[r] for r in reps}
    new_key = {r: n for n, g in enumerate(groups) for r in g}
    # Pairs across two groups the year veto kept apart count for neither grouping: otherwise the
    # development holding both look-alike events is credited with the very pairs the veto refused.
    vetoed = _year_vetoed(groups, feats, pair_sums, weight, params)
    kept = _grouped(reps, now_key)
    chosen: list[list[int]] = []
    # Each part of the topic regroups on its own gain: a story's regrouping is neither carried
    # nor blocked by an unrelated story's polled in the same batch.
    for part in _independent_parts(reps, now_key, new_key):
        gain = _agreement(
            part, weight, pair_sums, new_key, params.regroup_threshold, vetoed
        ) - _agreement(part, weight, pair_sums, now_key, params.regroup_threshold, vetoed)
        if gain >= params.regroup_gain:
            chosen.extend(_grouped(part, new_key))
        else:
            # The developments as they are stay; a development holding both groups the year
            # veto kept apart is still cut between them (and a contrastive split may cut one).
            chosen.extend(_split_vetoed(_grouped(part, now_key), vetoed))
    groups = _split_contrasting(sorted(chosen, key=lambda g: g[0]), feats, weigher, params)
    if groups == kept:
        return []
    return _moves(members, unit_of, groups, views, model, params, scope)


def _grouped(reps: Sequence[int], key: dict[int, int]) -> list[list[int]]:
    """Reps gathered by ``key`` (each group ascending), groups by their first rep."""
    out: dict[int, list[int]] = {}
    for r in sorted(reps):
        out.setdefault(key[r], []).append(r)
    return sorted(out.values(), key=lambda g: g[0])


def _independent_parts(
    reps: Sequence[int], now_key: dict[int, int], new_key: dict[int, int]
) -> list[list[int]]:
    """The smallest sets of reps that both groupings keep whole (connected through a shared
    development or a shared new group): regrouping one part leaves the others as they are."""
    parent = {r: r for r in reps}

    def root(r: int) -> int:
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    for key in (now_key, new_key):
        first: dict[int, int] = {}
        for r in reps:
            other = first.setdefault(key[r], r)
            parent[root(r)] = root(other)
    return _grouped(reps, {r: root(r) for r in reps})


def _split_contrasting(
    groups: list[list[int]],
    feats: dict[int, DocFeatures],
    weigher: Weigher,
    params: ClusterParams,
) -> list[list[int]]:
    """Each group whose contrastive bisection (``contrast.contrastive_split``) reaches
    ``split_threshold`` becomes its two parts."""
    if params.split_threshold > 1.0:
        return groups
    out: list[list[int]] = []
    for group in groups:
        found = contrastive_split([feats[r] for r in group], weigher, params.split_min_part)
        if found is None or found[2] < params.split_threshold:
            out.append(group)
            continue
        a, b, _ = found
        out.extend(([group[i] for i in a], [group[i] for i in b]))
    return sorted(out, key=lambda g: g[0])


NAME_VETO_MIN = 4  # articles (units) each group needs for the name and year vetoes (as halves)
PAIR_FLOOR = 0.01  # pair probabilities below this count as 0 (kept sparse)


# Articles (units) a regroup's scope needs for its own IDF (``cos_local``). Over a handful of
# articles almost every shared term is "shared by some, not all", so an article's vector holds
# only what it shares and two unrelated reports look alike; the plain model is used instead.
LOCAL_MIN_SCOPE = 12


@dataclass(frozen=True)
class PairModel:
    """The member-pair model a regroup uses: with ``cos_local`` (``scoped``) or without."""

    bias: float
    coefs: tuple[float, ...]
    scoped: bool

    def probability(self, feats: Sequence[float]) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.coefs, feats, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def _pair_model(params: ClusterParams, units: int) -> PairModel:
    if units >= LOCAL_MIN_SCOPE:
        return PairModel(params.pair_bias, params.pair_coefs, True)
    return PairModel(params.plain_pair_bias, params.plain_pair_coefs, False)


def _regroup_scope(
    developments: Sequence[DevelopmentView],
    weigher: Weigher,
    params: ClusterParams,
    focus: Collection[int] | None,
) -> list[DevelopmentView]:
    devs = sorted(developments, key=lambda d: (d.first_seen, d.id))
    if focus is None:
        chosen = devs
    else:
        core = [d for d in devs if d.id in focus]
        if not core:
            return []
        weigher.prime(None, [d.profile for d in devs])
        centroids = {d.id: weigher.centroid("w:", d.profile.words) for d in devs}
        near = []
        for d in devs:
            if d.id in focus:
                continue
            best = max(cosine_shared(centroids[d.id], centroids[c.id]) for c in core)
            if best >= MERGE_GATE:
                near.append((-best, d.id, d))
        chosen = sorted(core, key=lambda d: (d.last_seen, d.id), reverse=True)
        total = sum(len(d.members) for d in core)
        for _, _, d in sorted(near, key=lambda t: (t[0], t[1])):
            if total + len(d.members) > params.regroup_members:
                continue
            chosen.append(d)
            total += len(d.members)
    # Never more than the cap: the focus itself is cut to its most recently grown developments,
    # and a development larger than the cap alone is not regrouped (its members all stay).
    out: list[DevelopmentView] = []
    total = 0
    for d in chosen:
        if total + len(d.members) > params.regroup_members:
            continue
        out.append(d)
        total += len(d.members)
    return sorted(out, key=lambda d: (d.first_seen, d.id))


def _agreement(
    reps: Sequence[int],
    weight: dict[int, int],
    sums: dict[int, dict[int, float]],
    key: dict[int, int],
    threshold: float,
    skip: dict[int, int] | None = None,
) -> float:
    """How well a grouping fits the pair probabilities: over pairs grouped together, the sum of
    (probability - threshold) (what average linkage at that threshold increases). ``skip``:
    rep -> a side (1 or 2) of a pair of groups whose cross pairs are left out."""
    sides = skip or {}
    total = 0.0
    for i, a in enumerate(reps):
        row = sums[a]
        side = sides.get(a)
        for b in reps[i + 1 :]:
            if key[a] == key[b]:
                if side is not None and sides.get(b, side) != side:
                    continue
                total += row.get(b, 0.0) - threshold * weight[a] * weight[b]
    return total


def _split_vetoed(groups: list[list[int]], vetoed: dict[int, int]) -> list[list[int]]:
    """Each group holding ``NAME_VETO_MIN``+ reps of both sides of the year-vetoed pair loses
    the reps of its smaller side (a new group)."""
    if not vetoed:
        return groups
    out: list[list[int]] = []
    for group in groups:
        one = [r for r in group if vetoed.get(r) == 1]
        two = [r for r in group if vetoed.get(r) == 2]
        if min(len(one), len(two)) < NAME_VETO_MIN:
            out.append(group)
            continue
        leaving = set(one if len(one) < len(two) else two)
        out.extend(([r for r in group if r not in leaving], sorted(leaving)))
    return sorted(out, key=lambda g: g[0])


def _year_vetoed(
    groups: list[list[int]],
    feats: dict[int, DocFeatures],
    sums: dict[int, dict[int, float]],
    weight: dict[int, int],
    params: ClusterParams,
) -> dict[int, int]:
    """The reps of the pair of groups the year veto kept apart whose cross pairs count most
    (average pair probability >= ``regroup_threshold``), as rep -> side 1 or 2; empty if none."""
    if params.year_veto > 1.0:
        return {}
    big = [g for g in groups if len(g) >= NAME_VETO_MIN]
    years = [Counter(y for r in g for y in set(feats[r].years)) for g in big]
    best: tuple[float, int, int] | None = None
    for i, ga in enumerate(big):
        for j in range(i + 1, len(big)):
            gb = big[j]
            if year_contrast(years[i], len(ga), years[j], len(gb)) < params.year_veto:
                continue
            total = sum(sums[a].get(b, 0.0) for a in ga for b in gb)
            mean = total / (sum(weight[a] for a in ga) * sum(weight[b] for b in gb))
            if mean >= params.regroup_threshold and (best is None or total > best[0]):
                best = (total, i, j)
    if best is None:
        return {}
    return {r: 1 for r in big[best[1]]} | {r: 2 for r in big[best[2]]}


def _moves(
    members: Sequence[tuple[Member, int]],
    unit_of: dict[int, int],
    groups: list[list[int]],
    views: dict[int, PairView],
    model: PairModel,
    params: ClusterParams,
    scope: Sequence[DevelopmentView],
) -> list[Move]:
    """Give each group the development holding most of its members (older first on ties)."""
    group_of = {r: n for n, g in enumerate(groups) for r in g}
    order = {d.id: i for i, d in enumerate(scope)}
    overlap: dict[tuple[int, int], int] = {}
    for m, dev_id in members:
        key = (group_of[unit_of[m.item_id]], dev_id)
        overlap[key] = overlap.get(key, 0) + 1
    target: dict[int, int] = {}
    taken: set[int] = set()
    for (group, dev_id), _ in sorted(
        overlap.items(), key=lambda kv: (-kv[1], order[kv[0][1]], kv[0][0])
    ):
        if group in target or dev_id in taken:
            continue
        target[group] = dev_id
        taken.add(dev_id)
    sizes: dict[int, int] = {}
    for m, _ in members:
        group = group_of[unit_of[m.item_id]]
        sizes[group] = sizes.get(group, 0) + 1
    moves: list[Move] = []
    for m, dev_id in members:
        group = group_of[unit_of[m.item_id]]
        to = target.get(group)
        if to == dev_id or (to is None and sizes[group] < params.regroup_min_split):
            continue
        rep = unit_of[m.item_id]
        others = [r for r in groups[group] if r != rep]
        score = (
            sum(model.probability(member_pair_features(views[rep], views[r])) for r in others)
            / len(others)
            if others
            else 1.0
        )
        moves.append(Move(m.item_id, dev_id, to, group, round(score, 6)))
    return moves
