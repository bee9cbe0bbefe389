"""Schema migrations, applied in order; `PRAGMA user_version` records how far a database is."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run statements one by one: executescript() would COMMIT the migration's transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""


def _v1_foundation(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            config_hash TEXT,
            status TEXT NOT NULL DEFAULT 'new',
            used_url TEXT,
            title TEXT,
            site_url TEXT,
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,
            last_fetch TEXT,
            last_success TEXT,
            next_fetch TEXT,
            retry_after TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            failing_since TEXT,
            last_error TEXT,
            last_error_at TEXT,
            last_warning TEXT,
            polls INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            url TEXT,
            guid TEXT,
            title TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL DEFAULT '',
            text_source TEXT NOT NULL DEFAULT 'feed',
            summary TEXT NOT NULL DEFAULT '',
            author TEXT,
            published TEXT,
            fetched TEXT NOT NULL,
            updated TEXT,
            site_name TEXT,
            language TEXT,
            feed_id INTEGER REFERENCES feeds(id),
            entry_hash TEXT,
            page_url TEXT,
            extract_error TEXT
        );
        CREATE INDEX items_fetched ON items(fetched);
        CREATE INDEX items_feed ON items(feed_id);
        CREATE INDEX items_guid ON items(guid);
        CREATE TABLE sightings (
            item_id INTEGER NOT NULL REFERENCES items(id),
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            PRIMARY KEY (item_id, feed_id)
        ) WITHOUT ROWID;
        CREATE INDEX sightings_feed ON sightings(feed_id);
        CREATE TABLE item_updates (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items(id),
            feed_id INTEGER REFERENCES feeds(id),
            at TEXT NOT NULL,
            title TEXT,
            entry_hash TEXT
        );
        CREATE INDEX item_updates_item ON item_updates(item_id);
        CREATE TABLE matches (
            item_id INTEGER NOT NULL REFERENCES items(id),
            topic TEXT NOT NULL,
            terms TEXT NOT NULL DEFAULT '[]',
            snippet TEXT NOT NULL DEFAULT '',
            score REAL NOT NULL DEFAULT 0,
            matched_at TEXT NOT NULL,
            PRIMARY KEY (item_id, topic)
        ) WITHOUT ROWID;
        CREATE INDEX matches_topic ON matches(topic, matched_at);
        """,
    )


def _v2_archive_index(conn: sqlite3.Connection) -> None:
    from monitor.match import archive

    archive.ensure_schema(conn)


def _v3_developments(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE developments (
            id INTEGER PRIMARY KEY,
            topic TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            first_item_id INTEGER REFERENCES items(id),
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            items INTEGER NOT NULL DEFAULT 1,
            alerts INTEGER NOT NULL DEFAULT 0,  -- how many alerts it made: the next one's revision
            merged_into INTEGER REFERENCES developments(id),
            merged_at TEXT
        );
        CREATE INDEX developments_topic ON developments(topic, last_seen);
        CREATE TABLE development_items (
            item_id INTEGER NOT NULL REFERENCES items(id),
            topic TEXT NOT NULL,
            development_id INTEGER NOT NULL REFERENCES developments(id),
            relation TEXT NOT NULL,  -- first, report, duplicate
            duplicate_of INTEGER REFERENCES items(id),
            score REAL NOT NULL DEFAULT 0,
            added_at TEXT NOT NULL,
            PRIMARY KEY (item_id, topic)
        ) WITHOUT ROWID;
        CREATE INDEX development_items_dev ON development_items(development_id);
        CREATE TABLE item_features (
            item_id INTEGER PRIMARY KEY REFERENCES items(id),
            features TEXT NOT NULL
        );
        CREATE TABLE corpus_terms (
            term TEXT PRIMARY KEY,
            df INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE kv (
            key TEXT PRIMARY KEY,
            value TEXT
        ) WITHOUT ROWID;
        """,
    )


def _v4_outbox(conn: sqlite3.Connection) -> None:
    # The alert outbox (monitor.alert.outbox): rows are written in the poll's transaction and sent
    # later by a dispatcher that claims each row before sending it.
    run_script(
        conn,
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,  -- idempotency key: dev|item:ID:CHANNEL:REVISION
            kind TEXT NOT NULL DEFAULT 'alert',  -- alert, digest, health
            channel TEXT NOT NULL,
            mode TEXT NOT NULL DEFAULT 'immediate',  -- immediate (sent itself) or digest (a member)
            topics TEXT NOT NULL DEFAULT '[]',  -- JSON list: every topic the message names
            item_id INTEGER REFERENCES items(id),
            development_id INTEGER REFERENCES developments(id),
            revision INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            retry_since TEXT NOT NULL,  -- start of the retry budget (reset by `alerts retry`)
            status TEXT NOT NULL DEFAULT 'pending',  -- pending, sending, sent, failed
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            claimed_by TEXT,
            claimed_until TEXT,
            last_error TEXT,
            last_attempt_at TEXT,
            sent_at TEXT,
            digest_id INTEGER REFERENCES outbox(id),  -- for digest members: the digest message
            payload TEXT NOT NULL DEFAULT '{}'  -- JSON: all the template needs, taken at creation
        );
        CREATE INDEX outbox_queue ON outbox(channel, mode, status, id);
        CREATE INDEX outbox_status ON outbox(status, id);
        CREATE INDEX outbox_digest ON outbox(digest_id);
        CREATE TABLE outbox_state (
            key TEXT PRIMARY KEY,  -- digest:CHANNEL (last digest), failing:CHANNEL (since when)
            value TEXT
        ) WITHOUT ROWID;
        """,
    )


def _v5_contentless_archive_index(conn: sqlite3.Connection) -> None:
    # The history index stops storing its own copy of the normalised text (half the database);
    # rebuilt from items: ~51 s CPU per 100k items (README "Storage", bench/README.md).
    from monitor.match import archive

    archive.make_contentless(conn)


def _v6_development_moves(conn: sqlite3.Connection) -> None:
    # Regrouping (monitor.cluster.regroup) moves articles between developments after the fact;
    # every change is recorded here, and a development split off says where it came from.
    run_script(
        conn,
        """
        ALTER TABLE developments ADD COLUMN split_from INTEGER REFERENCES developments(id);
        CREATE TABLE development_moves (
            id INTEGER PRIMARY KEY,
            topic TEXT NOT NULL,
            item_id INTEGER NOT NULL REFERENCES items(id),
            from_development INTEGER NOT NULL REFERENCES developments(id),
            to_development INTEGER NOT NULL REFERENCES developments(id),
            old_relation TEXT NOT NULL,
            new_relation TEXT NOT NULL,
            score REAL NOT NULL DEFAULT 0,  -- mean pair probability with its new group
            moved_at TEXT NOT NULL
        );
        CREATE INDEX development_moves_item ON development_moves(item_id, topic);
        """,
    )


def _v7_declared_site_names(conn: sqlite3.Connection) -> None:
    # Extraction stored a page's host as its site name when the page declared none, so alerts
    # named hosts and "also reported by" merged different feeds of one host. `site_name` now
    # holds only a declared name (the feed's configured name is taken when read: outlets.py).
    from monitor.store.outlets import page_host

    conn.create_function("monitor_page_host", 1, page_host, deterministic=True)
    conn.execute(
        """UPDATE items SET site_name = NULL
           WHERE site_name IS NOT NULL AND site_name = monitor_page_host(page_url)"""
    )


def _v8_outbox_earlier_attempts(conn: sqlite3.Connection) -> None:
    # `monitor alerts retry` restarts `attempts` (back-off and retry budget count from the retry);
    # the tries made before it are kept here, so a listing shows every try the alert had.
    conn.execute("ALTER TABLE outbox ADD COLUMN earlier_attempts INTEGER NOT NULL DEFAULT 0")


MIGRATIONS: list[Migration] = [
    _v1_foundation,
    _v2_archive_index,
    _v3_developments,
    _v4_outbox,
    _v5_contentless_archive_index,
    _v6_development_moves,
    _v7_declared_site_names,
    _v8_outbox_earlier_attempts,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; each step in its own transaction. Returns the new version."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise sqlite3.DatabaseError(
            f"the database has schema version {version}, newer than this news-monitor "
            f"({len(MIGRATIONS)}); upgrade news-monitor"
        )
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
