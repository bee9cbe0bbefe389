"""Developments in the database: load what the pure clusterer needs, write what it decided.

Called by the Store inside its poll transaction, so an article, its matches, its development and its
alerts land together. The decision itself is `monitor.cluster.decide` (pure); this module only reads
the topic's recent developments (members' stored features) and the corpus document frequencies, and
writes the resulting `Assignment`. With a `ClusterCache` (`monitor.store.dev_cache`, the writer's)
those reads come from memory; without one, from the database: the decisions are the same.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor.clock import parse_iso, utc_iso
from monitor.cluster import (
    Candidate,
    ClusterParams,
    DevelopmentView,
    DocFeatures,
    DocFreqs,
    Member,
    decide,
    find_merges,
)
from monitor.cluster.similarity import Weigher
from monitor.records import Assignment

if TYPE_CHECKING:
    from monitor.store.dev_cache import ClusterCache

N_DOCS_KEY = "corpus_n_docs"
_CHUNK = 500  # terms per IN (...) query


def read_n_docs(conn: sqlite3.Connection) -> int:
    """How many documents the stored document frequencies count."""
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (N_DOCS_KEY,)).fetchone()
    return int(row[0]) if row else 0


def read_dfs(conn: sqlite3.Connection, terms: Collection[str]) -> dict[str, int]:
    """Stored document frequencies of these terms (terms never counted are left out)."""
    found: dict[str, int] = {}
    wanted = list(terms)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for term, df in conn.execute(
            f"SELECT term, df FROM corpus_terms WHERE term IN ({marks})", chunk
        ):
            found[term] = int(df)
    return found


class StoredDocFreqs:
    """`monitor.cluster.DocFreqs` over the `corpus_terms` table (one bulk lookup per decision)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._n_docs = read_n_docs(conn)

    @property
    def n_docs(self) -> int:
        return self._n_docs

    def dfs(self, terms: Collection[str]) -> Mapping[str, int]:
        return _Defaulting(read_dfs(self.conn, terms))


class _Defaulting(dict[str, int]):
    def __missing__(self, key: str) -> int:
        return 0


class CachedDocFreqs:
    """`monitor.cluster.DocFreqs` through the writer's `ClusterCache` (same figures)."""

    def __init__(self, conn: sqlite3.Connection, cache: ClusterCache) -> None:
        self.conn = conn
        self.cache = cache
        self._n_docs = cache.n_docs(conn)

    @property
    def n_docs(self) -> int:
        return self._n_docs

    def dfs(self, terms: Collection[str]) -> Mapping[str, int]:
        return self.cache.dfs(self.conn, terms)


def add_to_corpus(
    conn: sqlite3.Connection,
    item_id: int,
    stored: str,
    cache: ClusterCache | None = None,
) -> DocFeatures:
    """Store an item's features (`stored`: their JSON) and count its terms into the document
    frequencies. Returns the features as reading the row back gives them, which is what the
    item is compared as, now and later."""
    feats = DocFeatures.from_json(stored)
    terms = feats.terms()
    conn.execute(
        "INSERT OR REPLACE INTO item_features (item_id, features) VALUES (?, ?)",
        (item_id, stored),
    )
    # One statement for the few hundred terms (json_each), not one each: half the cost.
    conn.execute(
        """INSERT INTO corpus_terms (term, df) SELECT value, 1 FROM json_each(?) WHERE true
           ON CONFLICT (term) DO UPDATE SET df = df + 1""",
        (json.dumps(list(terms), ensure_ascii=False),),
    )
    conn.execute(
        """INSERT INTO kv (key, value) VALUES (?, '1')
           ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1""",
        (N_DOCS_KEY,),
    )
    if cache is not None:
        cache.remember(item_id, feats, len(stored))
        cache.counted(terms)
    return feats


def load_features(
    conn: sqlite3.Connection, item_id: int, cache: ClusterCache | None = None
) -> DocFeatures | None:
    if cache is not None:
        return cache.features(conn, (item_id,)).get(item_id)
    row = conn.execute(
        "SELECT features FROM item_features WHERE item_id = ?", (item_id,)
    ).fetchone()
    return DocFeatures.from_json(row[0]) if row else None


def root_of(conn: sqlite3.Connection, development_id: int) -> int:
    """Follow merges to the development that now stands for this one."""
    seen = {development_id}
    while True:
        row = conn.execute(
            "SELECT merged_into FROM developments WHERE id = ?", (development_id,)
        ).fetchone()
        if not row or row[0] is None or row[0] in seen:
            return development_id
        development_id = int(row[0])
        seen.add(development_id)


def recent_members_sql(extra_columns: str = "") -> str:
    """Members of a topic's developments seen since a time: (topic, since) parameters; columns
    dev id, first_seen, last_seen, item id, added_at, guid, then `extra_columns` (from f, i)."""
    return f"""SELECT d.id, d.first_seen, d.last_seen, di.item_id, di.added_at, i.guid{extra_columns}
           FROM developments d
           JOIN development_items di ON di.development_id = d.id AND di.topic = d.topic
           JOIN item_features f ON f.item_id = di.item_id
           JOIN items i ON i.id = di.item_id
           WHERE d.topic = ? AND d.last_seen >= ?
           ORDER BY d.id, di.added_at, di.item_id"""


def recent_developments(
    conn: sqlite3.Connection, topic: str, since: datetime
) -> list[DevelopmentView]:
    """The topic's developments seen since `since`, merged ones folded into their target."""
    rows = conn.execute(recent_members_sql(", f.features"), (topic, utc_iso(since))).fetchall()
    grouped: dict[int, list[Member]] = {}
    spans: dict[int, tuple[datetime, datetime]] = {}
    for dev_id, first, last, item_id, added, guid, feats in rows:
        root = root_of(conn, int(dev_id))
        seen = parse_iso(added)
        assert seen is not None
        grouped.setdefault(root, []).append(
            Member(int(item_id), DocFeatures.from_json(feats), seen, guid)
        )
        lo, hi = parse_iso(first), parse_iso(last)
        assert lo is not None and hi is not None
        old = spans.get(root, (lo, hi))
        spans[root] = (min(old[0], lo), max(old[1], hi))
    return [
        DevelopmentView(dev_id, spans[dev_id][0], spans[dev_id][1], tuple(members))
        for dev_id, members in grouped.items()
    ]


@dataclass(frozen=True)
class ArticleForClustering:
    item_id: int
    title: str
    guid: str | None
    features: DocFeatures


def assign(
    conn: sqlite3.Connection,
    article: ArticleForClustering,
    topic: str,
    params: ClusterParams,
    now: datetime,
    cache: ClusterCache | None = None,
) -> Assignment:
    """Decide and record which development `article` joins within `topic`."""
    views, stats = _inputs(conn, topic, now - params.window, cache)
    candidate = Candidate(article.features, now, article.guid, article.item_id)
    decision = decide(candidate, views, stats, params)
    if decision.relation == "first" or decision.development_id is None:
        cursor = conn.execute(
            """INSERT INTO developments (topic, title, first_item_id, first_seen, last_seen)
               VALUES (?, ?, ?, ?, ?)""",
            (topic, article.title, article.item_id, utc_iso(now), utc_iso(now)),
        )
        development_id = int(cursor.lastrowid or 0)
        relation = "first"
    else:
        development_id = decision.development_id
        relation = decision.relation
        conn.execute(
            "UPDATE developments SET last_seen = ?, items = items + 1 WHERE id = ?",
            (utc_iso(now), development_id),
        )
    conn.execute(
        """INSERT OR REPLACE INTO development_items
           (item_id, topic, development_id, relation, duplicate_of, score, added_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (
            article.item_id,
            topic,
            development_id,
            relation,
            decision.duplicate_of,
            decision.score,
            utc_iso(now),
        ),
    )
    if cache is not None:
        _remember(conn, cache, article, topic, development_id, relation == "first", now)
    return Assignment(topic, relation, development_id, decision.duplicate_of, decision.score)


def _remember(
    conn: sqlite3.Connection,
    cache: ClusterCache,
    article: ArticleForClustering,
    topic: str,
    development_id: int,
    opened: bool,
    now: datetime,
) -> None:
    """Tell the cache what `assign` wrote, as reading it back would give it."""
    added = utc_iso(now)
    seen = parse_iso(added)
    stored = cache.features(conn, (article.item_id,)).get(article.item_id)
    if stored is None or added is None or seen is None:  # not a member when read back
        cache.forget_topic(topic)
        return
    member = Member(article.item_id, stored, seen, article.guid)
    cache.joined(topic, development_id, opened, member, added)


def _inputs(
    conn: sqlite3.Connection, topic: str, since: datetime, cache: ClusterCache | None
) -> tuple[list[DevelopmentView], DocFreqs]:
    """The topic's recent developments and the document frequencies, from memory if kept."""
    if cache is None:
        return recent_developments(conn, topic, since), StoredDocFreqs(conn)
    return cache.views(conn, topic, since), CachedDocFreqs(conn, cache)


def merge_developments(
    conn: sqlite3.Connection,
    topic: str,
    params: ClusterParams,
    now: datetime,
    touched: Collection[int] | None = None,
    cache: ClusterCache | None = None,
) -> list[tuple[int, int]]:
    """Record merges of the topic's recent developments found to be one event (not rewritten).

    With `touched`, only pairs involving those developments are compared: after a poll only the
    developments it opened or grew can have become mergeable, and all pairs would cost O(n²).
    """
    views, stats = _inputs(conn, topic, now - params.window, cache)
    if touched is None:
        pairs = find_merges(views, stats, params)
    else:
        pairs = []
        gone: set[int] = set()
        weigher = Weigher(stats)  # one for every pair: each profile is weighed once
        for changed in (v for v in views if v.id in touched):
            for other in views:
                if other.id == changed.id or other.id in gone or changed.id in gone:
                    continue
                found = find_merges([changed, other], stats, params, weigher)
                pairs.extend(found)
                gone.update(merged for _, merged in found)
    for keep, merged in pairs:
        conn.execute(
            "UPDATE developments SET merged_into = ?, merged_at = ? WHERE id = ? AND merged_into IS NULL",
            (keep, utc_iso(now), merged),
        )
    if pairs and cache is not None:
        cache.merged(topic)
    return list(pairs)


def params_for(window: timedelta) -> ClusterParams:
    return ClusterParams(window=window)


def unclustered_items(
    conn: sqlite3.Connection, topic: str
) -> Sequence[tuple[int, str, str | None]]:
    """Items matched by `topic` but in none of its developments, oldest first (for rematch)."""
    return conn.execute(
        """SELECT i.id, i.title, i.guid FROM matches m JOIN items i ON i.id = m.item_id
           WHERE m.topic = ? AND NOT EXISTS (
               SELECT 1 FROM development_items di WHERE di.item_id = i.id AND di.topic = ?)
           ORDER BY i.fetched, i.id""",
        (topic, topic),
    ).fetchall()


def item_rows(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, sqlite3.Row]:
    out: dict[int, sqlite3.Row] = {}
    for item_id in ids:
        row = conn.execute(
            "SELECT id, title, text, language, guid, fetched FROM items WHERE id = ?", (item_id,)
        ).fetchone()
        if row is not None:
            out[item_id] = row
    return out
