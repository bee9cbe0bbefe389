"""The `monitor` command, run in-process (and `monitor run` as a real subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor import __version__
from monitor.cli import app, main, split_config_option
from monitor.clock import SystemClock
from monitor.config import Config, load_config
from monitor.daemon import write_heartbeat
from monitor.ops import daemon_lock
from monitor.schedule import FeedStatus
from monitor.store import FeedStateUpdate, Store
from tests.alert_helpers import make_config, open_store, seed, story
from tests.newsroom import Entry, Newsroom, Status


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config" / "monitor.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def feeds_config(tmp_path: Path, feeds: dict[str, str], extra: str = "") -> Path:
    lines = ["workers: 0", "defaults: {timeout: 2s}", "feeds:"]
    for name, url in feeds.items():
        lines += [f"  - name: {name}", f"    url: {url}"]
    return write_config(tmp_path, "\n".join(lines) + "\n" + extra)


def cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_config_option_is_accepted_before_or_after_the_command() -> None:
    assert split_config_option(["--config", "a.yaml", "check"]) == (["check"], "a.yaml")
    assert split_config_option(["check", "--config=b.yaml"]) == (["check"], "b.yaml")
    assert split_config_option(["items", "-c", "c.yaml", "--json"]) == (
        ["items", "--json"],
        "c.yaml",
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_check_ok_and_error_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = feeds_config(tmp_path, {"A": "https://a.example/feed"})
    assert cli(["check", "--config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = write_config(tmp_path, "feeds:\n  - name: A\n    url: nope\n    colour: red\n")
    assert cli(["--config", str(bad), "check"]) == 2
    errors = capsys.readouterr().err
    assert f"{bad}:3: feeds[0].url: 'nope' is not an http(s) URL" in errors
    assert f"{bad}:4: feeds[0].colour: unknown key" in errors


def test_check_says_what_to_write_for_the_usual_slips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_config(
        tmp_path,
        """channels:
  desk: "json://127.0.0.1:9/hook"
  mail: {url: "json://127.0.0.1:9/mail", mode: digset}
  morning: {url: "json://127.0.0.1:9/m", schedule: "0 8 * * *"}
topics:
  - {name: t, query: x, notify: [dsek]}
  - {name: u, query: y, notify: desk}
""",
    )
    assert cli(["check", "--config", str(bad)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{bad}:3: channels.mail.mode: 'digset' is not one of immediate, digest "
        "(did you mean 'digest'?)",
        f"{bad}:4: channels.morning.schedule: only a digest channel has a schedule: add "
        "`mode: digest`, or remove it",
        f"{bad}:6: topics[0].notify[0]: no channel named 'dsek' (did you mean 'desk'?)",
        f"{bad}:7: topics[1].notify: must be a list, e.g. `notify: [desk]`",
    ]
    indented = write_config(
        tmp_path, "feeds:\n  - name: A\n    url: https://a.example/f\n      interval: 5m\n"
    )
    assert cli(["check", "--config", str(indented)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{indented}:4: YAML syntax: mapping values are not allowed here (check the indentation: "
        "is this line indented deeper than the key above it? A value that holds ': ' needs quotes)"
    ]


def test_a_config_option_holds_for_its_own_invocation_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = feeds_config(tmp_path, {"A": "https://a.example/feed"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("feeds:\n  - name: A\n    url: nope\n", encoding="utf-8")
    monkeypatch.setenv("MONITOR_CONFIG", str(bad))
    assert cli(["check", "--config", str(good)]) == 0
    assert cli(["check"]) == 2  # $MONITOR_CONFIG again, not the last --config
    runner = CliRunner()
    assert runner.invoke(app, ["--config", str(good), "check"]).exit_code == 0
    assert runner.invoke(app, ["check"]).exit_code == 2


def test_check_masks_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT_TOKEN", "s3cr3t-token-value")
    path = write_config(tmp_path, 'channels:\n  chat: "json://localhost/${CHAT_TOKEN}"\n')
    assert cli(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t" not in out and "json://localhost/***" in out


def test_once_runs_and_reports_then_items_json(
    newsroom: Newsroom, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = newsroom.publish("/feed.xml", 3)
    newsroom.set_fault("/down.xml", Status(500))
    path = feeds_config(
        tmp_path, {"News": newsroom.url("/feed.xml"), "Down": newsroom.url("/down.xml")}
    )
    assert cli(["once", "--config", str(path)]) == 0  # a failed feed does not fail the pass
    out = capsys.readouterr().out
    assert "feeds: 1 ok, 1 failed, 0 skipped; new items: 3" in out
    assert "failed  Down: HTTP 500 Internal Server Error" in out

    assert cli(["items", "--json", "--config", str(path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["url"] for r in rows} == {p.url for p in published}
    row = rows[0]
    assert isinstance(row["id"], int) and row["feed"] == "News" and row["feeds"] == ["News"]
    assert row["text_source"] == "page" and row["language"] == "en"
    assert row["fetched"].endswith("Z") and row["published"].endswith("Z")
    assert row["topics"] == []

    assert cli(["feeds", "--config", str(path)]) == 0
    table = capsys.readouterr().out
    assert "News" in table and "Down" in table and "HTTP 500" in table

    assert cli(["items", "--feed", "Down", "--json", "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == []


BROKEN_RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Bad & Co</title>
<item><title>Kept anyway</title><link>https://bad.example/a</link>
<description>Read leniently</description></item></channel></rss>"""


def test_a_feed_read_with_a_warning_says_so_until_it_reads_cleanly(
    newsroom: Newsroom,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # table cells on one line each (read at each print)
    newsroom.add_raw("/bad.xml", BROKEN_RSS, "application/rss+xml")
    newsroom.add_feed("/ok.xml", [Entry(title="No page", link=newsroom.url("/gone"))])
    path = feeds_config(
        tmp_path,
        {"Bad": newsroom.url("/bad.xml"), "Ok": newsroom.url("/ok.xml")},
        "fetch: {allow_private_networks: true}\n",
    )
    assert cli(["once", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "feeds: 2 ok, 0 failed" in out and "warning Bad: the feed is not well-formed" in out
    assert "warning Ok" not in out

    def feeds_table() -> str:
        assert cli(["feeds", "--config", str(path)]) == 0
        return capsys.readouterr().out

    assert "warning: the feed is not well-formed" in feeds_table()
    assert cli(["once", "--config", str(path)]) == 0  # 304: the same broken body, not re-read
    assert "warning Bad" not in capsys.readouterr().out
    assert "warning: the feed is not well-formed" in feeds_table()  # still what it serves

    newsroom.add_raw("/bad.xml", BROKEN_RSS.replace(b"Bad & Co", b"Bad &amp; Co"))
    assert cli(["once", "--config", str(path)]) == 0
    capsys.readouterr()
    assert "warning:" not in feeds_table()

    # Why an item kept the feed's text instead of its page's:
    assert cli(["items", "--json", "--feed", "Ok", "--config", str(path)]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["text_source"] == "feed" and "404" in item["extract_error"]


def test_once_with_a_config_error_exits_2(tmp_path: Path) -> None:
    path = write_config(tmp_path, "defaults: {interval: never}\n")
    assert cli(["once", "--config", str(path)]) == 2


def test_once_with_an_unopenable_database_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    path = write_config(tmp_path, f"database: {blocker}/sub/monitor.db\nfeeds: []\n")
    assert cli(["once", "--config", str(path)]) == 1
    assert "error" in capsys.readouterr().err


def test_import_opml_keeps_comments_and_skips_known_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        tmp_path,
        "# my feeds\nfeeds:\n  - name: Known\n    url: https://known.example/feed  # keep me\n",
    )
    opml = tmp_path / "export.opml"
    opml.write_text(
        """<?xml version="1.0"?><opml version="2.0"><body>
        <outline text="News"><outline text="Known" xmlUrl="https://known.example/feed"/>
        <outline text="Новости" title="Новости" xmlUrl="https://ru.example/rss"/>
        <outline text="Known" xmlUrl="https://other.example/feed"/></outline></body></opml>""",
        encoding="utf-8",
    )
    assert cli(["import-opml", str(opml), "--config", str(path)]) == 0
    assert "added 2" in capsys.readouterr().out
    text = path.read_text(encoding="utf-8")
    assert "# my feeds" in text and "# keep me" in text
    assert "Новости" in text and "Known (2)" in text
    assert cli(["check", "--config", str(path)]) == 0


def test_import_opml_adds_lines_and_leaves_the_rest_of_the_file_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = (Path(__file__).parent.parent / "config" / "monitor.yaml").read_text(encoding="utf-8")
    path = write_config(tmp_path, shipped)
    opml = tmp_path / "export.opml"
    opml.write_text(
        """<?xml version="1.0"?><opml version="2.0"><body>
        <outline text="BBC again" xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml"/>
        <outline text="Gopher" xmlUrl="gopher://old.example/feed"/>
        <outline text='Say "hi": #1' xmlUrl="https://new.example/rss?a=1&amp;b=2"/>
        </body></opml>""",
        encoding="utf-8",
    )
    assert cli(["import-opml", str(opml), "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 feeds in" in out and "added 1" in out and "1 already there" in out
    assert "skipped (not an http(s) feed URL): Gopher (gopher://old.example/feed)" in out
    new = path.read_text(encoding="utf-8")
    added = [line for line in new.splitlines() if line not in shipped.splitlines()]
    assert added == [
        '  - name: "Say \\"hi\\": #1"',
        '    url: "https://new.example/rss?a=1&b=2"',
    ]
    # Inserted after the last feed, above the commented-out examples that close the block.
    assert new.index("new.example") < new.index("# More per-feed options")
    assert new.replace("\n".join(added) + "\n", "") == shipped
    config = load_config(path)
    assert (config.feeds[-1].name, config.feeds[-1].url) == (
        'Say "hi": #1',
        "https://new.example/rss?a=1&b=2",
    )


def test_import_opml_writes_names_and_urls_as_literals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2")
    opml = tmp_path / "hostile.opml"
    opml.write_text(
        '<opml version="2.0"><body>'
        '<outline text="${SMTP_PASSWORD}" xmlUrl="https://evil.example/rss?p=${SMTP_PASSWORD}&amp;q=$5"/>'
        '<outline text="   " xmlUrl="https://blank.example/rss"/>'
        f'<outline text="{"x" * 250}" xmlUrl="https://long.example/rss"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    path = write_config(
        tmp_path, "# mine\r\nfeeds:\r\n  - name: A\r\n    url: https://a.example/f\r\n"
    )
    assert cli(["import-opml", str(opml), "--config", str(path)]) == 0
    feeds = load_config(path).feeds
    assert [(f.name, f.url) for f in feeds[1:]] == [
        ("${SMTP_PASSWORD}", "https://evil.example/rss?p=${SMTP_PASSWORD}&q=$5"),  # not hunter2
        ("https://blank.example/rss", "https://blank.example/rss"),  # no title: its URL
        ("x" * 200, "https://long.example/rss"),  # a config name is at most 200 characters
    ]
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n")  # a CRLF file stays CRLF


def test_import_opml_into_a_flow_style_or_missing_feeds_list(tmp_path: Path) -> None:
    opml = tmp_path / "export.opml"
    opml.write_text(
        '<opml version="2.0"><body><outline text="A" xmlUrl="https://a.example/f"/></body></opml>',
        encoding="utf-8",
    )
    for body in ("# mine\nfeeds: []  # none yet\n", "# mine\ndatabase: x.db"):
        path = write_config(tmp_path / str(len(body)), body)
        assert cli(["import-opml", str(opml), "--config", str(path)]) == 0
        text = path.read_text(encoding="utf-8")
        assert "# mine" in text
        assert [(f.name, f.url) for f in load_config(path).feeds] == [("A", "https://a.example/f")]


def test_export_opml_lists_every_feed_and_imports_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        tmp_path,
        "feeds:\n  - name: Новости & <Wire>\n    url: https://ru.example/rss?a=1&b=2\n"
        "  - name: Paused\n    url: https://paused.example/feed\n    enabled: false\n",
    )
    assert cli(["export-opml", "--config", str(path)]) == 0
    document = capsys.readouterr().out
    assert document.startswith("<?xml") and "&amp;" in document and "<Wire>" not in document
    exported = tmp_path / "feeds.opml"
    assert cli(["export-opml", str(exported), "--config", str(path)]) == 0
    assert "wrote 2 feeds" in capsys.readouterr().err
    assert exported.read_text(encoding="utf-8") == document

    other = write_config(tmp_path / "other", "feeds: []\n")
    assert cli(["import-opml", str(exported), "--config", str(other)]) == 0
    again = load_config(other)
    assert [(f.name, f.url) for f in again.feeds] == [
        ("Новости & <Wire>", "https://ru.example/rss?a=1&b=2"),
        ("Paused", "https://paused.example/feed"),
    ]


def test_run_stops_cleanly_on_sigterm(newsroom: Newsroom, tmp_path: Path) -> None:
    newsroom.publish("/feed.xml", 2)
    path = feeds_config(tmp_path, {"News": newsroom.url("/feed.xml")})
    # first polls are spread over a minute; a single feed named "News" may wait up to 60 s,
    # so run the daemon only until its start-up and heartbeat are visible, then stop it.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(path)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "started:" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 0, "".join(lines) + rest
    assert "stopped" in rest
    assert (tmp_path / "state" / "heartbeat").exists()


def test_a_misspelt_name_is_an_error_and_several_words_are_one_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = feeds_config(
        tmp_path, {"Wire": "https://wire.example/feed"}, "topics:\n  - {name: dprk, query: x}\n"
    )
    assert cli(["items", "--feed", "Wier", "--config", str(path)]) == 2
    assert "no feed named 'Wier' (feeds: Wire)" in capsys.readouterr().err
    assert cli(["items", "--feed", "Wire", "--config", str(path)]) == 0  # known, nothing yet
    assert cli(["developments", "--topic", "dprkk", "--config", str(path)]) == 2
    assert "no topic named 'dprkk' (topics: dprk)" in capsys.readouterr().err
    assert cli(["developments", "--topic", "dprk", "--config", str(path)]) == 0
    assert cli(["topics", "test", "--config", str(path)]) == 2
    assert "give a topic NAME (from the config) or --query" in capsys.readouterr().err
    assert cli(["search", "kursk", "troops", "--json", "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli(["search", "kursk", "or", "troops", "--config", str(path)]) == 2  # checked whole
    assert "write OR for the operator" in capsys.readouterr().err


FEEDS_STATES = """database: state/m.db
heartbeat: state/heartbeat
feeds:
  - {name: Soon, url: "https://soon.example/feed"}
  - {name: Late, url: "https://late.example/feed"}
  - {name: Fresh, url: "https://fresh.example/feed"}
  - {name: Bad, url: "https://bad.example/feed?key=${FEED_KEY}"}
  - {name: Gone, url: "https://gone.example/feed"}
  - {name: Off, url: "https://off.example/feed", enabled: false}
"""


def feed_states_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Feeds in every state: next poll ahead, past due, never polled, failing, gone, disabled."""
    monkeypatch.setenv("FEED_KEY", "s3cr3t-key")
    config = load_config(write_config(tmp_path, FEEDS_STATES))
    now = SystemClock().now()
    store = Store.open(config.database)
    store.sync_feeds([(f.name, f.url, "c1") for f in config.feeds])
    ok = FeedStateUpdate(
        FeedStatus.OK, now - timedelta(minutes=5), now + timedelta(minutes=10), 0, success=True
    )
    store.record_feed_state("Soon", ok)
    store.record_feed_state(
        "Late", replace(ok, next_fetch=now - timedelta(minutes=2), warning="not well-formed")
    )
    failing = replace(ok, status=FeedStatus.ERROR, error_count=2, success=False)
    store.record_feed_state("Bad", replace(failing, error="HTTP 503 from ?key=s3cr3t-key"))
    store.record_feed_state("Gone", replace(failing, status=FeedStatus.GONE, error="HTTP 410"))
    store.close()
    return config


def feeds_table(config: Config, capsys: pytest.CaptureFixture[str]) -> dict[str, list[str]]:
    assert cli(["feeds", "--config", str(config.path)]) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0] and cells[0] != "feed":
            rows[cells[0]] = cells[1:]
    return rows


def test_feeds_json_has_what_the_table_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = feed_states_config(tmp_path, monkeypatch)
    assert cli(["feeds", "--json", "--config", str(config.path)]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t" not in out  # secrets masked, in URLs and errors
    found = {feed["name"]: feed for feed in json.loads(out)}
    assert list(found) == ["Soon", "Late", "Fresh", "Bad", "Gone", "Off"]  # config order
    soon = found["Soon"]
    assert set(soon) == {
        "name", "url", "enabled", "status", "last_fetch", "last_success", "next_fetch", "items",
        "error_count", "failing_since", "error", "warning",
    }  # fmt: skip
    assert soon["url"] == "https://soon.example/feed" and soon["enabled"] is True
    assert soon["status"] == "ok" and soon["items"] == 0 and soon["error"] is None
    assert soon["last_fetch"].endswith("Z") and soon["next_fetch"].endswith("Z")
    assert soon["last_success"] == soon["last_fetch"] and soon["failing_since"] is None
    assert found["Late"]["warning"] == "not well-formed"
    fresh = found["Fresh"]
    assert (fresh["status"], fresh["last_fetch"], fresh["next_fetch"]) == ("new", None, None)
    bad = found["Bad"]
    assert bad["status"] == "error" and bad["error_count"] == 2
    assert bad["error"] == "HTTP 503 from ?key=***" and bad["url"].endswith("?key=***")
    assert bad["failing_since"] == bad["last_fetch"]
    gone = found["Gone"]
    assert gone["status"] == "gone" and gone["error"] == "HTTP 410" and gone["next_fetch"] is None
    off = found["Off"]
    assert (off["status"], off["enabled"], off["next_fetch"]) == ("disabled", False, None)


def test_feeds_next_fetch_says_due_or_at_next_start_rather_than_a_past_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # table cells on one line each (read at each print)
    config = feed_states_config(tmp_path, monkeypatch)
    next_fetch = {name: cells[2] for name, cells in feeds_table(config, capsys).items()}
    assert next_fetch == {  # the daemon is not running
        "Soon": "in 10m",
        "Late": "at next start",
        "Fresh": "at next start",
        "Bad": "in 10m",
        "Gone": "-",
        "Off": "-",
    }
    with daemon_lock(config):  # a daemon runs: it holds the lock and its heartbeat is fresh
        write_heartbeat(config.heartbeat, SystemClock())
        table = feeds_table(config, capsys)
    assert {name: cells[2] for name, cells in table.items()} == {
        **next_fetch,
        "Late": "due",
        "Fresh": "due",
    }
    assert table["Late"][4] == "warning: not well-formed"
    assert table["Bad"][4] == "HTTP 503 from ?key=***"


def test_counts_say_one_thing_or_several_things(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(
        tmp_path,
        "database: m.db\nfeeds: [{name: A, url: 'https://a.example/feed'}]\n"
        "topics:\n  - {name: t, query: x}\n",
    )
    store = open_store(config)
    seed(store, "A", [story(1, "t")])

    def output(*args: str) -> str:
        assert cli([*args, "--config", str(config.path)]) == 0
        return capsys.readouterr().out

    assert output("developments").startswith("1 development\n")
    assert "1 feed (1 enabled), 1 topic, 0 channels" in output("check")
    assert "1 recent item" in output("items") and "1 recent items" not in output("items")
    assert "1 feed\n" in output("feeds")
    seed(store, "A", [story(2, "t")])
    store.close()
    assert output("developments").startswith("2 developments\n")
