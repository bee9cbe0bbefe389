"""Feed parsing and the language of feed-text entries run on the process pool, like extraction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.clock import FakeClock
from monitor.config import load_config
from monitor.pipeline import PollOutcome
from monitor.service import open_pipeline
from monitor.store import Store
from tests.newsroom import Entry, Newsroom

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
