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
HIT_KEYS = ["id", "url", "title", "published", "fetched", "language", "score", "terms", "snippet"]


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
