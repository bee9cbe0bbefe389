"""The clustering shortcuts taken for ingest speed decide exactly as the plain computations:
near-duplicates found through sorted sketches and whole-development checks, compact decoded
features, the token fast paths, and the matcher's index values handed to the store."""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cluster import Candidate, ClusterParams, DevelopmentView, DocFeatures, Member, features
from monitor.cluster.decide import UNION_CHECK_MEMBERS, Decision, containment, find_duplicate
from monitor.cluster.features import MAX_SHINGLES
from monitor.cluster.text import fold, is_number, stem, stemmer_for
from monitor.match.archive import index_values
from monitor.match.percolate import MatchDoc, Matcher, TopicSpec

START = datetime(2026, 3, 1, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecbplus-dev.jsonl"


def scan_duplicate(
    doc: Candidate, developments: Sequence[DevelopmentView], params: ClusterParams
) -> Decision | None:
    """find_duplicate as it was: every member compared with `containment`, no shortcut."""
    guid = (doc.guid or "").strip()
    best: tuple[float, int, int] | None = None
    for dev in sorted(developments, key=lambda d: d.id):
        for member in dev.members:
            if len(guid) >= params.min_guid_length and (member.guid or "").strip() == guid:
                return Decision("duplicate", dev.id, member.item_id, 1.0)
            if min(doc.features.n_shingles, member.features.n_shingles) < (
                params.min_duplicate_shingles
            ):
                continue
            overlap = containment(doc.features, member.features)
            if overlap < params.duplicate_containment:
                continue
            key = (overlap, -member.item_id, dev.id)
            if best is None or key > best:
                best = key
    if best is None:
        return None
    return Decision("duplicate", best[2], -best[1], round(best[0], 6))


def shingled(hashes: Sequence[int]) -> DocFeatures:
    kept = tuple(sorted(set(hashes)))[:MAX_SHINGLES]
    return DocFeatures(shingles=kept, n_shingles=len(kept) * 4)


def view(dev_id: int, feats: Sequence[DocFeatures], first_item: int) -> DevelopmentView:
    members = tuple(
        Member(
            first_item + i, f, START + timedelta(minutes=i), f"https://x.example/{first_item + i}"
        )
        for i, f in enumerate(feats)
    )
    return DevelopmentView(dev_id, START, START + timedelta(hours=1), members)


def test_sorted_sketch_is_the_shingles_tuple_and_no_set_is_kept() -> None:
    feats = shingled([h * 4 for h in range(50)])
    assert feats.sketch_sorted is feats.shingles
    assert "sketch" not in feats.__dict__
    mixed = DocFeatures(shingles=(1, 2, 3, 4, 8), n_shingles=20)  # too few sampled: all kept
    assert mixed.sketch_sorted == tuple(sorted(mixed.sketch))


def test_capped_sketches_give_the_same_containment_both_ways() -> None:
    rng = random.Random(7)
    pool = [rng.randrange(0, 2**32) // 4 * 4 for _ in range(3000)]
    long_a, long_b, short = shingled(pool[:1200]), shingled(pool[300:1500]), shingled(pool[:90])
    assert long_a.sketch_capped and not short.sketch_capped
    copy = shingled(pool[:1200])
    pairs = ((long_a, long_b), (long_b, long_a), (short, long_a), (long_a, short), (copy, long_a))
    for a, b in pairs:
        shared = a.sketch & b.sketch
        ra, rb = sorted(a.sketch), sorted(b.sketch)
        limit = min(ra[-1], rb[-1])
        smaller = min(sum(h <= limit for h in ra), sum(h <= limit for h in rb))
        assert containment(a, b) == sum(h <= limit for h in shared) / smaller
    assert containment(copy, long_a) == 1.0 and containment(shingled([]), long_a) == 0.0


def test_whole_development_check_still_lets_guids_match() -> None:
    base = [h * 4 for h in range(100)]
    other = [h * 4 for h in range(5000, 5100)]
    dev = view(3, [shingled(base)] * UNION_CHECK_MEMBERS, 1)
    doc = Candidate(shingled(other), START, guid="https://x.example/2")
    assert find_duplicate(doc, [dev], ClusterParams()) == Decision("duplicate", 3, 2, 1.0)
    stranger = Candidate(shingled(other), START, guid="https://x.example/none")
    assert find_duplicate(stranger, [dev], ClusterParams()) is None


def test_grown_developments_keep_their_union_current() -> None:
    base = [h * 4 for h in range(300)]
    feats = [shingled(base[i * 40 : i * 40 + 60]) for i in range(6)]
    dev = view(1, feats[:4], 10)
    assert dev.sketch_union == frozenset(h for f in feats[:4] for h in f.shingles)
    grown = dev.with_member(Member(99, feats[5], START + timedelta(hours=2)))
    assert grown.sketch_union == frozenset(h for f in (*feats[:4], feats[5]) for h in f.shingles)
    doc = Candidate(feats[5], START + timedelta(hours=3))
    params = ClusterParams()
    assert find_duplicate(doc, [dev], params) == scan_duplicate(doc, [dev], params) is None
    assert find_duplicate(doc, [grown], params) == scan_duplicate(doc, [grown], params)
    assert find_duplicate(doc, [grown], params) is not None


@pytest.mark.skipif(not DATA.exists(), reason="ECB+ data not available")
def test_real_articles_find_the_same_duplicates_as_comparing_every_member() -> None:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()[:160]]
    texts = [(r["title"], r["text"]) for r in rows]
    docs = [features(t, x, "en") for t, x in texts]
    # Developments of real articles, small and large, some holding copies (as syndication does).
    groups = [
        docs[i : i + size] for i, size in zip(range(0, 120, 8), [1, 2, 8, 5, 8] * 3, strict=True)
    ]
    groups[2] = groups[2] + groups[2][:3]
    devs = [view(n + 1, g, 100 * n) for n, g in enumerate(groups) if g]
    rng = random.Random(3)
    params = ClusterParams()
    outcomes = set()
    for k in rng.sample(range(len(texts)), 70):
        title, text = texts[k]
        cut = text.split("\n", 1)[-1] if rng.random() < 0.5 else text
        doc = Candidate(features(title, cut, "en"), START)
        expected = scan_duplicate(doc, devs, params)
        assert find_duplicate(doc, devs, params) == expected
        outcomes.add(expected is None)
    assert outcomes == {True, False}  # both outcomes were exercised


def test_decoded_features_share_terms_and_weights_and_equal_the_originals() -> None:
    feats = features(
        "Quake hits Chile",
        "A strong earthquake hit central Chile on Saturday. Chile is calm.",
        "en",
    )
    one, two = DocFeatures.from_json(feats.to_json()), DocFeatures.from_json(feats.to_json())
    assert one == feats == two
    for a, b in zip(sorted(one.words), sorted(two.words), strict=True):
        assert a is b  # interned: the writer keeps one copy of each term
    assert one.words["chile"] is two.words["chile"]  # whole counts are shared objects
    odd = DocFeatures(words={"x": 1.5, "y": 0.0, "z": 3.0})
    assert DocFeatures.from_json(odd.to_json()).words == {"x": 1.5, "y": 0.0, "z": 3.0}


def _fold_plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@pytest.mark.parametrize(
    "word", ["Chile", "STRASSE", "Straße", "İstanbul", "Ünïcödé", "O'Brien", "6.1", "x²", "３", ""]
)
def test_token_fast_paths_agree_with_the_plain_definitions(word: str) -> None:
    assert fold(word) == _fold_plain(word)
    assert is_number(word.lower()) == any(ch.isdigit() for ch in word.lower())
    for language in ("en", "de", None, "xx"):
        low = fold(word)
        if any("\u0400" <= ch <= "\u04ff" for ch in low):
            continue
        if not low.isascii() and not any("a" <= ch <= "z" for ch in low):
            assert stem(low, language) == low
        else:
            assert stem(low, language) == stemmer_for(language).stemWord(low)


def test_matcher_hands_over_what_the_history_index_would_compute() -> None:
    docs = [
        MatchDoc("a", "Électricité: EV sales rise", "Electric cars sold 1,200 units in Москва."),
        MatchDoc("b", "Nothing here", "Quiet day."),
    ]
    with Matcher([TopicSpec("ev", "electric")]) as matcher:
        matches, indexed = matcher.match_indexed(docs)
        assert matches == matcher.match(docs)
    assert [m.topic for m in matches["a"]] == ["ev"] and matches["b"] == ()
    assert indexed == {d.key: index_values(d.title, d.text) for d in docs}


def _random_members(rng: random.Random, n: int) -> list[Member]:
    """Members with many copies (identical sketches, some with other lengths), near copies,
    capped and short sketches, and guids that repeat, some with spaces around them."""
    bases = [[rng.randrange(0, 2**20) * 4 for _ in range(rng.choice((6, 40, 120, 600)))]]
    bases += [[h * 4 for h in range(k * 50, k * 50 + 130)] for k in range(4)]
    members = []
    for i in range(n):
        base = rng.choice(bases)
        kind = rng.random()
        if kind < 0.5:  # a copy
            hashes = list(base)
        elif kind < 0.8:  # a near copy: most of it, and a little more
            hashes = [h for h in base if rng.random() < 0.9] + [rng.randrange(0, 2**20) * 4]
        else:
            hashes = [rng.randrange(0, 2**20) * 4 for _ in range(rng.randrange(1, 500))]
        kept = tuple(sorted(set(hashes)))[:MAX_SHINGLES]
        n_shingles = rng.choice((len(kept) * 4, len(kept) * 4 + 3, 5))  # 5: too short to compare
        guid = rng.choice((None, "", f"urn:story:{rng.randrange(6):04d}", " urn:story:0001 "))
        feats = DocFeatures(shingles=kept, n_shingles=n_shingles)
        members.append(Member(1000 + i, feats, START + timedelta(minutes=i), guid))
    return members


def test_sketch_groups_and_guid_index_give_the_plain_scans_duplicate() -> None:
    rng = random.Random(11)
    for trial in range(40):
        members = _random_members(rng, rng.randrange(1, 30))
        cut = sorted(rng.sample(range(1, len(members) + 1), min(3, len(members))))
        spans = [members[a:b] for a, b in zip([0, *cut], cut, strict=False) if members[a:b]]
        fresh = [view(n + 1, [m.features for m in span], 0) for n, span in enumerate(spans)]
        fresh = [
            DevelopmentView(v.id, v.first_seen, v.last_seen, tuple(span))
            for v, span in zip(fresh, spans, strict=True)
        ]
        # The same developments grown member by member from their first, indexes built early.
        grown = []
        for span in spans:
            dev = DevelopmentView(len(grown) + 1, START, START, (span[0],))
            for m in span[1:]:
                if rng.random() < 0.7:
                    _ = dev.sketch_groups, dev.first_by_guid, dev.sketch_union
                dev = dev.with_member(m)
            grown.append(dev)
        for a, b in zip(grown, fresh, strict=True):
            assert a.members == b.members
            assert a.sketch_groups == b.sketch_groups and a.first_by_guid == b.first_by_guid
        for params in (ClusterParams(), ClusterParams(duplicate_containment=0.0)):
            for other in _random_members(rng, 8) + rng.sample(members, min(4, len(members))):
                doc = Candidate(other.features, START, other.guid)
                expected = scan_duplicate(doc, fresh, params)
                assert find_duplicate(doc, fresh, params) == expected, trial
                assert find_duplicate(doc, grown, params) == expected, trial


def test_growing_a_view_leaves_its_indexes_as_they_were() -> None:
    feats = [shingled([h * 4 for h in range(k, k + 60)]) for k in range(0, 300, 60)]
    base = view(1, feats[:2], 10)
    groups, guids = dict(base.sketch_groups), dict(base.first_by_guid)
    one = base.with_member(Member(20, feats[0], START, "https://x.example/new"))
    two = base.with_member(Member(21, feats[3], START, "https://x.example/10"))
    assert base.sketch_groups == groups and base.first_by_guid == guids
    assert one.sketch_groups[(feats[0].shingles, False)] == (0, 2)
    assert two.sketch_groups[(feats[3].shingles, False)] == (2,)
    assert one.first_by_guid["https://x.example/new"] == 20
    assert two.first_by_guid["https://x.example/10"] == 10  # the first member keeps it
