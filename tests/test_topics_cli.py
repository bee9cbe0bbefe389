"""Topic commands end to end: live matching while polling, search, topics, topics test, rematch."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.clock import FakeClock
from monitor.config import load_config
from monitor.service import open_pipeline
from tests.newsroom import Newsroom
from tests.newsroom_content import make_story, render_article, story_entry

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ARTICLES = {
    "/en/troops": (
        "en",
        "North Korean troops arrive in Kursk",
        [
            "Thousands of soldiers from North Korea arrived in the Kursk region, officials in Moscow said."
        ],
    ),
    "/ru/troops": (
        "ru",
        "Военные КНДР прибыли в Курскую область",
        ["Министерство обороны России сообщило, что военные из КНДР прибыли в Курскую область."],
    ),
    "/ko/troops": (
        "ko",
        "북한군 러시아 쿠르스크 도착",
        [
            "북한군은 러시아 쿠르스크 지역에 도착했다고 국방부가 밝혔다. 군 당국은 북한의 파병이 처음이라고 말했다."
        ],
    ),
    "/en/football": (
        "en",
        "Russia beat North Korea at football",
        ["Russia's national football team beat North Korea 3-0 in a friendly match in Moscow."],
    ),
}


@pytest.fixture
def polled(newsroom: Newsroom, tmp_path: Path) -> Path:
    entries = []
    for seed, (path, (lang, title, paragraphs)) in enumerate(ARTICLES.items()):
        story = make_story(seed, lang, title=title, paragraphs=paragraphs)
        newsroom.add_page(path, render_article(story, newsroom.url(path)))
        entries.append(story_entry(story, newsroom.url(path), guid=newsroom.url(path)))
    newsroom.add_feed("/mixed.xml", entries)
    config_path = tmp_path / "config" / "monitor.yaml"
    config_path.parent.mkdir(parents=True)
    config_path.write_text(
        f"""workers: 0
feeds:
  - {{name: Mixed, url: '{newsroom.url("/mixed.xml")}'}}
topics:
  - name: russia-dprk-military
    all:
      - ["north korea", кндр, 북한]
      - [russia, moscow, россия, 러시아]
      - [troops, soldiers, военные, 군]
    none: [football]
  - name: korean-only
    query: 북한
    languages: [ko]
""",
        encoding="utf-8",
    )
    config = load_config(config_path)

    async def go() -> None:
        async with open_pipeline(config, clock=FakeClock(START), workers=0) as pipeline:
            await pipeline.run_once(config.feeds)

    asyncio.run(go())
    return config_path


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    try:
        main([*args, "--json"])
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_live_matching_in_three_languages(polled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = cli_json(capsys, "items", "--config", str(polled))
    topics = {item["title"]: item["topics"] for item in items}
    assert topics["North Korean troops arrive in Kursk"] == ["russia-dprk-military"]
    assert topics["Военные КНДР прибыли в Курскую область"] == ["russia-dprk-military"]
    assert topics["북한군 러시아 쿠르스크 도착"] == ["korean-only", "russia-dprk-military"]
    assert topics["Russia beat North Korea at football"] == []  # `none: [football]`


def test_search_ranks_and_highlights(polled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hits = cli_json(capsys, "search", "россия AND кндр", "--config", str(polled))
    assert [h["title"] for h in hits] == ["Военные КНДР прибыли в Курскую область"]
    assert "**России**" in hits[0]["snippet"]  # highlighted on the original word form
    hits = cli_json(capsys, "search", 'title:kursk OR "north korea"', "--config", str(polled))
    assert len(hits) == 2
    hits = cli_json(
        capsys, "search", "north", "--topic", "russia-dprk-military", "--config", str(polled)
    )
    assert [h["title"] for h in hits] == ["North Korean troops arrive in Kursk"]


def test_bad_search_query_is_a_clear_error(
    polled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["search", '"unclosed phrase', "--config", str(polled)])
    assert caught.value.code == 2
    assert "bad query" in capsys.readouterr().err


def test_topics_lists_counts_and_compiled_queries(
    polled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {r["name"]: r for r in cli_json(capsys, "topics", "--config", str(polled))}
    assert rows["russia-dprk-military"]["total"] == 3 and rows["russia-dprk-military"]["day"] == 0
    assert rows["korean-only"]["total"] == 1
    assert "NOT" in rows["russia-dprk-military"]["query"]


def test_topics_test_uses_the_config_on_disk_without_recording(
    polled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = polled.read_text(encoding="utf-8")
    polled.write_text(text + "  - {name: football, query: football}\n", encoding="utf-8")
    hits = cli_json(
        capsys, "topics", "test", "football", "--since", "3650d", "--config", str(polled)
    )
    assert [h["title"] for h in hits] == ["Russia beat North Korea at football"]
    hits = cli_json(
        capsys, "topics", "test", "--query", "курск*", "--since", "3650d", "--config", str(polled)
    )
    assert [h["title"] for h in hits] == ["Военные КНДР прибыли в Курскую область"]
    rows = {r["name"]: r for r in cli_json(capsys, "topics", "--config", str(polled))}
    assert rows["football"]["total"] == 0  # trying a topic records nothing

    capsys.readouterr()
    try:
        main(["rematch", "--topic", "football", "--config", str(polled)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    assert "football: 1 item matches (1 new), 1 development" in capsys.readouterr().out
    rows = {r["name"]: r for r in cli_json(capsys, "topics", "--config", str(polled))}
    assert rows["football"]["total"] == 1

    # Narrowed: the match it made stays in its history, and rematch says so.
    text = polled.read_text(encoding="utf-8")
    polled.write_text(text.replace("query: football}", "query: cricket}"), encoding="utf-8")
    try:
        main(["rematch", "--topic", "football", "--config", str(polled)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    out = capsys.readouterr().out
    assert "football: 0 items match (0 new), 1 development" in out
    assert "1 earlier match that the topic as now written would not make stay in its" in out
