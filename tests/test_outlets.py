"""The outlet alerts, digests and "also reported by" name: the page's site name, else the
configured feed name, else the host; feeds served from one host are not merged into one outlet."""

from __future__ import annotations

import html
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.alert.digest import development_outlets
from monitor.clock import FakeClock
from monitor.config import Config, load_config
from monitor.store import Store
from monitor.store.outlets import declared_site_name, outlet_name, page_host
from monitor.store.schema import MIGRATIONS, migrate
from tests.newsroom import Entry, Newsroom
from tests.test_developments import TROOPS_1, TROOPS_2, one_pass

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TROOPS_3 = (
    "Kyiv: North Korean soldiers now in Kursk",
    [
        "Some 3,000 North Korean soldiers are in Russia's Kursk region, Ukraine's military "
        "intelligence agency said on Tuesday, near where Ukrainian forces hold ground.",
        "The soldiers came by train from Vladivostok, the agency said, and were handed Russian "
        "uniforms near Kursk. The Kremlin declined to comment on the North Korean deployment.",
    ],
)
TROOPS_4 = (
    "North Korean troops arrive in Kursk, Ukrainian intelligence says",
    [
        "Around 3,000 North Korean troops have reached Russia's Kursk region, Ukraine's military "
        "intelligence agency said on Tuesday, confirming their deployment near the front.",
        "The North Korean soldiers travelled by train from Vladivostok and were given Russian "
        "uniforms and equipment near Kursk, the agency said. The Kremlin declined to comment.",
    ],
)
# Four feeds of one server (one host); their pages declare no site name.
FEEDS = {"Wire": TROOPS_1, "Daily": TROOPS_2, "Regional Post": TROOPS_3, "Evening Star": TROOPS_4}


def bare_page(title: str, paragraphs: list[str]) -> str:
    """An article page with no og:site_name, no JSON-LD publisher, no site in its <title>."""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title></head><body><article><h1>{html.escape(title)}</h1>{body}</article></body></html>"
    )


def write_config(tmp_path: Path, room: Newsroom) -> Config:
    feeds = "".join(
        f"  - {{name: {name}, url: '{room.url(f'/feed-{n}.xml')}'}}\n"
        for n, name in enumerate(FEEDS)
    )
    text = (
        "workers: 0\ndefaults: {timeout: 5s, alert_max_age: null}\n"
        f"feeds:\n{feeds}channels:\n  chat: json://127.0.0.1:9/never\n"
        "topics:\n  - name: dprk\n    query: '\"north korea*\" OR pyongyang'\n"
        "    notify: [chat]\n    alert_on_reports: true\n"
    )
    path = tmp_path / "config" / "monitor.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_feeds_of_one_host_are_named_by_their_config_names(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    for n, (title, paragraphs) in enumerate(FEEDS.values()):
        newsroom.add_feed(f"/feed-{n}.xml", [])
        newsroom.add_page(f"/a/{n}", bare_page(title, paragraphs))
    config = write_config(tmp_path, newsroom)
    clock = FakeClock(START)
    for n, (title, _) in enumerate(FEEDS.values()):  # one outlet an hour, in config order
        link = newsroom.url(f"/a/{n}")
        newsroom.set_entries(f"/feed-{n}.xml", [Entry(title=title, link=link, guid=link)])
        one_pass(config, clock)
        clock.advance(timedelta(hours=1))

    store = Store.open(config.database, create=False)
    try:
        rows = store.conn.execute("SELECT payload FROM outbox ORDER BY id").fetchall()
        assert (
            store.conn.execute("SELECT count(*) FROM items WHERE site_name IS NOT NULL").fetchone()[
                0
            ]
            == 0
        )
        (dev_id,) = {
            r[0] for r in store.conn.execute("SELECT development_id FROM development_items")
        }
        digest_outlets = development_outlets(store.conn, [dev_id])
    finally:
        store.close()
    payloads = [json.loads(r["payload"]) for r in rows]
    assert [(p["item"]["outlet"], p["other_outlets"]) for p in payloads] == [
        ("Wire", []),
        ("Daily", ["Wire"]),
        ("Regional Post", ["Daily", "Wire"]),
        ("Evening Star", ["Daily", "Regional Post", "Wire"]),  # not one "127.0.0.1" for all
    ]
    assert digest_outlets == {str(dev_id): list(FEEDS)}


def test_a_declared_site_name_wins_and_names_dedupe() -> None:
    assert (
        declared_site_name("The Daily Ledger", "https://www.ledger.example/a/1")
        == "The Daily Ledger"
    )
    # Extraction's fallback for a page that names no site: the host, which is not a name.
    assert declared_site_name("ledger.example", "https://www.ledger.example/a/1") is None
    assert declared_site_name(None, "https://ledger.example/a/1") is None
    assert outlet_name(None, "Ledger (world)", "https://ledger.example/a/1") == "Ledger (world)"
    assert outlet_name(None, None, "https://www.ledger.example/a/1") == "ledger.example"
    assert page_host("http://[::1/broken") is None


def test_upgrade_forgets_stored_hosts_but_keeps_declared_names(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, step in enumerate(MIGRATIONS[:6], start=1):  # a database of the last version
        conn.execute("BEGIN")
        step(conn)
        conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    conn.execute("INSERT INTO feeds (id, name, url) VALUES (1, 'Regional Post', 'u')")
    rows = [
        (1, "https://www.post.example/a/1", "post.example"),  # the host fallback
        (2, "https://post.example/a/2", "Regional Post Online"),  # declared by the page
        (3, None, None),  # the feed's own text
    ]
    for n, page_url, site in rows:
        conn.execute(
            """INSERT INTO items (id, key, url, fetched, site_name, feed_id, page_url)
               VALUES (?, ?, ?, '2026-03-01T12:00:00Z', ?, 1, ?)""",
            (n, f"k{n}", page_url or f"https://post.example/f/{n}", site, page_url),
        )
    assert migrate(conn) == len(MIGRATIONS)
    found = conn.execute(
        """SELECT i.id, coalesce(i.site_name, f.name) FROM items i
           LEFT JOIN feeds f ON f.id = i.feed_id ORDER BY i.id"""
    ).fetchall()
    conn.close()
    assert found == [(1, "Regional Post"), (2, "Regional Post Online"), (3, "Regional Post")]
