"""The history index: an FTS5 table over the normalised text of every stored item.

``items_fts(title, body, language UNINDEXED)`` with rowid = ``items.id``. Queries are compiled
exactly as for live matching (same normaliser, same FTS5 query), so a topic means the same thing
in search, ``topics test`` and ``rematch`` as when articles arrive. Snippets are made from the
original ``items.title`` / ``items.text``. Functions here never commit: the caller owns the
transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.match.highlight import Field, highlight
from monitor.match.normalise import FTS5_TOKENIZE, normalise_tokens, tokenize
from monitor.match.percolate import (
    TITLE_WEIGHT,
    TopicSpec,
    compile_topic,
    normalise_language,
    normalise_languages,
)
from monitor.match.query import CompiledQuery, compile_query
from monitor.records import TopicMatch

FTS_TABLE = "items_fts"
_BM25 = f"bm25({FTS_TABLE}, {TITLE_WEIGHT}, 1.0, 0.0)"


@dataclass(frozen=True)
class SearchHit:
    item_id: int
    title: str  # original title
    title_highlighted: str  # title with hits wrapped in **...**
    snippet: str  # original text around the hits, hits wrapped in **...**
    terms: tuple[str, ...]  # query terms that hit, as written
    score: float  # -bm25: higher is more relevant
    url: str | None
    published: datetime | None
    fetched: datetime | None
    language: str | None


@dataclass(frozen=True)
class RematchResult:
    topic: str
    matched: int  # items the topic matches now
    added: int  # of which were not recorded before
    removed: int  # stale rows deleted (only with prune=True)


@dataclass(frozen=True)
class TopicCounts:
    day: int
    week: int
    total: int


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the history index if missing (items and matches belong to the store)."""
    conn.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
        f'title, body, language UNINDEXED, tokenize="{FTS5_TOKENIZE}")'
    )


def index_item(
    conn: sqlite3.Connection,
    item_id: int,
    title: str | None,
    text: str | None,
    language: str | None,
) -> None:
    """Add or replace one item in the history index."""
    conn.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid = ?", (item_id,))
    conn.execute(
        f"INSERT INTO {FTS_TABLE}(rowid, title, body, language) VALUES (?, ?, ?, ?)",
        (
            item_id,
            normalise_tokens(tokenize(title or "")),
            normalise_tokens(tokenize(text or "")),
            normalise_language(language) if language else None,
        ),
    )


def delete_item(conn: sqlite3.Connection, item_id: int) -> None:
    conn.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid = ?", (item_id,))


def reindex(conn: sqlite3.Connection, *, rebuild: bool = False) -> int:
    """Index items missing from the index (all items with ``rebuild``); returns how many."""
    if rebuild:
        conn.execute(f"DELETE FROM {FTS_TABLE}")
    rows = conn.execute(
        f"SELECT id, title, text, language FROM items "
        f"WHERE id NOT IN (SELECT rowid FROM {FTS_TABLE})"
    ).fetchall()
    for item_id, title, text, language in rows:
        index_item(conn, item_id, title, text, language)
    return len(rows)


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


_SELECT = (
    f"SELECT f.rowid, {_BM25} AS rank, i.title, i.text, i.url, i.published, i.fetched, "
    f"i.language FROM {FTS_TABLE} AS f JOIN items AS i ON i.id = f.rowid "
    f"WHERE {FTS_TABLE} MATCH ?"
)


def _rows(
    conn: sqlite3.Connection,
    compiled: CompiledQuery,
    *,
    since: str | None,
    topic: str | None,
    languages: tuple[str, ...] | None,
    limit: int | None,
) -> Iterator[tuple[object, ...]]:
    sql = _SELECT
    params: list[str | int] = [compiled.fts]
    if since is not None:
        sql += " AND i.fetched >= ?"
        params.append(since)
    if topic is not None:
        sql += " AND f.rowid IN (SELECT item_id FROM matches WHERE topic = ?)"
        params.append(topic)
    if languages is not None:
        # index_item stores normalised codes ('en'), as the percolator compares them
        sql += f" AND f.language IN ({', '.join('?' * len(languages))})"
        params.extend(languages)
    sql += " ORDER BY rank"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    yield from conn.execute(sql, params)


def search(
    conn: sqlite3.Connection,
    query: str,
    *,
    since: datetime | timedelta | None = None,
    limit: int | None = 20,
    topic: str | None = None,
    languages: Sequence[str] | None = None,
    now: datetime,
) -> list[SearchHit]:
    """Stored items matching ``query``, most relevant first, with highlighted snippets.

    ``since``: items first seen (``fetched``) at or after this moment, or within this long before
    ``now``. ``topic``: only items recorded in ``matches`` for that topic. ``languages``: only
    items in these languages (as a topic's ``languages:``). ``limit=None``: all.
    Raises QueryError for a bad query.
    """
    compiled = compile_query(query)
    hits = []
    for row in _rows(
        conn,
        compiled,
        since=_cutoff(since, now),
        topic=topic,
        languages=normalise_languages(languages),
        limit=limit,
    ):
        item_id, rank, title, text, url, published, fetched, language = row
        title_s, text_s = str(title or ""), str(text or "")
        hl = highlight(compiled.phrases, Field(title_s), Field(text_s))
        hits.append(
            SearchHit(
                item_id=int(str(item_id)),
                title=title_s,
                title_highlighted=hl.title,
                snippet=hl.snippet,
                terms=hl.terms,
                score=-float(str(rank)),
                url=str(url) if url is not None else None,
                published=_parse_ts(str(published) if published else None),
                fetched=_parse_ts(str(fetched) if fetched else None),
                language=str(language) if language is not None else None,
            )
        )
    return hits


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
        conn, compiled, since=_cutoff(since, now), topic=None, languages=languages, limit=None
    ):
        item_id, rank, title, text = row[:4]
        hl = highlight(compiled.phrases, Field(str(title or "")), Field(str(text or "")))
        out.append(
            (int(str(item_id)), TopicMatch(spec.name, hl.terms, hl.snippet, -float(str(rank))))
        )
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
        results.append(RematchResult(spec.name, len(now_ids), len(now_ids - before), len(stale)))
    return results


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
