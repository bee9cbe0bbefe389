"""Feed parsing and the language of feed-text entries run on the process pool, like extraction."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.clock import FakeClock
from monitor.config import load_config
from monitor.pipeline import Extractor, PollOutcome
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
