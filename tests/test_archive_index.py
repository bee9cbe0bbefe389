"""The contentless history index stays exactly what `items` says, through every writer.

FTS5 on SQLite < 3.43 deletes from a contentless table only when told the values it indexed;
wrong values leave stale terms that still point at the item (or corrupt the index). So every
test here compares the whole index, term by term and position by position (fts5vocab), with an
index freshly built from the `items` rows that should be in it.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import ops
from monitor.match import archive
from monitor.match.normalise import FTS5_TOKENIZE
from monitor.records import Article, FeedEntry, FeedPoll, FetchResult, FetchStatus
from monitor.schedule import FeedStatus
from monitor.store import FeedStateUpdate, Store
from monitor.store.schema import MIGRATIONS, migrate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# The history index as schema step 2 created it until step 5: it stored its own copy.
OLD_DDL = (
    f"CREATE VIRTUAL TABLE {archive.FTS_TABLE} USING fts5(title, body, language UNINDEXED, "
    f'tokenize="{FTS5_TOKENIZE}")'
)


def instances(conn: sqlite3.Connection, table: str) -> set[tuple[str, int, str, int]]:
    vocab = f"{table}_check_vocab"
    conn.execute(f"CREATE VIRTUAL TABLE temp.{vocab} USING fts5vocab(main, {table}, 'instance')")
    try:
        return {
            (str(t), int(d), str(c), int(o))
            for t, d, c, o in conn.execute(f"SELECT * FROM {vocab}")
        }
    finally:
        conn.execute(f"DROP TABLE temp.{vocab}")


def assert_index_is(conn: sqlite3.Connection, item_ids: set[int]) -> None:
    """The index holds exactly these items, made from what `items` holds now."""
    conn.execute(
        "CREATE VIRTUAL TABLE fresh_fts USING fts5(title, body, content='', "
        f'tokenize="{FTS5_TOKENIZE}")'
    )
    try:
        for item_id in sorted(item_ids):
            title, text = conn.execute(
                "SELECT title, text FROM items WHERE id = ?", (item_id,)
            ).fetchone()
            conn.execute(
                "INSERT INTO fresh_fts(rowid, title, body) VALUES (?, ?, ?)",
                (item_id, *archive.index_values(title, text)),
            )
        assert instances(conn, archive.FTS_TABLE) == instances(conn, "fresh_fts")
        indexed = {int(r[0]) for r in conn.execute(f"SELECT rowid FROM {archive.FTS_TABLE}")}
        assert indexed == item_ids
        conn.execute(
            f"INSERT INTO {archive.FTS_TABLE}({archive.FTS_TABLE}) VALUES ('integrity-check')"
        )
    finally:
        conn.execute("DROP TABLE fresh_fts")


def entry(n: int, title: str, summary: str, entry_hash: str = "h") -> FeedEntry:
    url = f"https://news.example/a/{n}"
    return FeedEntry(url, url, url, f"g{n}", title, summary, None, NOW, None, f"{entry_hash}{n}")


def article(e: FeedEntry, text: str, source: str = "page") -> Article:
    return Article(e, e.title, text, source, None, e.published, "News", "en", e.url)


def record(store: Store, **kw: object) -> None:
    fetch = FetchResult(url="u", final_url="u", status=FetchStatus.OK)
    poll = FeedPoll(feed_name="A", fetch=fetch, parsed=None, **kw)  # type: ignore[arg-type]
    update = FeedStateUpdate(
        status=FeedStatus.OK, last_fetch=NOW, next_fetch=NOW, error_count=0, success=True
    )
    store.record_poll("A", poll, update, NOW)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "m.db")
    s.sync_feeds([("A", "https://a.example/feed", "c1")])
    return s


def ids_for(store: Store, query: str) -> set[int]:
    return {h.item_id for h in archive.search(store.conn, query, limit=None, now=NOW)}


def test_the_index_keeps_no_copy_of_the_text(store: Store) -> None:
    assert archive.is_contentless(store.conn)
    record(store, new_articles=(article(entry(1, "Kursk", ""), "Troops in Kursk."),))
    rows = store.conn.execute(f"SELECT title, body FROM {archive.FTS_TABLE}").fetchall()
    assert [tuple(r) for r in rows] == [(None, None)]
    [hit] = archive.search(store.conn, "troops", now=NOW)
    assert hit.snippet == "**Troops** in Kursk."  # made from items.text


def test_the_ddl_follows_the_sqlite_version() -> None:
    assert "contentless_delete" not in archive.index_ddl((3, 40, 1))
    assert "content='', contentless_delete=1" in archive.index_ddl((3, 43, 0))


def test_item_updates_reindex_the_new_title_and_feed_text(store: Store) -> None:
    page, feed = entry(1, "Kursk offensive", "s"), entry(2, "Belgorod shelling", "Old feed text")
    record(
        store,
        new_articles=(
            article(page, "Troops advance near Sudzha."),
            article(feed, "Old feed text", "feed"),
        ),
    )
    ids = {int(r[0]) for r in store.conn.execute("SELECT id FROM items")}
    record(
        store,
        updated_entries=(
            entry(1, "Kursk counteroffensive", "s", "x"),
            entry(2, "Belgorod drones", "Corrected feed text", "x"),
        ),
    )
    assert store.count("items", "updated IS NOT NULL") == 2
    assert_index_is(store.conn, ids)
    assert ids_for(store, "offensive") == set()  # the old title no longer finds it
    assert len(ids_for(store, "counteroffensive")) == 1
    assert len(ids_for(store, "sudzha")) == 1  # a page's text stays
    assert ids_for(store, "old") == set() and len(ids_for(store, "corrected")) == 1


def test_retention_takes_items_out_of_the_index(store: Store) -> None:
    arts = tuple(
        article(entry(n, f"Report {n}", "s"), f"Kursk report number {n}.") for n in range(7)
    )
    record(store, new_articles=arts)
    ids = sorted(int(r[0]) for r in store.conn.execute("SELECT id FROM items"))
    store.conn.execute("UPDATE items SET fetched = '2025-01-01T00:00:00Z' WHERE id <= ?", (ids[3],))
    assert ops.drop_text_batch(store.conn, NOW - timedelta(days=30)) == 4
    assert_index_is(store.conn, set(ids[4:]))
    assert ids_for(store, "kursk") == set(ids[4:])
    # An old item's feed entry changes after retention: it stays out of the index.
    record(store, updated_entries=(entry(0, "Report zero, corrected", "s", "x"),))
    assert_index_is(store.conn, set(ids[4:]))
    store.conn.execute(f"INSERT INTO {archive.FTS_TABLE}({archive.FTS_TABLE}) VALUES ('optimize')")
    assert_index_is(store.conn, set(ids[4:]))


def test_delete_reindex_and_rebuild(store: Store) -> None:
    record(store, new_articles=(article(entry(1, "Kursk", "s"), "Fighting in Kursk."),))
    [item] = [int(r[0]) for r in store.conn.execute("SELECT id FROM items")]
    assert archive.delete_item(store.conn, item) is True
    assert archive.delete_item(store.conn, item) is False  # not there: nothing to undo
    assert_index_is(store.conn, set())
    assert archive.reindex(store.conn) == 1
    assert archive.reindex(store.conn) == 0
    assert archive.reindex(store.conn, rebuild=True) == 1
    archive.index_item(store.conn, item, "Kursk", "Fighting in Kursk.")  # replaces itself
    assert_index_is(store.conn, {item})


def old_database(
    path: Path, docs: list[tuple[str, str]], *, dropped: set[int]
) -> sqlite3.Connection:
    """A database as schema step 4 left it: the index with its own copy of the text."""
    conn = sqlite3.connect(path, isolation_level=None)
    for number, step in enumerate(MIGRATIONS[:4], start=1):
        step(conn)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute(f"DROP TABLE {archive.FTS_TABLE}")
    conn.execute(OLD_DDL)
    for n, (title, text) in enumerate(docs, start=1):
        conn.execute(
            "INSERT INTO items (id, key, title, text, fetched, language) VALUES (?, ?, ?, ?, ?, 'en')",
            (n, f"k{n}", title, "" if n in dropped else text, archive.format_ts(NOW)),
        )
        if n not in dropped:
            conn.execute(
                f"INSERT INTO {archive.FTS_TABLE}(rowid, title, body, language) VALUES (?, ?, ?, 'en')",
                (n, *archive.index_values(title, text)),
            )
    return conn


def test_migration_rebuilds_the_index_without_its_copy(tmp_path: Path) -> None:
    docs = [
        (f"Kursk report {n}", f"Troops and drones near Sudzha, day {n}. " * (n % 4 + 1))
        for n in range(1, 41)
    ]
    conn = old_database(tmp_path / "old.db", docs, dropped={3, 4})
    query = "kursk AND (drones OR sudzha)"
    before = ranked(conn, query)
    assert migrate(conn) == len(MIGRATIONS)
    assert archive.is_contentless(conn)
    assert_index_is(conn, set(range(1, 41)) - {3, 4})  # retention-dropped items stay out
    after = ranked(conn, query)
    assert [i for i, _ in after] == [i for i, _ in before] and len(after) == 38
    assert [s for _, s in after] == pytest.approx([s for _, s in before], rel=1e-12)
    assert conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE name LIKE '%stored%'"
    ).fetchone() == (0,)
    assert migrate(conn) == len(MIGRATIONS)  # nothing left to do


def ranked(conn: sqlite3.Connection, query: str) -> list[tuple[int, float | None]]:
    hits = archive.search(conn, query, limit=None, sort="relevance", now=NOW)
    return [(h.item_id, h.score) for h in hits]


def test_a_new_database_gets_the_contentless_index(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "new.db", isolation_level=None)
    assert migrate(conn) == len(MIGRATIONS)
    assert archive.is_contentless(conn)
    assert_index_is(conn, set())


def test_with_contentless_delete_on_a_newer_sqlite(tmp_path: Path) -> None:
    """SQLite >= 3.43 (here through pysqlite3, when installed): deletes go by rowid."""
    newer = pytest.importorskip("pysqlite3")
    conn = newer.connect(str(tmp_path / "newer.db"), isolation_level=None)
    if archive.library_version(conn) < archive.CONTENTLESS_DELETE_SINCE:
        pytest.skip("pysqlite3 brings an SQLite older than 3.43")
    assert migrate(conn) == len(MIGRATIONS)
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'items_fts'").fetchone()[0]
    assert "contentless_delete=1" in sql
    for n in range(1, 6):
        conn.execute(
            "INSERT INTO items (id, key, title, text, fetched) VALUES (?, ?, ?, ?, ?)",
            (n, f"k{n}", f"Kursk {n}", f"Troops near Sudzha, day {n}.", archive.format_ts(NOW)),
        )
        archive.index_item(conn, n, f"Kursk {n}", f"Troops near Sudzha, day {n}.")
    # Retention and a feed correction, as the store and ops do them.
    assert ops.drop_text_batch(conn, NOW + timedelta(seconds=1)) == 5
    assert_index_is(conn, set())
    conn.execute("UPDATE items SET text = 'Drones over Belgorod.' WHERE id = 2")
    archive.index_stored(conn, [2])
    assert archive.delete_items(conn, [2]) == [2]
    conn.execute("UPDATE items SET title = 'Belgorod' WHERE id = 2")
    archive.index_stored(conn, [2])
    assert_index_is(conn, {2})
    assert [h.item_id for h in archive.search(conn, "belgorod AND drones", now=NOW)] == [2]
