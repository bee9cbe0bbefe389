"""Feed parsing runs on the process pool, like extraction; languages are detected in this process,
a poll's articles at once, with their matching."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.clock import FakeClock
from monitor.config import load_config
from monitor.language import detect_language
from monitor.match.percolate import MatchDoc, Matcher, TopicSpec
from monitor.pipeline import Extractor, PollOutcome, detect_and_match
from monitor.records import Article, FeedEntry
from monitor.service import open_pipeline
from monitor.store import Store
from tests import pool_owner
from tests.newsroom import Entry, Newsroom

ROOT = Path(__file__).resolve().parents[1]
# What the daemon needs and an extraction worker must not carry (memory: see bench/README.md).
DAEMON_ONLY = {"apprise", "apscheduler", "pydantic", "sqlite_utils", "httpx", "yaml"}

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ENTRIES = {
    "en": (
        "Council approves the harbour budget",
        "The city council approved the budget for the new harbour on Tuesday after a long "
        "debate about the cost of the tram line and the schools.",
    ),
    "ru": (
        "Совет утвердил бюджет порта",
        "Городской совет во вторник утвердил бюджет нового порта после долгого обсуждения "
        "стоимости трамвайной линии и школ.",
    ),
    "ko": (
        "시의회, 항구 예산 승인",
        "시의회는 화요일 트램 노선과 학교 비용에 대한 긴 논의 끝에 새 항구 예산을 승인했다.",
    ),
}


@pytest.mark.parametrize("workers", [0, 1])
def test_feed_text_entries_get_their_language_from_the_pool(
    newsroom: Newsroom, tmp_path: Path, workers: int
) -> None:
    url = newsroom.add_feed(
        "/feed.xml",
        [
            Entry(title=title, link=f"https://news.example/{lang}", guid=lang, summary=summary)
            for lang, (title, summary) in ENTRIES.items()
        ],
    )
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"database: m.db\nworkers: {workers}\nfeeds:\n"
        f"  - {{name: F, url: '{url}', fetch_article: false}}\n",
        encoding="utf-8",
    )
    config = load_config(path)

    async def go() -> list[PollOutcome]:
        async with open_pipeline(config, clock=FakeClock(START), workers=workers) as pipeline:
            return await pipeline.run_once(config.feeds)

    (outcome,) = asyncio.run(go())
    assert (outcome.status, outcome.new) == ("ok", 3)
    store = Store.open(config.database, create=False)
    try:
        stored = {i["url"]: (i["language"], i["text_source"]) for i in store.recent_items()}
    finally:
        store.close()
    assert stored == {f"https://news.example/{lang}": (lang, "feed") for lang in ENTRIES}


def test_workers_import_their_stages_and_not_the_daemon() -> None:
    extractor = Extractor(1)
    try:
        loop = asyncio.new_event_loop()
        try:
            page = loop.run_until_complete(
                extractor.extract(
                    b"<html lang='en'><body><article><p>"
                    + b"The council met on Tuesday to approve the harbour budget. " * 5
                    + b"</p></article></body></html>",
                    "https://news.example/a",
                    "text/html",
                )
            )
        finally:
            loop.close()
        packages = extractor._pool.submit(pool_owner.loaded_packages).result()
    finally:
        extractor.close()
    assert page.language == "en"  # detected in this process: the workers hold no model
    assert {"trafilatura", "feedparser", "lxml"} <= packages
    assert not packages & (DAEMON_ONLY | {"py3langid", "numpy"})


@pytest.mark.parametrize("workers", [0, 2])
def test_the_extractor_starts_its_workers_and_model_before_the_first_page(workers: int) -> None:
    from monitor import language

    extractor = Extractor(workers)
    try:
        idle = dict(getattr(extractor._pool, "_processes", None) or {})
        loop = asyncio.new_event_loop()
        try:
            startup = loop.run_until_complete(extractor.ready())
        finally:
            loop.close()
        # Every worker is up (spawned, stages imported) though no page was handed over yet.
        processes = getattr(extractor._pool, "_processes", None) or {}
        alive = [p for p in processes.values() if p.is_alive()]
    finally:
        extractor.close()
    assert idle == {}  # nothing starts them before they are asked for
    assert language._loaded, "the language model is loaded by the time the extractor is ready"
    if workers:
        assert len(alive) == workers
        assert startup > 0.05 * workers  # each spent CPU importing trafilatura and lxml
    else:
        assert (alive, startup) == ([], 0.0)  # a thread pool has nothing to start


def test_a_pass_over_unchanged_feeds_starts_no_worker(newsroom: Newsroom, tmp_path: Path) -> None:
    url = newsroom.add_feed("/feed.xml", [])
    path = tmp_path / "monitor.yaml"
    path.write_text(f"database: m.db\nworkers: 2\nfeeds:\n  - {{name: F, url: '{url}'}}\n")
    config = load_config(path)

    async def go() -> tuple[list[PollOutcome], dict[int, object]]:
        async with open_pipeline(config, clock=FakeClock(START)) as pipeline:
            outcomes = await pipeline.run_once(config.feeds)
            return outcomes, dict(getattr(pipeline.extractor._pool, "_processes", None) or {})

    (first,), _ = asyncio.run(go())  # the feed is parsed on the pool
    (again,), processes = asyncio.run(go())
    assert (first.status, again.status) == ("ok", "unchanged")
    assert processes == {}  # `monitor once` on unchanged feeds pays for no worker start-up


def test_the_daemon_does_not_import_the_extraction_code() -> None:
    code = (
        "import sys, monitor.cli, monitor.daemon; "
        "print(sorted({'trafilatura', 'lxml', 'htmldate', 'justext'} & set(sys.modules)))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"


@pytest.mark.parametrize("workers", [0, 2])
def test_features_of_a_poll_come_back_in_order_from_the_shared_trips(workers: int) -> None:
    from monitor.cluster.features import features

    articles = [(title, summary, lang) for lang, (title, summary) in ENTRIES.items()]
    articles += [(f"Report {n}", f"The harbour budget, part {n}. " * n, "en") for n in range(1, 6)]
    extractor = Extractor(workers)
    try:
        loop = asyncio.new_event_loop()
        try:
            found = loop.run_until_complete(extractor.features_many(articles))
            none = loop.run_until_complete(extractor.features_many([]))
        finally:
            loop.close()
    finally:
        extractor.close()
    assert found == [features(*article).to_json() for article in articles]
    assert none == []


def _article(key: str, title: str, text: str, source: str, summary: str = "") -> Article:
    entry = FeedEntry(key, key, key, None, title, summary, None, None, None, "h" + key)
    return Article(entry, title, text, source, None, None, None, None, None)


def test_a_polls_languages_are_detected_with_its_matching_as_page_by_page() -> None:
    ru_title, ru_text = ENTRIES["ru"]
    en_title, en_text = ENTRIES["en"]
    fetched = [
        # a page: its text decides; too short to tell, its <html lang> does
        (_article("p1", ru_title, ru_text, "page"), "en"),
        (_article("p2", "Budget", "OK", "page"), "ko"),
        # the feed's title and summary (no fallback), for entries whose page gave nothing
        (_article("f1", en_title, en_text, "feed", summary=en_text), None),
        (_article("f2", ru_title, ru_text, "feed", summary=ru_text), "en"),
    ]
    topics = [TopicSpec("budget-en", "budget OR бюджет", ("en",)), TopicSpec("any", "бюджет")]
    with Matcher(topics) as matcher:
        articles, matches, indexed = detect_and_match(matcher, fetched)
        expected_languages = [
            detect_language(ru_text, "en"),
            detect_language("OK", "ko"),
            detect_language(f"{en_title}\n{en_text}"),
            detect_language(f"{ru_title}\n{ru_text}"),
        ]
        assert [a.language for a in articles] == expected_languages == ["ru", "ko", "en", "ru"]
        assert [replace(a, language=None) for a in articles] == [a for a, _ in fetched]
        docs = [MatchDoc(a.entry.key, a.title, a.text, a.language) for a in articles]
        assert (matches, indexed) == matcher.match_indexed(docs)
    assert {k: [m.topic for m in found] for k, found in matches.items()} == {
        "p1": ["any"],
        "p2": [],  # Korean by its <html lang>: not for the English-only topic
        "f1": ["budget-en"],
        "f2": ["any"],
    }
