"""`monitor search`: the order options and the stable JSON of a hit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.config import load_config
from monitor.match import archive
from monitor.store import Store

NOW = datetime.now(UTC).replace(microsecond=0)
HIT_KEYS = [
    "id",
    "url",
    "title",
    "published",
    "fetched",
    "language",
    "score",
    "terms",
    "snippet",
    "outlet",
]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config" / "monitor.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("feeds: []\n", encoding="utf-8")
    store = Store.open(load_config(path).database)
    docs = [
        ("Pyongyang talks", "Pyongyang, Pyongyang and Pyongyang again.", timedelta(days=20)),
        ("Weather", "Long report on rain and wind. " * 20 + "Also Pyongyang.", timedelta(days=2)),
    ] + [(f"Markets {n}", "Nothing about the capital.", timedelta(days=1)) for n in range(10)]
    with store.transaction():
        for n, (title, text, age) in enumerate(docs, start=1):
            fetched = archive.format_ts(NOW - age)
            store.conn.execute(
                "INSERT INTO items (id, key, url, title, text, fetched, published, language) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'en')",
                (n, f"k{n}", f"https://news.example/{n}", title, text, fetched, fetched),
            )
            archive.index_item(store.conn, n, title, text)
    store.close()
    return path


def search(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> Any:
    capsys.readouterr()
    try:
        main(["search", *args, "--json", "--config", str(config)])
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_newest_first_by_default_relevance_on_request(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newest = search(capsys, config_path, "pyongyang")
    assert [h["id"] for h in newest] == [2, 1]
    relevant = search(capsys, config_path, "pyongyang", "--sort", "relevance")
    assert [h["id"] for h in relevant] == [1, 2]
    assert [list(h) for h in newest] == [HIT_KEYS, HIT_KEYS]
    assert [h["score"] for h in newest] == [None, None]  # ranking is what --sort relevance does
    hit = relevant[0]
    assert hit["url"] == "https://news.example/1" and hit["language"] == "en"
    assert hit["terms"] == ["pyongyang"] and hit["snippet"].startswith("**Pyongyang**")
    assert hit["score"] > relevant[1]["score"] > 0
    assert hit["fetched"] == archive.format_ts(NOW - timedelta(days=20))
    assert search(capsys, config_path, "pyongyang", "--since", "7d", "--sort", "relevance") == [
        relevant[1]
    ]


def test_an_unknown_order_is_refused(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["search", "pyongyang", "--sort", "date", "--config", str(config_path)])
    assert caught.value.code == 2
    assert "date" in capsys.readouterr().err


def test_the_cli_offers_exactly_the_orders_the_archive_knows() -> None:
    # typer needs an enum for the choice; it must not drift from what archive.search accepts.
    from monitor.cli_topics import SearchOrder

    assert tuple(order.value for order in SearchOrder) == archive.SORTS


def test_a_result_says_when_it_was_first_seen_published_and_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --since filters on first seen: a result published yesterday but seen 10 minutes ago
    # must say so, and name its outlet (declared site name, else the feed's name, else host).
    path = tmp_path / "monitor.yaml"
    path.write_text('feeds: [{name: "Ledger (world)", url: "https://l.example/f"}]\n')
    store = Store.open(load_config(path).database)
    with store.transaction():
        feed_id = store.conn.execute(
            "INSERT INTO feeds (name, url) VALUES ('Ledger (world)', 'https://l.example/f')"
        ).lastrowid
        rows = [
            (1, "Kursk one", None, feed_id),
            (2, "Kursk two", "The Daily", feed_id),
            (3, "Kursk three", None, None),
        ]
        for n, title, site, feed in rows:
            store.conn.execute(
                "INSERT INTO items (id, key, url, title, text, fetched, published, language, "
                "site_name, feed_id) VALUES (?, ?, ?, ?, 'x', ?, ?, 'en', ?, ?)",
                (
                    n,
                    f"k{n}",
                    f"https://www.host{n}.example/a",
                    title,
                    archive.format_ts(datetime.now(UTC) - timedelta(minutes=10)),
                    archive.format_ts(datetime(2026, 3, 1, 9, tzinfo=UTC)),
                    site,
                    feed,
                ),
            )
            archive.index_item(store.conn, n, title, "x")
    store.close()
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["search", "kursk", "--since", "30m", "--config", str(path)])
    assert done.value.code in (0, None)
    text = " ".join(capsys.readouterr().out.split())
    assert "3 results for kursk" in text
    assert "Kursk three seen 10m ago · published 2026-03-01 · host3.example · en · #3" in text
    assert "Kursk two seen 10m ago · published 2026-03-01 · The Daily · en · #2" in text
    assert "Kursk one seen 10m ago · published 2026-03-01 · Ledger (world) · en · #1" in text
    outlets = [h["outlet"] for h in search(capsys, path, "kursk")]
    assert outlets == ["host3.example", "The Daily", "Ledger (world)"]
