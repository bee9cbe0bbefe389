"""The history index: search, topic tests and rematch over stored items."""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest

from monitor.match import archive
from monitor.match.normalise import FTS5_TOKENIZE
from monitor.match.percolate import TopicSpec, normalise_language
from monitor.match.query import QueryError, compile_query
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
    hits = archive.search(conn, "pyongyang", sort="relevance", now=NOW)
    assert [h.item_id for h in hits] == [in_title, body_only]  # title hits weigh more
    assert hits[0].title_highlighted == "**Pyongyang** hosts Putin"
    assert hits[1].snippet == (
        "Delegations left **Pyongyang** after talks. Analysts expect more visits to **Pyongyang**."
    )
    assert hits[1].url == "https://example.org/summit"
    assert hits[1].fetched == NOW and hits[1].published == NOW
    assert (hits[0].score or 0) >= (hits[1].score or 0) > 0
    assert hits[0].terms == ("pyongyang",)


def test_newest_first_is_the_default_and_relevance_an_option() -> None:
    conn = make_db()
    strong = add_item(conn, "Pyongyang talks", "Pyongyang, Pyongyang and Pyongyang again.")
    weak = add_item(conn, "Weather", "Long report on rain and wind. " * 20 + "Also Pyongyang.")
    newest = archive.search(conn, "pyongyang", now=NOW)
    assert [h.item_id for h in newest] == [weak, strong]  # the last stored first
    relevant = archive.search(conn, "pyongyang", sort="relevance", now=NOW)
    assert [h.item_id for h in relevant] == [strong, weak]
    # The same hits either way, with the same snippets; scores only when ranked.
    unscored = [replace(h, score=None) for h in sorted(relevant, key=lambda h: h.item_id)]
    assert sorted(newest, key=lambda h: h.item_id) == unscored
    assert relevant[0].score is not None and relevant[1].score is not None
    assert relevant[0].score > relevant[1].score > 0
    assert [h.score for h in newest] == [None, None]
    with pytest.raises(ValueError, match="sort must be one of newest, relevance"):
        archive.search(conn, "pyongyang", sort="date", now=NOW)  # type: ignore[arg-type]


def test_filters_that_need_the_item_row_refill_the_page() -> None:
    conn = make_db()
    ru = [add_item(conn, "Курск", f"Бои под Курском, день {n}.", language="ru") for n in range(3)]
    en = [add_item(conn, "Kursk", f"Kursk report {n}.", language="en-GB") for n in range(30)]
    for sort in archive.SORTS:
        found = archive.search(
            conn, "kursk OR курск", languages=["ru"], limit=2, sort=sort, now=NOW
        )
        assert len(found) == 2 and {h.item_id for h in found} < set(ru)
        found = archive.search(conn, "kursk", languages=["EN"], limit=25, sort=sort, now=NOW)
        assert len(found) == 25 and {h.item_id for h in found} < set(en)
    # A clock that stepped back: the newest row was fetched before the cutoff.
    conn.execute("UPDATE items SET fetched = '2026-01-01T00:00:00Z' WHERE id = ?", (en[-1],))
    found = archive.search(conn, "kursk", since=timedelta(days=1), limit=29, now=NOW)
    assert [h.item_id for h in found] == en[-2::-1]
    # Nothing stored since the cutoff: no work at all.
    assert archive.search(conn, "kursk", since=NOW + timedelta(days=1), now=NOW) == []


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
    # The order the store follows: out of the index, change the row, index it again.
    assert archive.delete_items(conn, [item, item + 1]) == [item]
    conn.execute(
        "UPDATE items SET title = 'Belgorod', text = 'Shelling in Belgorod.' WHERE id = ?", (item,)
    )
    archive.index_stored(conn, [item])
    assert archive.search(conn, "kursk", now=NOW) == []
    assert [h.item_id for h in archive.search(conn, "belgorod", now=NOW)] == [item]
    archive.delete_item(conn, item)
    assert archive.search(conn, "belgorod", now=NOW) == []
    assert archive.reindex(conn) == 1  # the item row is still there: indexed again from items
    assert [h.item_id for h in archive.search(conn, "belgorod", now=NOW)] == [item]
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
    assert (kept.matched, kept.removed, kept.kept) == (0, 0, 1)  # without prune, rows stay
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


# The search before the contentless index (schema step 5), verbatim but for the table's name:
# bm25 over every hit, joined with items before sorting.
OLD_SELECT = (
    "SELECT f.rowid, bm25(old_fts, 2.0, 1.0, 0.0) AS rank, i.title, i.text, i.url, i.published, "
    "i.fetched, i.language FROM old_fts AS f JOIN items AS i ON i.id = f.rowid "
    "WHERE old_fts MATCH ?"
)
WORDS = [
    "troops",
    "border",
    "missile",
    "talks",
    "drones",
    "kursk",
    "sanctions",
    "ceasefire",
    "oil",
    "prices",
    "river",
    "city",
]


def old_search(
    conn: sqlite3.Connection,
    fts: str,
    since: str | None,
    topic: str | None,
    languages: tuple[str, ...] | None,
) -> list[tuple[int, float]]:
    sql, params = OLD_SELECT, [fts]
    if since is not None:
        sql += " AND i.fetched >= ?"
        params.append(since)
    if topic is not None:
        sql += " AND f.rowid IN (SELECT item_id FROM matches WHERE topic = ?)"
        params.append(topic)
    if languages is not None:
        sql += f" AND f.language IN ({', '.join('?' * len(languages))})"
        params.extend(languages)
    return [(int(r[0]), -float(r[1])) for r in conn.execute(sql + " ORDER BY rank", params)]


def corpus(rng: random.Random) -> sqlite3.Connection:
    conn = make_db()
    conn.execute(
        "CREATE VIRTUAL TABLE old_fts USING fts5(title, body, language UNINDEXED, "
        f'tokenize="{FTS5_TOKENIZE}")'
    )
    for _ in range(300):
        title = " ".join(rng.choices(WORDS, k=rng.randint(1, 4))).capitalize()
        text = ". ".join(" ".join(rng.choices(WORDS, k=rng.randint(3, 12))) for _ in range(4))
        language = rng.choice(["en", "en-US", "ru", None])
        # Mostly in storage order, sometimes a clock step back.
        fetched = NOW - timedelta(hours=300 - len(conn.execute("SELECT id FROM items").fetchall()))
        fetched -= timedelta(hours=rng.choice([0, 0, 0, 0, 40]))
        item = add_item(conn, title, text, language=language, fetched=fetched)
        conn.execute(
            "INSERT INTO old_fts(rowid, title, body, language) VALUES (?, ?, ?, ?)",
            (item, *archive.index_values(title, text), normalise_language(language or "") or None),
        )
        if rng.random() < 0.3:
            conn.execute(
                "INSERT INTO matches (item_id, topic, matched_at) VALUES (?, 'war', 'x')", (item,)
            )
    return conn


@pytest.mark.parametrize("seed", [1, 2])
def test_results_are_those_of_the_old_search_in_either_order(seed: int) -> None:
    rng = random.Random(seed)
    conn = corpus(rng)
    queries = [
        "troops AND border AND NOT talks",
        "(missile OR drones) AND kursk",
        '"oil prices" AND sanctions',
        "title:ceasefire AND river",
        "NEAR(city river, 3) OR border*",
    ]
    filters: list[tuple[timedelta | None, str | None, list[str] | None]] = [
        (None, None, None),
        (timedelta(days=5), None, None),
        (None, "war", None),
        (None, None, ["ru"]),
        (timedelta(days=8), "war", ["en"]),
    ]
    checked = 0
    for query in queries:
        fts = compile_query(query).fts
        for since, topic, languages in filters:
            cutoff = archive.format_ts(NOW - since) if since else None
            langs = tuple(languages) if languages else None
            old = old_search(conn, fts, cutoff, topic, langs)
            by_rank = sorted(old, key=lambda r: (-r[1], -r[0]))  # old order, ties newest first
            by_id = sorted(old, key=lambda r: -r[0])
            for limit in (5, 20, None):
                orders: list[tuple[archive.Sort, list[tuple[int, float]]]] = [
                    ("relevance", by_rank),
                    ("newest", by_id),
                ]
                for sort, expected in orders:
                    hits = archive.search(
                        conn,
                        query,
                        since=since,
                        limit=limit,
                        topic=topic,
                        languages=languages,
                        sort=sort,
                        now=NOW,
                    )
                    got = [(h.item_id, h.score) for h in hits]
                    assert [i for i, _ in got] == [i for i, _ in expected[:limit]], (query, sort)
                    want = [s if sort == "relevance" else None for _, s in expected[:limit]]
                    assert [s for _, s in got] == pytest.approx(want)
                    checked += len(got)
    assert checked > 1000  # the corpus gives each query and filter real hits
