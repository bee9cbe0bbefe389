"""The history index: search, topic tests and rematch over stored items."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from monitor.match import archive
from monitor.match.percolate import TopicSpec
from monitor.match.query import QueryError
from tests._match_db import NOW, add_item, make_db


def test_ensure_schema_is_idempotent() -> None:
    conn = make_db()
    archive.ensure_schema(conn)
    assert conn.execute("SELECT count(*) FROM items_fts").fetchone() == (0,)


def test_search_ranks_and_highlights_the_original_text() -> None:
    conn = make_db()
    body_only = add_item(
        conn,
        "Summit ends",
        "Delegations left Pyongyang after talks. Analysts expect more visits to Pyongyang.",
        url="https://example.org/summit",
    )
    in_title = add_item(conn, "Pyongyang hosts Putin", "The visit lasted two days.")
    add_item(conn, "Weather", "Sunny in Seoul.")
    hits = archive.search(conn, "pyongyang", now=NOW)
    assert [h.item_id for h in hits] == [in_title, body_only]  # title hits weigh more
    assert hits[0].title_highlighted == "**Pyongyang** hosts Putin"
    assert hits[1].snippet == (
        "Delegations left **Pyongyang** after talks. Analysts expect more visits to **Pyongyang**."
    )
    assert hits[1].url == "https://example.org/summit"
    assert hits[1].fetched == NOW and hits[1].published == NOW
    assert hits[0].score >= hits[1].score > 0
    assert hits[0].terms == ("pyongyang",)


def test_search_in_three_languages() -> None:
    conn = make_db()
    ru = add_item(conn, "КНДР", "Власти КНДР отрицают отправку войск в Россию.", language="ru")
    ko = add_item(conn, "파병", "북한군은 러시아 쿠르스크 지역에 배치되었다.", language="ko")
    en = add_item(conn, "Troops", "North Korean troops arrived in Russia.", language="en")
    assert {h.item_id for h in archive.search(conn, "россия OR 러시아 OR russia", now=NOW)} == {
        ru,
        ko,
        en,
    }
    hit = archive.search(conn, "россия", now=NOW)[0]
    assert hit.item_id == ru and "**Россию**" in hit.snippet
    assert archive.search(conn, "북한", now=NOW)[0].snippet.startswith("**북한군은**")
    assert [
        h.item_id for h in archive.search(conn, "russia", languages=["ru", "ko"], now=NOW)
    ] == []


def test_since_limit_and_topic_filters() -> None:
    conn = make_db()
    old = add_item(conn, "Kursk", "Fighting in Kursk.", fetched=NOW - timedelta(days=10))
    new = add_item(conn, "Kursk", "More fighting in Kursk.", fetched=NOW - timedelta(hours=2))
    assert {h.item_id for h in archive.search(conn, "kursk", now=NOW)} == {old, new}
    assert [h.item_id for h in archive.search(conn, "kursk", since=timedelta(days=7), now=NOW)] == [
        new
    ]
    cutoff = NOW - timedelta(days=11)
    assert len(archive.search(conn, "kursk", since=cutoff, now=NOW)) == 2
    assert len(archive.search(conn, "kursk", limit=1, now=NOW)) == 1
    conn.execute(
        "INSERT INTO matches (item_id, topic, matched_at) VALUES (?, 'war', '2026-03-01T00:00:00Z')",
        (old,),
    )
    assert [h.item_id for h in archive.search(conn, "kursk", topic="war", now=NOW)] == [old]
    assert archive.search(conn, "kursk", topic="other", now=NOW) == []


def test_reindexing_and_deleting() -> None:
    conn = make_db()
    item = add_item(conn, "Kursk", "Fighting in Kursk.")
    archive.index_item(conn, item, "Belgorod", "Shelling in Belgorod.", "en")  # text changed
    assert archive.search(conn, "kursk", now=NOW) == []
    assert [h.item_id for h in archive.search(conn, "belgorod", now=NOW)] == [item]
    archive.delete_item(conn, item)
    assert archive.search(conn, "belgorod", now=NOW) == []
    assert archive.reindex(conn) == 1  # the item row is still there: indexed again from items
    assert [h.item_id for h in archive.search(conn, "kursk", now=NOW)] == [item]
    assert archive.reindex(conn) == 0
    assert archive.reindex(conn, rebuild=True) == 1


def test_bad_search_query_raises_a_clear_error() -> None:
    conn = make_db()
    with pytest.raises(QueryError, match="at character 9: OR must be followed by a term"):
        archive.search(conn, "kursk OR", now=NOW)


def test_match_topic_and_rematch_record_matches_without_duplicates() -> None:
    conn = make_db()
    first = add_item(conn, "Kursk", "North Korean troops in the Kursk region.")
    add_item(conn, "Weather", "Rain in Kursk.")
    spec = TopicSpec("dprk-kursk", 'kursk AND "north korean"')
    found = archive.match_topic(conn, spec, now=NOW)
    assert [(i, m.terms) for i, m in found] == [(first, ("kursk", "north korean"))]

    [result] = archive.rematch(conn, [spec], now=NOW)
    assert (result.matched, result.added, result.removed) == (1, 1, 0)
    row = conn.execute("SELECT item_id, terms, snippet, matched_at FROM matches").fetchone()
    assert row[0] == first and json.loads(row[1]) == ["kursk", "north korean"]
    assert "**North Korean** troops in the **Kursk** region." in row[2]
    assert row[3] == archive.format_ts(NOW)

    later = NOW + timedelta(days=1)
    [again] = archive.rematch(conn, [spec], now=later)
    assert (again.matched, again.added) == (1, 0)
    assert conn.execute("SELECT matched_at FROM matches").fetchone()[0] == archive.format_ts(NOW)

    narrowed = TopicSpec("dprk-kursk", 'kursk AND "north korean"', languages=("ru",))
    [kept] = archive.rematch(conn, [narrowed], now=later)
    assert (kept.matched, kept.removed) == (0, 0)  # without prune, rows stay
    [pruned] = archive.rematch(conn, [narrowed], now=later, prune=True)
    assert pruned.removed == 1
    assert conn.execute("SELECT count(*) FROM matches").fetchone() == (0,)


def test_topic_counts_by_day_week_and_all_time() -> None:
    conn = make_db()
    ages = [timedelta(hours=1), timedelta(days=3), timedelta(days=30)]
    ids = [add_item(conn, "Kursk", "Kursk news.", fetched=NOW - age) for age in ages]
    archive.rematch(conn, [TopicSpec("kursk", "kursk")], now=NOW)
    counts = archive.topic_counts(conn, now=NOW)
    assert counts == {"kursk": archive.TopicCounts(day=1, week=2, total=3)}
    assert len(ids) == 3
