"""Every listing of the CLI in an 80-column terminal: no line longer, no word cut in two; wide
terminals still get the tables."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.alert import outbox
from monitor.cli import app
from monitor.clock import SystemClock
from monitor.schedule import FeedStatus
from monitor.store import FeedStateUpdate
from tests.alert_helpers import make_config, open_store, seed, story

CONFIG = """
database: m.db
heartbeat: state/heartbeat
feeds:
  - {name: BBC World, url: "https://feeds.bbci.co.uk/news/world/rss.xml"}
  - {name: Reuters Europe, url: "https://www.reutersagency.com/feed/?best-regions=europe"}
  - {name: Off, url: "https://off.example/feed", enabled: false}
channels:
  chat: "json://127.0.0.1:9/chat"
  dead: "json://user:s3cret-pass@127.0.0.1:9/hook"
  desk-email: "json://127.0.0.1:9/desk"
topics:
  - name: russia-dprk-military
    description: North Korean troops and arms in Russia's war
    query: '("north korea" OR dprk OR pyongyang) AND (troops OR soldiers OR missiles)'
    notify: [chat, dead, desk-email]
  - {name: kursk, query: 'kursk OR курск*', notify: [chat]}
"""
KURSK = "[video] Kursk update: Russian and North Korean troops seen near the border"
SUDZHA = "Ukrainian forces withdraw from Sudzha after months of fighting in the Kursk region"
MISSILES = "North Korea sends more missiles and artillery shells to Russia, Seoul says"
ALERT_ERROR = "HTTP 503 from json://user:***@127.0.0.1:9/hook: Service Unavailable"
FEED_ERROR = (
    "HTTP 503 Service Unavailable from https://www.reutersagency.com/feed/?best-regions=europe"
)
WARNING = "the feed is not well-formed (line 12: undefined entity &nbsp;)"
BOX = re.compile(r"[│┃┏┓┡┩└┘━─┳╇┴]")


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Feeds ok, failing and disabled; items under two topics; alerts pending and failed."""
    config = make_config(tmp_path_factory.mktemp("narrow"), CONFIG)
    store = open_store(config)
    now = SystemClock().now()
    bbc = [story(1, "russia-dprk-military", "kursk", title=KURSK), story(2, "kursk", title=SUDZHA)]
    seed(store, "BBC World", bbc, now=now - timedelta(hours=3))
    seed(store, "Reuters Europe", [story(3, "russia-dprk-military", title=MISSILES)], now=now)
    ok = FeedStateUpdate(
        FeedStatus.OK, now - timedelta(minutes=5), now + timedelta(minutes=10), 0, success=True
    )
    store.record_feed_state("BBC World", replace(ok, warning=WARNING))
    failing = replace(ok, status=FeedStatus.ERROR, error_count=2, success=False)
    store.record_feed_state("Reuters Europe", replace(failing, error=FEED_ERROR))
    later = now + timedelta(days=2)  # past the retry window: the alert is given up
    row = outbox.claim_next(store.conn, "dead", "w", later, timedelta(minutes=1))
    assert row is not None
    secret = ALERT_ERROR.replace("***", "s3cret-pass")
    outbox.mark_failed(store.conn, row.id, "w", secret, later, timedelta(days=1))
    store.close()
    return config.path


def render(config_path: Path, args: list[str], columns: int) -> str:
    env = {"COLUMNS": str(columns), "MONITOR_CONFIG": str(config_path)}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def joined(text: str) -> str:
    """The output as running text: a phrase wrapped over lines reads whole again."""
    return " ".join(text.split())


LISTINGS = {
    "alerts": (["alerts"], [KURSK, SUDZHA, MISSILES, "gave up after 1 attempts: " + ALERT_ERROR]),
    "feeds": (["feeds"], [FEED_ERROR, WARNING, "Reuters Europe"]),
    "items": (["items"], [KURSK, SUDZHA, MISSILES, "kursk, russia-dprk-military"]),
    "status": (["status"], ["failing feed Reuters Europe since", FEED_ERROR]),
    "topics": (
        ["topics"],
        ["North Korean troops and arms in Russia's war", "chat, dead, desk-email"],
    ),
    "developments": (["developments"], [KURSK, SUDZHA, MISSILES]),
    "search": (["search", "korea"], [MISSILES, "https://news.example/a/3"]),
    "topics test": (["topics", "test", "kursk", "--since", "3650d"], [KURSK, SUDZHA]),
}


@pytest.mark.parametrize("name", LISTINGS)
def test_every_listing_fits_80_columns_with_whole_words(config_path: Path, name: str) -> None:
    args, phrases = LISTINGS[name]
    text = render(config_path, args, 80)
    assert not BOX.search(text), text  # no table cut into slivers: the compact layout
    # Status's own lines name files (the heartbeat, the database): as long as their paths are.
    lines = [line for line in text.splitlines() if not re.match(r"  no heartbeat|database:", line)]
    assert [line for line in lines if len(line) > 80] == [], text
    for phrase in phrases:
        assert phrase in joined(text), text
    assert "s3cret-pass" not in text


def test_alerts_at_80_columns_put_short_fields_first_then_title_then_error(
    config_path: Path,
) -> None:
    lines = render(config_path, ["alerts"], 80).splitlines()
    assert re.match(r"7 alerts shown \(outbox: 5 pending, 2 failed, 0 sent\)", lines[0])
    failed = next(i for i, line in enumerate(lines) if "  failed  dead  alert  1 try" in line)
    assert re.fullmatch(r"#\d+  failed  dead  alert  1 try  created 3\.0h ago", lines[failed])
    assert lines[failed + 1 : failed + 3] == [f"    {KURSK}", "    (russia-dprk-military)"]
    assert lines[failed + 3].startswith("    error: gave up after 1 attempts: HTTP 503")
    assert lines[failed + 4].startswith(" " * len("    error: "))  # wrapped under its start
    pending = [line for line in lines if "  pending  " in line]
    assert len(pending) == 5 and all(re.search(r"0 tries  created .+  next ", p) for p in pending)


def test_feeds_at_80_columns_say_what_each_field_is(config_path: Path) -> None:
    lines = render(config_path, ["feeds"], 80).splitlines()
    assert lines[0] == "3 feeds"
    assert re.fullmatch(r"BBC World  ok  last fetch 5m ago  next fetch in \d+m  2 items", lines[1])
    assert lines[2] == f"    warning: {WARNING}"
    assert "Off  disabled  never fetched  0 items" in lines


WIDE_ROWS = {  # a row of each table, its cells side by side
    "alerts": r"│ \d+ +│ 3\.0h ago │ dead +│ alert │ failed +│ 1 +│ - +│ russia-dprk-military +│ ",
    "feeds": rf"│ Reuters Europe │ error +│ 5m ago +│ .+ │ 1 +│ {re.escape(FEED_ERROR)} +│",
    "items": rf"│ 1 +│ 3\.0h ago │ BBC World +│ {re.escape(KURSK)} +│ en +│ page \d+c +│ kursk, ",
    "topics": r"│ russia-dprk-military +│ .+ │ \d+ +│ \d+ +│ \d+ +│ chat, dead, desk-email │",
}


@pytest.mark.parametrize("name", WIDE_ROWS)
def test_wide_terminals_keep_the_table(config_path: Path, name: str) -> None:
    text = render(config_path, LISTINGS[name][0], 250)
    assert re.search(WIDE_ROWS[name], text), text


def test_wide_terminals_keep_the_status_table_and_the_one_line_listings(
    config_path: Path,
) -> None:
    status = render(config_path, ["status"], 250).splitlines()
    assert re.match(r"failing feed +since +last error", status[3])
    assert re.match(rf"Reuters Europe +\S+Z +{re.escape(FEED_ERROR)}", status[4])
    developments = render(config_path, ["developments"], 250)
    one = "1 report from 1 outlet · first seen 3.0h ago"  # one time: first and last are one
    assert re.search(rf"#\d+ kursk {re.escape(SUDZHA)}  {one}\n", developments)


@pytest.mark.parametrize("name", ["alerts", "feeds", "items", "topics"])
def test_a_table_is_used_only_where_no_word_is_cut(config_path: Path, name: str) -> None:
    """At every width either the compact layout or a table whose words are all whole."""
    args = LISTINGS[name][0]
    wide = set(BOX.sub(" ", render(config_path, args, 250)).split())
    layouts = set()
    for columns in range(60, 250, 6):
        text = render(config_path, args, columns)
        assert [line for line in text.splitlines() if len(line) > columns] == [], text
        layouts.add("table" if BOX.search(text) else "compact")
        if BOX.search(text):  # no fragment of a word (times aside: the clock moves on)
            fragments = set(BOX.sub(" ", text).split()) - wide
            assert {f for f in fragments if not re.fullmatch(r"[\d.]+[smhd]", f)} == set(), text
    assert layouts == {"table", "compact"}
