"""An in-memory database with the store's items and matches tables, for the match tests."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime

from monitor.match import archive

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_KEYS = itertools.count()


def make_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        """
        CREATE TABLE items (id INTEGER PRIMARY KEY, key TEXT UNIQUE, url TEXT, guid TEXT,
            title TEXT, text TEXT, text_source TEXT, summary TEXT, author TEXT, published TEXT,
            fetched TEXT, updated TEXT, site_name TEXT, language TEXT, feed_id INTEGER,
            entry_hash TEXT, page_url TEXT);
        CREATE TABLE matches (item_id INTEGER, topic TEXT, terms TEXT, snippet TEXT, score REAL,
            matched_at TEXT, PRIMARY KEY (item_id, topic));
        """
    )
    archive.ensure_schema(conn)
    return conn


def add_item(
    conn: sqlite3.Connection,
    title: str,
    text: str,
    *,
    language: str | None = "en",
    fetched: datetime = NOW,
    url: str | None = None,
) -> int:
    """Store an item as the store would (row in items, then the history index)."""
    cur = conn.execute(
        "INSERT INTO items (key, url, title, text, language, fetched, published) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            url or f"key-{next(_KEYS)}",
            url,
            title,
            text,
            language,
            archive.format_ts(fetched),
            archive.format_ts(fetched),
        ),
    )
    item_id = int(cur.lastrowid or 0)
    archive.index_item(conn, item_id, title, text)
    return item_id
