"""Developments end to end: articles served by the newsroom, clustered in the poll transaction,
alerted once per development, listed by `monitor developments --json`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.clock import FakeClock
from monitor.config import Config, load_config
from monitor.service import open_pipeline
from monitor.store import Store
from tests.newsroom import Entry, Newsroom
from tests.newsroom_content import make_story, render_article, story_entry

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

TROOPS_1 = (
    "North Korean troops deployed to Russia's Kursk region",
    [
        "About 3,000 North Korean soldiers have arrived in the Kursk region of Russia, Ukraine's "
        "military intelligence agency said on Tuesday, the first confirmation of their deployment "
        "near the front line.",
        "The agency said the troops were moved by train from Vladivostok and were being issued "
        "Russian uniforms and equipment at training grounds outside Kursk.",
        "The Kremlin declined to comment. Pyongyang and Moscow signed a mutual defence treaty in June.",
    ],
)
TROOPS_2 = (
    "Ukraine says thousands of North Korean soldiers reached Kursk",
    [
        "Ukrainian military intelligence said on Tuesday that some 3,000 soldiers from North Korea "
        "had reached Russia's Kursk region, where Ukrainian forces hold territory.",
        "According to the intelligence agency, the North Korean troops travelled by train from "
        "Vladivostok and received Russian uniforms and equipment near Kursk.",
        "Moscow has not confirmed the deployment; the Kremlin declined to comment.",
    ],
)
TREATY = (
    "Putin signs law ratifying defence pact with North Korea",
    [
        "President Vladimir Putin signed a law on Saturday ratifying a mutual defence treaty with "
        "North Korea, the Kremlin said, completing Russia's approval of the pact.",
        "The treaty, agreed during Putin's visit to Pyongyang in June, obliges both countries to "
        "provide military assistance if either is attacked.",
        "The State Duma and the Federation Council approved the law earlier this month.",
    ],
)


def serve(
    room: Newsroom, path: str, title: str, paragraphs: list[str], seed: int, site: str
) -> Entry:
    story = make_story(seed, "en", title=title, paragraphs=paragraphs, site_name=site)
    url = room.url(path)
    room.add_page(path, render_article(story, url))
    return story_entry(story, url, guid=url)


def config_for(tmp_path: Path, room: Newsroom, receiver_url: str | None = None) -> Config:
    channel = f'channels:\n  chat: "{receiver_url}"\n' if receiver_url else ""
    notify = "\n    notify: [chat]" if receiver_url else ""
    text = (
        "workers: 0\ndefaults: {timeout: 5s, alert_max_age: null}\n"
        f"feeds:\n  - {{name: Wire, url: '{room.url('/wire.xml')}'}}\n"
        f"  - {{name: Daily, url: '{room.url('/daily.xml')}'}}\n"
        f"{channel}topics:\n  - name: dprk\n    query: '\"north korea*\" OR pyongyang'{notify}\n"
    )
    path = tmp_path / "config" / "monitor.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def one_pass(config: Config, clock: FakeClock) -> None:
    async def go() -> None:
        async with open_pipeline(config, clock=clock, workers=0) as pipeline:
            await pipeline.run_once(config.feeds)

    asyncio.run(go())


def developments_json(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, object]]:
    capsys.readouterr()
    try:
        main(["developments", "--json", "--config", str(config.path)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_reports_duplicates_and_a_separate_event(
    newsroom: Newsroom, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = serve(newsroom, "/wire/troops", *TROOPS_1, seed=1, site="Wire Service")
    newsroom.add_feed("/wire.xml", [first])
    config = config_for(tmp_path, newsroom)
    clock = FakeClock(START)
    one_pass(config, clock)

    # Later: another outlet's report, the wire story republished under another URL, another event.
    clock.advance(timedelta(hours=2))
    report = serve(newsroom, "/daily/kursk-troops", *TROOPS_2, seed=2, site="Daily Paper")
    copy = serve(newsroom, "/daily/wire-copy", *TROOPS_1, seed=3, site="Daily Paper")
    treaty = serve(newsroom, "/daily/treaty", *TREATY, seed=4, site="Daily Paper")
    newsroom.add_feed("/daily.xml", [report, copy, treaty])
    one_pass(config, clock)

    found = developments_json(config, capsys)
    by_title = {d["title"]: d for d in found}
    assert set(by_title) == {TROOPS_1[0], TREATY[0]}
    troops = by_title[TROOPS_1[0]]
    relations = [(i["url"], i["relation"]) for i in troops["items"]]  # type: ignore[index, union-attr]
    assert relations == [
        (newsroom.url("/wire/troops"), "first"),
        (newsroom.url("/daily/kursk-troops"), "report"),
        (newsroom.url("/daily/wire-copy"), "duplicate"),
    ]
    assert troops["first_seen"].endswith("Z") and troops["merged_into"] is None  # type: ignore[union-attr]
    (treaty_item,) = by_title[TREATY[0]]["items"]  # type: ignore[misc]
    assert treaty_item["relation"] == "first" and treaty_item["feed"] == "Daily"


def test_one_alert_per_development_not_per_outlet(newsroom: Newsroom, tmp_path: Path) -> None:
    first = serve(newsroom, "/wire/troops", *TROOPS_1, seed=1, site="Wire Service")
    newsroom.add_feed("/wire.xml", [first])
    report = serve(newsroom, "/daily/kursk-troops", *TROOPS_2, seed=2, site="Daily Paper")
    treaty = serve(newsroom, "/daily/treaty", *TREATY, seed=4, site="Daily Paper")
    newsroom.add_feed("/daily.xml", [report, treaty])
    config = config_for(tmp_path, newsroom, receiver_url="json://127.0.0.1:9/never")
    one_pass(config, FakeClock(START))
    store = Store.open(config.database, create=False)
    try:
        rows = store.conn.execute(
            "SELECT o.key, d.title FROM outbox o JOIN developments d ON d.id = o.development_id"
        ).fetchall()
    finally:
        store.close()
    # three articles, two developments, two alerts (whichever troops report was stored first)
    assert len(rows) == 2
    assert TREATY[0] in {r["title"] for r in rows}
    assert {r["title"] for r in rows} & {TROOPS_1[0], TROOPS_2[0]}


def test_rematch_builds_developments_silently(
    newsroom: Newsroom, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = [
        serve(newsroom, "/wire/troops", *TROOPS_1, seed=1, site="Wire Service"),
        serve(newsroom, "/wire/troops-2", *TROOPS_2, seed=2, site="Wire Service"),
        serve(newsroom, "/wire/treaty", *TREATY, seed=4, site="Wire Service"),
    ]
    newsroom.add_feed("/wire.xml", entries)
    newsroom.add_feed("/daily.xml", [])
    path = tmp_path / "config" / "monitor.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        f"workers: 0\nfeeds:\n  - {{name: Wire, url: '{newsroom.url('/wire.xml')}'}}\n"
        "channels:\n  chat: 'json://127.0.0.1:9/x'\n",
        encoding="utf-8",
    )
    one_pass(load_config(path), FakeClock(START))  # no topics yet: nothing matched
    with path.open("a", encoding="utf-8") as handle:
        handle.write(
            "topics:\n  - {name: dprk, query: 'pyongyang OR \"north korea*\"', notify: [chat]}\n"
        )
    capsys.readouterr()
    try:
        main(["rematch", "--config", str(path)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    assert "dprk: 3 items match (3 new), 2 developments" in capsys.readouterr().out
    config = load_config(path)
    found = developments_json(config, capsys)
    assert len(found) == 2
    store = Store.open(config.database, create=False)
    try:
        assert store.count("outbox") == 0  # history is complete, and nobody was alerted
    finally:
        store.close()


def test_a_report_alert_names_other_outlets_not_its_own(newsroom: Newsroom, tmp_path: Path) -> None:
    newsroom.add_feed("/wire.xml", [serve(newsroom, "/w/1", *TROOPS_1, seed=1, site="Wire")])
    newsroom.add_feed("/daily.xml", [])
    config = config_for(tmp_path, newsroom, receiver_url="json://127.0.0.1:9/never")
    config.path.write_text(
        config.path.read_text(encoding="utf-8") + "    alert_on_reports: true\n", encoding="utf-8"
    )
    config = load_config(config.path)
    clock = FakeClock(START)
    one_pass(config, clock)
    clock.advance(timedelta(hours=1))  # the same outlet's follow-up, then another outlet's
    newsroom.update_feed(
        "/wire.xml", prepend=[serve(newsroom, "/w/2", *TROOPS_2, seed=2, site="Wire")]
    )
    one_pass(config, clock)
    clock.advance(timedelta(hours=1))
    troops_3 = (
        "Kyiv: North Korean soldiers now in Kursk",
        [
            "Some 3,000 North Korean soldiers are in Russia's Kursk region, Ukraine's military "
            "intelligence agency said on Tuesday, near where Ukrainian forces hold ground.",
            "The soldiers came by train from Vladivostok, the agency said, and were handed Russian "
            "uniforms near Kursk. The Kremlin declined to comment on the North Korean deployment.",
        ],
    )
    newsroom.update_feed(
        "/daily.xml", entries=[serve(newsroom, "/d/1", *troops_3, seed=3, site="Daily")]
    )
    one_pass(config, clock)

    store = Store.open(config.database, create=False)
    try:
        rows = store.conn.execute("SELECT payload FROM outbox ORDER BY id").fetchall()
    finally:
        store.close()
    payloads = [json.loads(r["payload"]) for r in rows]
    assert [(p["relation"], p["item"]["outlet"], p["other_outlets"]) for p in payloads] == [
        ("first", "Wire", []),
        ("report", "Wire", []),  # not "also reported by: Wire"
        ("report", "Daily", ["Wire"]),
    ]
