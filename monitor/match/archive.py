"""The history index: a contentless FTS5 table over the normalised text of every stored item.

``items_fts(title, body)`` with rowid = ``items.id``, ``content=''``: it holds the index only;
titles, text and snippets are read from ``items``. Deleting from it (SQLite < 3.43) needs the
values it indexed, which are recomputed from ``items``: so an item leaves the index BEFORE its
row's title or text change (``delete_items``) and is indexed again after (``index_stored``).
Queries are compiled exactly as for live matching (same normaliser, same FTS5 query), so a
topic means the same thing in search, ``topics test`` and ``rematch`` as when articles arrive;
a change to the normaliser needs ``reindex(rebuild=True)``. Functions here never commit: the
caller owns the transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from monitor.match.highlight import Field, highlight
from monitor.match.normalise import FTS5_TOKENIZE, normalise_text
from monitor.match.percolate import (
    TITLE_WEIGHT,
    TopicSpec,
    compile_topic,
    normalise_language,
    normalise_languages,
)
from monitor.match.query import CompiledQuery, compile_query
from monitor.records import TopicMatch
from monitor.sqlin import IN_LIMIT, in_chunks

FTS_TABLE = "items_fts"
_BM25 = f"bm25({FTS_TABLE}, {TITLE_WEIGHT}, 1.0)"
# SQLite 3.43 added contentless_delete=1: a contentless table whose rows can be deleted by rowid.
CONTENTLESS_DELETE_SINCE = (3, 43, 0)
_INSERT = f"INSERT INTO {FTS_TABLE}(rowid, title, body) VALUES (?, ?, ?)"
_DELETE_COMMAND = (
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, body) VALUES ('delete', ?, ?, ?)"
)


@dataclass(frozen=True)
class SearchHit:
    item_id: int
    title: str  # original title
    title_highlighted: str  # title with hits wrapped in **...**
    snippet: str  # original text around the hits, hits wrapped in **...**
    terms: tuple[str, ...]  # query terms that hit, as written
    score: float | None  # -bm25: higher is more relevant; None in newest-first order
    url: str | None
    published: datetime | None
    fetched: datetime | None
    language: str | None
    outlet: str | None = None  # the page's declared site name, else the feed's name, else host


@dataclass(frozen=True)
class RematchResult:
    topic: str
    matched: int  # items the topic matches now
    added: int  # of which were not recorded before
    removed: int  # stale rows deleted (only with prune=True)
    kept: int = 0  # recorded matches the topic no longer makes, kept as history (prune=False)


@dataclass(frozen=True)
class TopicCounts:
    day: int
    week: int
    total: int


def index_ddl(version: tuple[int, ...]) -> str:
    """The history index for this SQLite: contentless (the text lives in ``items`` only).

    On SQLite >= 3.43 rows can then be deleted by rowid (``contentless_delete=1``); before that
    a delete must repeat the indexed values (``delete_items`` does either). A table made with
    ``contentless_delete=1`` cannot be opened by an older SQLite.
    """
    options = "content=''"
    if version >= CONTENTLESS_DELETE_SINCE:
        options += ", contentless_delete=1"
    return (
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
        f'title, body, {options}, tokenize="{FTS5_TOKENIZE}")'
    )


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the history index if missing (items and matches belong to the store)."""
    conn.execute(index_ddl(library_version(conn)))


def library_version(conn: sqlite3.Connection) -> tuple[int, ...]:
    """The SQLite library this connection runs on (not necessarily the stdlib module's)."""
    version = str(conn.execute("SELECT sqlite_version()").fetchone()[0])
    return tuple(int(part) for part in version.split("."))


def _index_sql(conn: sqlite3.Connection, table: str = FTS_TABLE) -> str | None:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    return str(row[0]) if row else None


def _compact(sql: str) -> str:
    return "".join(sql.split()).lower()


def is_contentless(conn: sqlite3.Connection) -> bool:
    sql = _index_sql(conn)
    return sql is not None and "content=''" in _compact(sql)


def _deletes_by_rowid(conn: sqlite3.Connection) -> bool:
    sql = _index_sql(conn)
    return sql is not None and "contentless_delete=1" in _compact(sql)


def index_values(title: str | None, text: str | None) -> tuple[str, str]:
    """What the index holds for an item: its normalised title and text."""
    return normalise_text(title or ""), normalise_text(text or "")


def index_item(
    conn: sqlite3.Connection,
    item_id: int,
    title: str | None,
    text: str | None,
    values: tuple[str, str] | None = None,
) -> None:
    """Add one item to the history index, replacing its entry if it has one.

    Replacing removes the entry made from the values ``items`` holds now, so change the
    ``items`` row after this call, or call ``delete_items`` before changing it. Languages are
    not indexed: the language filter reads ``items.language``. ``values``: what
    ``index_values(title, text)`` gives, when the caller has it already (live matching does).
    """
    delete_items(conn, [item_id])
    conn.execute(_INSERT, (item_id, *(values or index_values(title, text))))


def delete_items(conn: sqlite3.Connection, item_ids: Sequence[int]) -> list[int]:
    """Remove items from the history index; returns the ids that were in it.

    Call it BEFORE changing or emptying the ``items`` rows: without ``contentless_delete``
    (SQLite < 3.43) FTS5 must be told the values it indexed, which are recomputed from
    ``items``; other values would leave stale terms pointing at the item.
    """
    by_rowid: bool | None = None  # looked up once something is to be deleted
    removed: list[int] = []
    for batch, marks in in_chunks(item_ids):
        present = [
            int(r[0])
            for r in conn.execute(f"SELECT rowid FROM {FTS_TABLE} WHERE rowid IN ({marks})", batch)
        ]
        if not present:
            continue
        marks = ", ".join("?" * len(present))
        if by_rowid is None:
            by_rowid = _deletes_by_rowid(conn)
        if by_rowid:
            conn.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid IN ({marks})", present)
        else:
            rows = conn.execute(
                f"SELECT id, title, text FROM items WHERE id IN ({marks})", present
            ).fetchall()
            conn.executemany(
                _DELETE_COMMAND,
                ((int(i), *index_values(str(t or ""), str(x or ""))) for i, t, x in rows),
            )
        removed += present
    return removed


def delete_item(conn: sqlite3.Connection, item_id: int) -> bool:
    """Remove one item from the history index (see ``delete_items``); whether it was in it."""
    return bool(delete_items(conn, [item_id]))


def index_stored(conn: sqlite3.Connection, item_ids: Sequence[int]) -> None:
    """(Re-)index items from what ``items`` holds now (after ``delete_items`` and an update)."""
    for batch, marks in in_chunks(item_ids):
        rows = conn.execute(
            f"SELECT id, title, text FROM items WHERE id IN ({marks})", batch
        ).fetchall()
        for item_id, title, text in rows:
            index_item(conn, int(item_id), str(title or ""), str(text or ""))


def _index_all(conn: sqlite3.Connection, where: str) -> int:
    """Index the items selected by ``where`` (in id order, streamed); returns how many."""
    count = 0
    rows = conn.execute(f"SELECT id, title, text FROM items WHERE {where} ORDER BY id")
    while chunk := rows.fetchmany(IN_LIMIT):
        conn.executemany(
            _INSERT, [(int(i), *index_values(str(t or ""), str(x or ""))) for i, t, x in chunk]
        )
        count += len(chunk)
    return count


def reindex(conn: sqlite3.Connection, *, rebuild: bool = False) -> int:
    """Index items missing from the index (all items with ``rebuild``); returns how many."""
    if rebuild:
        # Contentless tables cannot 'rebuild'; 'delete-all' empties them.
        conn.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('delete-all')")
        return _index_all(conn, "1")
    return _index_all(conn, f"id NOT IN (SELECT rowid FROM {FTS_TABLE})")


def make_contentless(conn: sqlite3.Connection) -> int:
    """Schema step: replace a history index that stores its own copy of the text.

    The new index is built from ``items`` (the values ``delete_items`` will recompute), for
    the items the old index held (items whose text retention dropped stay out). Returns how
    many items it indexed; 0 when the index is already contentless.
    """
    if is_contentless(conn):
        return 0
    old = f"{FTS_TABLE}_stored"
    had_index = _index_sql(conn) is not None
    if had_index:
        conn.execute(f"ALTER TABLE {FTS_TABLE} RENAME TO {old}")
    ensure_schema(conn)
    if not had_index:
        return 0
    count = _index_all(conn, f"id IN (SELECT rowid FROM {old})")
    conn.execute(f"DROP TABLE {old}")
    return count


def format_ts(moment: datetime) -> str:
    """The stored timestamp format: 'YYYY-MM-DDTHH:MM:SSZ' in UTC (naive means UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _cutoff(since: datetime | timedelta | None, now: datetime) -> str | None:
    if since is None:
        return None
    return format_ts(now - since if isinstance(since, timedelta) else since)


Sort = Literal["newest", "relevance"]
SORTS: tuple[Sort, ...] = get_args(Sort)
_ORDER: dict[Sort, tuple[str, ...]] = {"newest": ("id DESC",), "relevance": ("score", "id DESC")}
_Row = tuple[Any, ...]  # id, bm25, title, text, url, published, fetched, language


@dataclass(frozen=True)
class _Filter:
    cutoff: str | None  # items fetched at or after this stored timestamp
    first_id: int | None  # the lowest item id with fetched >= cutoff: a rowid bound for FTS5
    topic: str | None
    languages: tuple[str, ...] | None

    def keep(self, row: _Row) -> bool:
        """The exact checks on an item row (the rowid bound only narrows what FTS5 reads)."""
        fetched, language = row[6], row[7]
        if self.cutoff is not None and (fetched is None or str(fetched) < self.cutoff):
            return False
        if self.languages is None:
            return True
        return bool(language) and normalise_language(str(language)) in self.languages


def _filter(
    conn: sqlite3.Connection,
    cutoff: str | None,
    topic: str | None,
    languages: tuple[str, ...] | None,
) -> _Filter | None:
    """The search filter; None when no item can pass it (nothing fetched since the cutoff)."""
    first = None
    if cutoff is not None:
        # min(id), not the first by time, in case clocks stepped back. `+id`: through the
        # `fetched` index (plain min(id) walks the table in id order until a row qualifies).
        row = conn.execute("SELECT min(+id) FROM items WHERE fetched >= ?", (cutoff,)).fetchone()
        first = row[0]
        if first is None:
            return None
    return _Filter(cutoff, first, topic, languages)


def _hits_sql(sort: Sort, f: _Filter, limited: bool) -> str:
    """Rank or order inside the index, then read only the page of item rows."""
    where = [f"{FTS_TABLE} MATCH :q"]
    if f.first_id is not None:
        where.append("rowid >= :first")
    if f.topic is not None:
        where.append("rowid IN (SELECT item_id FROM matches WHERE topic = :topic)")
    # bm25 needs each phrase's document count, a pass over its whole doclist: newest-first
    # would no longer stop at the page, so it has no score.
    score = _BM25 if sort == "relevance" else "NULL"
    page = (
        f"SELECT rowid AS id, {score} AS score FROM {FTS_TABLE} "
        f"WHERE {' AND '.join(where)} ORDER BY {', '.join(_ORDER[sort])}"
    ) + (" LIMIT :n" if limited else "")
    return (
        f"WITH hit AS ({page}) SELECT hit.id, hit.score, i.title, i.text, i.url, i.published, "
        f"i.fetched, i.language FROM hit JOIN items AS i ON i.id = hit.id "
        f"ORDER BY {', '.join('hit.' + part for part in _ORDER[sort])}"
    )


def _rows(
    conn: sqlite3.Connection,
    compiled: CompiledQuery,
    *,
    since: str | None,
    topic: str | None,
    languages: tuple[str, ...] | None,
    limit: int | None,
    sort: Sort,
) -> list[_Row]:
    f = _filter(conn, since, topic, languages)
    if f is None:
        return []
    params: dict[str, object] = {"q": compiled.fts, "first": f.first_id, "topic": topic}
    if limit is None:
        return [r for r in conn.execute(_hits_sql(sort, f, limited=False), params) if f.keep(r)]
    # Rows the exact checks drop (other languages; clock steps) are refilled from a larger page.
    wanted = limit if since is None and languages is None else 2 * limit
    while True:
        rows = conn.execute(_hits_sql(sort, f, limited=True), {**params, "n": wanted}).fetchall()
        kept = [r for r in rows if f.keep(r)]
        if len(kept) >= limit or len(rows) < wanted:
            return kept[:limit]
        wanted *= 4


def search(
    conn: sqlite3.Connection,
    query: str,
    *,
    since: datetime | timedelta | None = None,
    limit: int | None = 20,
    topic: str | None = None,
    languages: Sequence[str] | None = None,
    sort: Sort = "newest",
    now: datetime,
) -> list[SearchHit]:
    """Stored items matching ``query`` with highlighted snippets, newest first or most relevant.

    ``sort="newest"``: the most recently stored first (FTS5 walks the index backwards and stops
    at ``limit``: flat in the archive's size), without scores (``score`` is None).
    ``"relevance"``: by bm25 (title weighs ``TITLE_WEIGHT``), which scores every hit; ``since``
    bounds that work. ``since``: items
    first seen (``fetched``) at or after this moment, or within this long before ``now``.
    ``topic``: only items recorded in ``matches`` for that topic. ``languages``: only items in
    these languages (as a topic's ``languages:``). ``limit=None``: all.
    Raises QueryError for a bad query.
    """
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    compiled = compile_query(query)
    hits = []
    for row in _rows(
        conn,
        compiled,
        since=_cutoff(since, now),
        topic=topic,
        languages=normalise_languages(languages),
        limit=limit,
        sort=sort,
    ):
        item_id, score, title, text, url, published, fetched, language = row
        title_s, text_s = str(title or ""), str(text or "")
        hl = highlight(compiled.phrases, Field(title_s), Field(text_s))
        hits.append(
            SearchHit(
                item_id=int(item_id),
                title=title_s,
                title_highlighted=hl.title,
                snippet=hl.snippet,
                terms=hl.terms,
                score=-float(score) if score is not None else None,
                url=str(url) if url is not None else None,
                published=_parse_ts(str(published) if published else None),
                fetched=_parse_ts(str(fetched) if fetched else None),
                language=str(language) if language is not None else None,
            )
        )
    from monitor.store.outlets import outlets_of  # monitor.store imports this module

    if not hits or not _has_table(conn, "feeds"):  # an index of its own, without feeds
        return hits
    outlets = outlets_of(conn, [hit.item_id for hit in hits])
    return [replace(hit, outlet=outlets.get(hit.item_id)) for hit in hits]


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return found.fetchone() is not None


def match_topic(
    conn: sqlite3.Connection,
    spec: TopicSpec,
    *,
    since: datetime | timedelta | None = None,
    now: datetime,
) -> list[tuple[int, TopicMatch]]:
    """What ``spec`` matches among stored items (for ``topics test`` and ``rematch``)."""
    compiled, languages = compile_topic(spec)
    out = []
    for row in _rows(
        conn,
        compiled,
        since=_cutoff(since, now),
        topic=None,
        languages=languages,
        limit=None,
        sort="relevance",
    ):
        item_id, score, title, text = row[:4]
        hl = highlight(compiled.phrases, Field(str(title or "")), Field(str(text or "")))
        out.append((int(item_id), TopicMatch(spec.name, hl.terms, hl.snippet, -float(score))))
    return out


def rematch(
    conn: sqlite3.Connection,
    topics: Sequence[TopicSpec],
    *,
    now: datetime,
    since: datetime | timedelta | None = None,
    prune: bool = False,
) -> list[RematchResult]:
    """Record in ``matches`` what each topic matches among stored items, without alerting.

    Existing rows keep their ``matched_at``; new rows get ``now``. With ``prune``, rows of
    items (within ``since``) that the topic no longer matches are deleted. Caller commits.
    """
    results = []
    cutoff = _cutoff(since, now)
    for spec in topics:
        found = match_topic(conn, spec, since=since, now=now)
        before = _recorded(conn, spec.name, cutoff)
        conn.executemany(
            "INSERT INTO matches(item_id, topic, terms, snippet, score, matched_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(item_id, topic) DO UPDATE SET "
            "terms = excluded.terms, snippet = excluded.snippet, score = excluded.score",
            [
                (
                    item_id,
                    m.topic,
                    json.dumps(m.terms, ensure_ascii=False),
                    m.snippet,
                    m.score,
                    format_ts(now),
                )
                for item_id, m in found
            ],
        )
        now_ids = {item_id for item_id, _ in found}
        stale = sorted(before - now_ids) if prune else []
        conn.executemany(
            "DELETE FROM matches WHERE item_id = ? AND topic = ?", [(i, spec.name) for i in stale]
        )
        # Items whose text retention dropped left the index: not matching them says nothing.
        outdated = len(_indexed(conn, before - now_ids))
        results.append(
            RematchResult(
                spec.name, len(now_ids), len(now_ids - before), len(stale), outdated - len(stale)
            )
        )
    return results


def _indexed(conn: sqlite3.Connection, ids: set[int]) -> set[int]:
    """Those of ``ids`` that are in the history index."""
    found: set[int] = set()
    for chunk, marks in in_chunks(sorted(ids)):
        rows = conn.execute(f"SELECT id FROM {FTS_TABLE}_docsize WHERE id IN ({marks})", chunk)
        found.update(int(r[0]) for r in rows)
    return found


def _recorded(conn: sqlite3.Connection, topic: str, cutoff: str | None) -> set[int]:
    sql = "SELECT m.item_id FROM matches AS m"
    params: list[str] = [topic]
    if cutoff is not None:
        sql += " JOIN items AS i ON i.id = m.item_id WHERE m.topic = ? AND i.fetched >= ?"
        params.append(cutoff)
    else:
        sql += " WHERE m.topic = ?"
    return {int(r[0]) for r in conn.execute(sql, params)}


def topic_counts(conn: sqlite3.Connection, *, now: datetime) -> dict[str, TopicCounts]:
    """Per topic: matched items first seen in the last day, the last week, and all time."""
    day, week = format_ts(now - timedelta(days=1)), format_ts(now - timedelta(days=7))
    rows = conn.execute(
        "SELECT m.topic, SUM(i.fetched >= ?), SUM(i.fetched >= ?), COUNT(*) "
        "FROM matches AS m JOIN items AS i ON i.id = m.item_id GROUP BY m.topic",
        (day, week),
    )
    return {str(t): TopicCounts(int(d or 0), int(w or 0), int(n)) for t, d, w, n in rows}
