"""The writer's clustering memory (`monitor.store.dev_cache`): the same decisions as reading the
database every time, and never ahead of it (rollbacks, other connections' commits, merges)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.cluster import DevelopmentView, features
from monitor.records import Article, FeedEntry, FeedPoll, FetchResult, FetchStatus, TopicMatch
from monitor.schedule import FeedStatus
from monitor.store import FeedStateUpdate, Store
from monitor.store.dev_cache import ClusterCache
from monitor.store.developments import recent_developments

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecbplus-dev.jsonl"


@dataclass(frozen=True)
class Doc:
    """One article of a replayed stream: where it is listed and which topics match it."""

    key: str
    guid: str | None
    title: str
    text: str
    topics: tuple[str, ...]


def open_store(path: Path, cached: bool, windows: dict[str, timedelta] | None = None) -> Store:
    store = Store.open(path)
    store.cache_developments = cached
    store.development_windows = windows or {}
    store.sync_feeds([("A", "https://a.example/feed", "c"), ("B", "https://b.example/feed", "c")])
    return store


_FEATURES: dict[tuple[str, str], str] = {}


def as_article(doc: Doc) -> Article:
    feats = _FEATURES.get((doc.title, doc.text))
    if feats is None:  # computed once per text for both stores (they are what workers send)
        feats = _FEATURES[(doc.title, doc.text)] = features(doc.title, doc.text, "en").to_json()
    entry = FeedEntry(
        key=doc.key,
        url=doc.key,
        link=doc.key,
        guid=doc.guid,
        title=doc.title,
        summary="",
        author=None,
        published=None,
        updated=None,
        entry_hash=doc.key,
    )
    return Article(
        entry, doc.title, doc.text, "page", None, None, "Site", "en", doc.key, None, feats
    )


def update(now: datetime, broken: bool = False) -> FeedStateUpdate:
    # A broken update fails as the last write of the poll: everything before it is rolled back.
    next_fetch: Any = "not a time" if broken else now + timedelta(minutes=15)
    return FeedStateUpdate(FeedStatus.OK, now, next_fetch, 0, success=True)


def record(
    store: Store, feed: str, docs: Sequence[Doc], now: datetime, broken: bool = False
) -> None:
    articles = tuple(as_article(d) for d in docs)
    fetch = FetchResult(url="u", final_url="u", status=FetchStatus.OK)
    matches = {d.key: tuple(TopicMatch(t, ("x",), "") for t in d.topics) for d in docs}
    poll = FeedPoll(feed, fetch, None, new_articles=articles, matches=matches)
    store.record_poll(feed, poll, update(now, broken), now)


def dump(store: Store) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    devs = store.conn.execute(
        """SELECT id, topic, title, first_item_id, first_seen, last_seen, items, merged_into,
           merged_at FROM developments ORDER BY id"""
    ).fetchall()
    items = store.conn.execute(
        """SELECT item_id, topic, development_id, relation, duplicate_of, score, added_at
           FROM development_items ORDER BY item_id, topic"""
    ).fetchall()
    return [tuple(r) for r in devs], [tuple(r) for r in items]


Step = tuple[str, list[Doc], timedelta, bool]  # feed, articles, time since the last poll, fails


def replay(path: Path, cached: bool, steps: Sequence[Step], windows: dict[str, timedelta]) -> Store:
    store = open_store(path, cached, windows)
    now = START
    for feed, docs, gap, broken in steps:
        now += gap
        if broken:
            with pytest.raises(AttributeError):
                record(store, feed, docs, now, broken=True)
        else:
            record(store, feed, docs, now)
    return store


def both(
    tmp_path: Path, steps: Sequence[Step], windows: dict[str, timedelta] | None = None
) -> tuple[Store, Store]:
    """The same stream through a store that caches and one that reads the database every time."""
    cached = replay(tmp_path / "cached.db", True, steps, windows or {})
    plain = replay(tmp_path / "plain.db", False, steps, windows or {})
    assert plain.cluster_cache() is None
    return cached, plain


# ---------------------------------------------------------------------------- same decisions


def ecbplus_stream() -> Iterator[Step]:
    """ECB+ in a fixed shuffled order, two polls an hour, each article matched by its corpus topic
    and by one of three broad topics; a tenth come again later under another URL (duplicates),
    some with the same guid."""
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    rng = random.Random(7)
    rng.shuffle(rows)
    docs: list[Doc] = []
    for n, row in enumerate(rows):
        topics = (f"ecb{row['topic']}", f"broad{row['topic'] % 3}")
        docs.append(
            Doc(
                f"https://site{n % 5}.example/{row['id']}",
                row["id"],
                row["title"],
                row["text"],
                topics,
            )
        )
        if n % 10 == 9:  # an earlier article again, under another URL
            old = docs[rng.randrange(len(docs) - 1)]
            guid = old.guid if n % 20 == 19 else None
            docs.append(Doc(old.key + "/copy", guid, old.title, old.text, old.topics))
    for start in range(0, len(docs), 6):
        yield ("A" if start % 12 else "B"), docs[start : start + 6], timedelta(minutes=30), False


@pytest.mark.skipif(not DATA.exists(), reason="ECB+ data (../shared/data) not present")
def test_cached_store_decides_exactly_as_the_uncached_one_on_ecbplus(tmp_path: Path) -> None:
    steps = list(ecbplus_stream())[:30]  # 180 articles: the uncached store is the slow one
    # Short windows for the broad topics: developments close and the memory is pruned as it goes.
    windows = {f"broad{k}": timedelta(hours=2) for k in range(3)}
    cached, plain = both(tmp_path, steps, windows)
    devs, items = dump(cached)
    assert (devs, items) == dump(plain)
    # The stream exercised what the memory must get right...
    relations = {r[3] for r in items}
    assert relations == {"first", "report", "duplicate"}
    assert any(r[7] is not None for r in devs), "no merge happened"
    # Regrouping moved members (recorded the same way by both stores).
    moves = "SELECT * FROM development_moves ORDER BY id"
    assert cached.conn.execute(moves).fetchall() == plain.conn.execute(moves).fetchall()
    regroups = cached.conn.execute(
        "SELECT count(DISTINCT topic || moved_at) FROM development_moves"
    ).fetchone()[0]
    assert regroups > 0
    # ... and the decisions came from memory: a topic is read from the database after a merge or
    # a regroup only.
    cache = cached.cluster_cache()
    assert cache is not None
    merged_topics = sum(1 for r in devs if r[7] is not None)
    assert cache.loads <= len({r[1] for r in devs}) + merged_topics + regroups
    assert len(items) > 300
    # The views themselves, for windows reaching back less and less far, then further again.
    end = START + timedelta(minutes=30 * len(steps))
    for topic in sorted({r[1] for r in devs}):
        for back in (72, 10, 6, 3, 1, 0, 5, 100):
            since = end - timedelta(hours=back)
            assert shape(cache.views(cached.conn, topic, since)) == shape(
                recent_developments(cached.conn, topic, since)
            ), (topic, back)


def shape(views: Sequence[DevelopmentView]) -> list[tuple[Any, ...]]:
    return [
        (
            v.id,
            v.first_seen,
            v.last_seen,
            [(m.item_id, m.seen, m.guid, m.duplicate_of, m.features) for m in v.members],
        )
        for v in views
    ]


# ---------------------------------------------------------------------------- never ahead


TEXTS = {
    "quake": (
        "Strong earthquake shakes northern Chile",
        "A magnitude 6.1 earthquake struck northern Chile on Saturday near the city of Arica, "
        "the geological survey said. Buildings swayed in Arica and Iquique and power was cut in "
        "several districts. No casualties were reported by the emergency office.",
    ),
    "rehab": (
        "Actress checks into rehab clinic in Malibu",
        "The actress Lindsay Lohan checked into a rehabilitation clinic in Malibu on Thursday, "
        "her publicist said, asking for privacy. The court had ordered ninety days of treatment "
        "after a probation hearing in Los Angeles last month.",
    ),
    "vote": (
        "Parliament approves budget after long night session",
        "Members of parliament in Lisbon approved the 2014 budget early on Friday after a session "
        "that lasted through the night. The opposition walked out before the final vote, saying "
        "the austerity measures would deepen the recession in Portugal.",
    ),
}


def doc(key: str, text: str, *topics: str) -> Doc:
    title, body = TEXTS[text]
    return Doc(f"https://news.example/{key}", None, title, body, topics)


def test_a_failed_poll_leaves_nothing_in_memory(tmp_path: Path) -> None:
    steps: list[Step] = [
        ("A", [doc("q1", "quake", "T")], timedelta(0), False),
        # Clustered into a new development of T, then the poll fails: item 2 and development 2
        # never existed, and their ids are given again below.
        ("A", [doc("r1", "rehab", "T")], timedelta(minutes=5), True),
        # Item 2 is now an article no topic matched; development 2 opens in another topic.
        ("B", [doc("n1", "vote"), doc("v1", "vote", "U")], timedelta(minutes=5), False),
        # Remembering the failed poll would make this a duplicate of item 2 in development 2.
        ("B", [doc("r2", "rehab", "T")], timedelta(minutes=5), False),
    ]
    cached, plain = both(tmp_path, steps)
    assert dump(cached) == dump(plain)
    relation = cached.conn.execute(
        "SELECT relation FROM development_items di JOIN items i ON i.id = di.item_id "
        "WHERE i.key = 'https://news.example/r2'"
    ).fetchone()[0]
    assert relation == "first"


def test_other_connections_commits_are_seen(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    writer = open_store(path, True)
    record(writer, "A", [doc("q1", "quake", "T")], START)
    cache = writer.cluster_cache()
    assert cache is not None
    loads = cache.loads
    # Another process (`monitor rematch`, a second `monitor once`) stores the rehab story in T.
    other = Store.open(path)
    record(other, "B", [doc("r1", "rehab", "T")], START + timedelta(minutes=1))
    other.close()
    # The writer must see it: the same story again is a duplicate, not a new development.
    record(writer, "A", [doc("r2", "rehab", "T")], START + timedelta(minutes=2))
    rows = writer.conn.execute(
        "SELECT i.key, di.relation FROM development_items di JOIN items i ON i.id = di.item_id "
        "ORDER BY i.id"
    ).fetchall()
    assert [r[1] for r in rows] == ["first", "first", "duplicate"]
    assert cache.loads == loads + 1  # read again after the other commit, not before


def test_memory_is_bounded_and_stays_exact(tmp_path: Path) -> None:
    """With room for one topic and a few features, memory churns but decisions do not change."""
    steps: list[Step] = []
    for n in range(12):
        text = ("quake", "rehab", "vote")[n % 3]
        topics = ("T", "U") if n % 2 else ("U", "V")
        steps.append(
            ("A" if n % 2 else "B", [doc(f"d{n}", text, *topics)], timedelta(hours=1), False)
        )
    windows = {"T": timedelta(hours=3), "U": timedelta(days=1), "V": timedelta(hours=2)}
    cached = open_store(tmp_path / "small.db", True, windows)
    # Room for about one article's features among the members, and one more.
    cached._cluster_cache = ClusterCache(live_bytes=30_000, spare_bytes=30_000, max_terms=50)
    now = START
    for feed, docs, gap, _ in steps:
        now += gap
        record(cached, feed, docs, now)
    plain = replay(tmp_path / "plain.db", False, steps, windows)
    assert dump(cached) == dump(plain)
    cache = cached.cluster_cache()
    assert cache is not None and cache.loads > 3  # topics were evicted and read again
    held = cache.held()
    assert held["spare_bytes"] <= 30_000
    assert held["live_bytes"] <= 30_000 or held["topics"] == 1
    cache.clear()  # every reference counted is given back
    assert cache.held()["live_items"] == 0 and cache.held()["live_bytes"] == 0


def test_rematch_builds_the_same_developments(tmp_path: Path) -> None:
    """`rebuild_developments` (monitor rematch) replays stored items through the memory too."""
    texts = ("quake", "rehab", "vote", "quake", "rehab", "quake")
    steps: list[Step] = [
        ("A", [doc(f"s{n}", text, "T")], timedelta(hours=1), False) for n, text in enumerate(texts)
    ]
    stores = []
    for cached in (True, False):
        store = replay(tmp_path / f"{cached}.db", cached, steps, {})
        with store.transaction():  # a topic added later matches the same items
            store.conn.execute(
                "INSERT INTO matches (item_id, topic, terms, snippet, score, matched_at) "
                "SELECT id, 'later', '[]', '', 0, fetched FROM items"
            )
            store.rebuild_developments(["later"], START + timedelta(days=1))
        stores.append(store)
    assert dump(stores[0]) == dump(stores[1])
    later = [r for r in dump(stores[0])[1] if r[1] == "later"]
    assert [r[3] for r in later] == [
        "first",
        "first",
        "first",
        "duplicate",
        "duplicate",
        "duplicate",
    ]
