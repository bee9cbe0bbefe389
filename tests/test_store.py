from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.records import Article, FeedEntry, FeedPoll, FetchResult, FetchStatus, TopicMatch
from monitor.schedule import FeedStatus
from monitor.store import FeedStateUpdate, Store, StoreError
from monitor.store.schema import MIGRATIONS

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def entry(n: int, **kw: object) -> FeedEntry:
    values: dict[str, object] = {
        "key": f"https://news.example/a/{n}",
        "url": f"https://news.example/a/{n}",
        "link": f"https://news.example/a/{n}",
        "guid": f"g{n}",
        "title": f"Title {n}",
        "summary": f"Summary {n}",
        "author": None,
        "published": NOW - timedelta(hours=1),
        "updated": None,
        "entry_hash": f"h{n}",
    }
    values.update(kw)
    return FeedEntry(**values)  # type: ignore[arg-type]


def article(e: FeedEntry) -> Article:
    return Article(
        entry=e,
        title=e.title,
        text=f"Full text of {e.title}",
        text_source="page",
        author=None,
        published=e.published,
        site_name="News",
        language="en",
        page_url=e.url,
    )


def ok_update() -> FeedStateUpdate:
    return FeedStateUpdate(
        status=FeedStatus.OK,
        last_fetch=NOW,
        next_fetch=NOW + timedelta(minutes=15),
        error_count=0,
        etag='"e1"',
        body_hash="b1",
        success=True,
    )


def poll(name: str, new: tuple[Article, ...] = (), **kw: object) -> FeedPoll:
    fetch = FetchResult(url="u", final_url="u", status=FetchStatus.OK)
    return FeedPoll(feed_name=name, fetch=fetch, parsed=None, new_articles=new, **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "state" / "m.db")
    s.sync_feeds([("A", "https://a.example/feed", "c1"), ("B", "https://b.example/feed", "c1")])
    return s


def test_schema_is_migrated_and_wal(store: Store) -> None:
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_record_poll_writes_items_sightings_matches_and_state(store: Store) -> None:
    e1, e2 = entry(1), entry(2)
    match = TopicMatch(topic="t", terms=("russia",), snippet="**Russia** ...", score=1.0)
    counts = store.record_poll(
        "A", poll("A", (article(e1), article(e2)), matches={e1.key: (match,)}), ok_update(), NOW
    )
    assert counts.new == 2
    items = store.recent_items()
    assert {i["url"] for i in items} == {e1.url, e2.url}
    by_url = {i["url"]: i for i in items}
    assert by_url[e1.url]["topics"] == ["t"] and by_url[e2.url]["topics"] == []
    assert by_url[e1.url]["feeds"] == ["A"]
    state = store.feed_state("A")
    assert state is not None and state.etag == '"e1"' and state.status is FeedStatus.OK
    assert store.known_entries([e1.key, "nope"]) == {e1.key: "h1"}


def test_same_url_in_another_feed_is_a_sighting_not_an_item(store: Store) -> None:
    e1 = entry(1)
    store.record_poll("A", poll("A", (article(e1),)), ok_update(), NOW)
    store.record_poll("B", poll("B", seen_entries=(e1,)), ok_update(), NOW + timedelta(minutes=5))
    assert store.count("items") == 1
    assert store.recent_items()[0]["feeds"] == ["A", "B"]
    assert store.recent_items(feed="B")[0]["url"] == e1.url
    # a concurrent poll that still thought it new also only adds a sighting
    store.record_poll("B", poll("B", (article(e1),)), ok_update(), NOW)
    assert store.count("items") == 1


def test_changed_entry_is_recorded_as_an_update(store: Store) -> None:
    e1 = entry(1)
    store.record_poll("A", poll("A", (article(e1),)), ok_update(), NOW)
    changed = replace(e1, title="Corrected title", entry_hash="h1b")
    counts = store.record_poll("A", poll("A", updated_entries=(changed,)), ok_update(), NOW)
    assert counts.updated == 1
    row = store.recent_items()[0]
    assert row["title"] == "Corrected title" and row["updated"] is not None
    assert row["text"] == "Full text of Title 1"  # page text stays
    assert store.count("item_updates") == 1


def test_errors_accumulate_and_success_clears_them(store: Store) -> None:
    failing = FeedStateUpdate(
        status=FeedStatus.ERROR,
        last_fetch=NOW,
        next_fetch=NOW + timedelta(hours=1),
        error_count=1,
        error="connection refused",
    )
    store.record_feed_state("A", failing)
    store.record_feed_state(
        "A", replace(failing, last_fetch=NOW + timedelta(hours=1), error_count=2)
    )
    state = store.feed_state("A")
    assert state is not None and state.error_count == 2 and state.last_error == "connection refused"
    assert state.failing_since == NOW  # since the first failure
    store.record_feed_state("A", ok_update())
    state = store.feed_state("A")
    assert state is not None and state.error_count == 0 and state.failing_since is None


def test_changed_config_entry_resets_a_gone_feed(store: Store) -> None:
    gone = FeedStateUpdate(
        status=FeedStatus.GONE, last_fetch=NOW, next_fetch=NOW, error_count=1, error="HTTP 410"
    )
    store.record_feed_state("A", gone)
    store.sync_feeds([("A", "https://a.example/feed", "c1")])
    state = store.feed_state("A")
    assert state is not None and state.status is FeedStatus.GONE
    store.sync_feeds([("A", "https://a.example/new-feed", "c2")])
    state = store.feed_state("A")
    assert state is not None and state.status is FeedStatus.NEW and state.url.endswith("new-feed")


def test_reader_sees_committed_data_while_writer_holds_a_transaction(
    store: Store, tmp_path: Path
) -> None:
    store.record_poll("A", poll("A", (article(entry(1)),)), ok_update(), NOW)
    reader = Store.open(tmp_path / "state" / "m.db", create=False)
    with store.transaction():
        store.conn.execute("UPDATE items SET title = 'uncommitted'")
        assert reader.recent_items()[0]["title"] == "Title 1"  # WAL: no "database is locked"
    reader.close()


def test_missing_database_without_create_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database"):
        Store.open(tmp_path / "none.db", create=False)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this news-monitor"):
        Store.open(path)
