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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor.clock import parse_iso, utc_iso
from monitor.cluster import (
    Candidate,
    ClusterParams,
    Decision,
    DevelopmentView,
    DocFeatures,
    DocFreqs,
    Member,
    decide,
    find_merges,
    regroup,
)
from monitor.cluster.similarity import Weigher
from monitor.records import Assignment
from monitor.sqlin import in_chunks

if TYPE_CHECKING:
    from monitor.store.dev_cache import ClusterCache

N_DOCS_KEY = "corpus_n_docs"


def read_n_docs(conn: sqlite3.Connection) -> int:
    """How many documents the stored document frequencies count."""
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (N_DOCS_KEY,)).fetchone()
    return int(row[0]) if row else 0


def read_dfs(conn: sqlite3.Connection, terms: Collection[str]) -> dict[str, int]:
    """Stored document frequencies of these terms (terms never counted are left out)."""
    found: dict[str, int] = {}
    for chunk, marks in in_chunks(list(terms)):
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
    dev id, first_seen, last_seen, item id, added_at, guid, duplicate_of, then `extra_columns`
    (from f, i)."""
    return f"""SELECT d.id, d.first_seen, d.last_seen, di.item_id, di.added_at, i.guid,
                  di.duplicate_of{extra_columns}
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
    for dev_id, first, last, item_id, added, guid, dup, feats in rows:
        root = root_of(conn, int(dev_id))
        seen = parse_iso(added)
        assert seen is not None
        member = Member(
            int(item_id),
            DocFeatures.from_json(feats),
            seen,
            guid,
            None if dup is None else int(dup),
        )
        grouped.setdefault(root, []).append(member)
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
        _remember(conn, cache, article, topic, development_id, relation == "first", now, decision)
    return Assignment(topic, relation, development_id, decision.duplicate_of, decision.score)


def _remember(
    conn: sqlite3.Connection,
    cache: ClusterCache,
    article: ArticleForClustering,
    topic: str,
    development_id: int,
    opened: bool,
    now: datetime,
    decision: Decision,
) -> None:
    """Tell the cache what `assign` wrote, as reading it back would give it."""
    added = utc_iso(now)
    seen = parse_iso(added)
    stored = cache.features(conn, (article.item_id,)).get(article.item_id)
    if stored is None or added is None or seen is None:  # not a member when read back
        cache.forget_topic(topic)
        return
    member = Member(article.item_id, stored, seen, article.guid, decision.duplicate_of)
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
    apart = split_pairs(conn, topic, now - params.window, {v.id for v in views})
    if touched is None:
        pairs = find_merges(views, stats, params, apart=apart)
    else:
        pairs = []
        gone: set[int] = set()
        weigher = Weigher(
            stats, params.topic_terms
        )  # one for every pair: each profile is weighed once
        for changed in (v for v in views if v.id in touched):
            for other in views:
                if other.id == changed.id or other.id in gone or changed.id in gone:
                    continue
                found = find_merges([changed, other], stats, params, weigher, apart)
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


def split_pairs(
    conn: sqlite3.Connection, topic: str, since: datetime, among: Collection[int]
) -> list[tuple[int, int]]:
    """(development, the development regrouping split it off), both as they stand now (merges
    followed), for the developments ``among`` seen since ``since``: merges keep these apart."""
    pairs = []
    for dev_id, origin in conn.execute(
        """SELECT id, split_from FROM developments
           WHERE topic = ? AND last_seen >= ? AND split_from IS NOT NULL""",
        (topic, utc_iso(since)),
    ):
        a, b = root_of(conn, int(dev_id)), root_of(conn, int(origin))
        if a != b and a in among and b in among:
            pairs.append((a, b))
    return pairs


@dataclass(frozen=True)
class SplitOff:
    """A development `regroup_developments` opened for members split off another."""

    development_id: int
    first_item_id: int
    split_from: int


@dataclass(frozen=True)
class Regrouped:
    """What `regroup_developments` changed: each moved item's development and relation now."""

    moved: dict[int, tuple[int, str]]  # item id -> (development id, relation)
    split_offs: list[SplitOff]
    affected: list[int]  # developments that gained or lost members, or were opened


def regroup_developments(
    conn: sqlite3.Connection,
    topic: str,
    params: ClusterParams,
    now: datetime,
    touched: Collection[int],
    cache: ClusterCache | None = None,
) -> Regrouped:
    """Apply `monitor.cluster.regroup` to the developments a poll touched, and record it.

    Every changed `development_items` row (its development or its relation) gets a row in
    `development_moves`. A group split off becomes a new development (`split_from` says which)
    whose earliest item is its `first`; a development that lost its earliest item gets the next
    one as `first` (and its title); one left empty is recorded as merged into the development
    that took most of its items. Call inside the poll's transaction.
    """
    views, stats = _inputs(conn, topic, now - params.window, cache)
    moves = regroup(views, stats, params, focus=touched)
    if not moves:
        return Regrouped({}, [], [])
    ids = sorted({m.item_id for m in moves})
    marks = ",".join("?" * len(ids))
    rows = {
        int(r[0]): (int(r[1]), str(r[2]), r[3])
        for r in conn.execute(
            f"""SELECT item_id, development_id, relation, added_at FROM development_items
                WHERE topic = ? AND item_id IN ({marks})""",
            [topic, *ids],
        )
    }
    # Split-off groups first: each becomes a development, its earliest member `first`.
    targets: dict[int, int] = {}
    split_offs: list[SplitOff] = []
    for group in sorted({m.group for m in moves if m.to_development is None}):
        members = sorted(
            (rows[m.item_id][2], m.item_id, m.from_development)
            for m in moves
            if m.to_development is None and m.group == group and m.item_id in rows
        )
        if not members:
            continue
        first_added, first_item, origin = members[0]
        title_row = conn.execute("SELECT title FROM items WHERE id = ?", (first_item,)).fetchone()
        cursor = conn.execute(
            """INSERT INTO developments
               (topic, title, first_item_id, first_seen, last_seen, items, split_from)
               VALUES (?, ?, ?, ?, ?, 0, ?)""",
            (
                topic,
                title_row[0] if title_row else "",
                first_item,
                first_added,
                members[-1][0],
                origin,
            ),
        )
        targets[group] = int(cursor.lastrowid or 0)
        split_offs.append(SplitOff(targets[group], first_item, origin))
    before: dict[int, tuple[int, str]] = {}
    affected: set[int] = set()
    for move in moves:
        if move.item_id not in rows:
            continue
        old_dev, old_relation, _ = rows[move.item_id]
        to = move.to_development if move.to_development is not None else targets[move.group]
        relation = "duplicate" if old_relation == "duplicate" else "report"
        before[move.item_id] = (old_dev, old_relation)
        conn.execute(
            """UPDATE development_items SET development_id = ?, relation = ?
               WHERE item_id = ? AND topic = ?""",
            (to, relation, move.item_id, topic),
        )
        affected.update((old_dev, root_of(conn, old_dev), to))
    scores = {m.item_id: m.score for m in moves}
    now_text = utc_iso(now) or ""
    relabelled: dict[int, tuple[int, str]] = {}  # items that stayed but changed relation
    for dev_id in sorted(affected):
        for item_id, old_relation in _settle(conn, topic, dev_id, before, now_text).items():
            if item_id not in before:
                relabelled[item_id] = (dev_id, old_relation)
    before.update(relabelled)
    moved: dict[int, tuple[int, str]] = {}
    for item_id in before:
        new_dev, new_relation = conn.execute(
            "SELECT development_id, relation FROM development_items WHERE item_id = ? AND topic = ?",
            (item_id, topic),
        ).fetchone()
        moved[item_id] = (int(new_dev), str(new_relation))
    conn.executemany(
        """INSERT INTO development_moves
           (topic, item_id, from_development, to_development, old_relation, new_relation, score,
            moved_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            (
                topic,
                item_id,
                before[item_id][0],
                dev_id,
                before[item_id][1],
                relation,
                scores.get(item_id, 0.0),
                now_text,
            )
            for item_id, (dev_id, relation) in sorted(moved.items())
        ],
    )
    if cache is not None:
        cache.merged(topic)  # re-read on next use, as for merges
    return Regrouped(moved, split_offs, sorted(affected))


def _settle(
    conn: sqlite3.Connection,
    topic: str,
    dev_id: int,
    before: Mapping[int, tuple[int, str]],
    now_text: str,
) -> dict[int, str]:
    """Bring a development's row in line with its members after moves: span, count, `first`.

    Returns the items whose relation it changed, with their relation before."""
    members = conn.execute(
        """SELECT item_id, relation, added_at FROM development_items
           WHERE development_id = ? AND topic = ? ORDER BY added_at, item_id""",
        (dev_id, topic),
    ).fetchall()
    if not members:
        # Emptied: recorded as merged into where most of its items went (nothing deleted). One
        # that others were merged into still stands for their items: it stays.
        gone = [item for item, (old, _) in before.items() if old == dev_id]
        holds = conn.execute(
            "SELECT 1 FROM developments WHERE merged_into = ? LIMIT 1", (dev_id,)
        ).fetchone()
        if not gone or holds is not None:
            return {}
        marks = ",".join("?" * len(gone))
        row = conn.execute(
            f"""SELECT development_id, count(*) AS n FROM development_items
                WHERE topic = ? AND item_id IN ({marks})
                GROUP BY development_id ORDER BY n DESC, development_id LIMIT 1""",
            [topic, *gone],
        ).fetchone()
        conn.execute(
            """UPDATE developments SET merged_into = ?, merged_at = ?, items = 0
               WHERE id = ? AND merged_into IS NULL""",
            (int(row[0]), now_text, dev_id),
        )
        return {}
    lead = next((m for m in members if m[1] != "duplicate"), members[0])
    changed: dict[int, str] = {}
    for item_id, relation, _ in members:
        wanted = "first" if item_id == lead[0] else relation
        if relation == "first" and item_id != lead[0]:
            wanted = "report"
        if wanted != relation:
            conn.execute(
                "UPDATE development_items SET relation = ? WHERE item_id = ? AND topic = ?",
                (wanted, item_id, topic),
            )
            changed[int(item_id)] = str(relation)
    current = conn.execute(
        "SELECT first_item_id FROM developments WHERE id = ?", (dev_id,)
    ).fetchone()
    if current is not None and current[0] != lead[0]:
        title = conn.execute("SELECT title FROM items WHERE id = ?", (lead[0],)).fetchone()
        conn.execute(
            "UPDATE developments SET first_item_id = ?, title = ? WHERE id = ?",
            (lead[0], title[0] if title else "", dev_id),
        )
    conn.execute(
        """UPDATE developments SET first_seen = ?, last_seen = ?, items = ? WHERE id = ?""",
        (members[0][2], members[-1][2], len(members), dev_id),
    )
    return changed


def params_for(window: timedelta, base: ClusterParams | None = None) -> ClusterParams:
    return replace(base or ClusterParams(), window=window)


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
