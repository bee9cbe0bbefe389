"""Config hot reload: the diff, and a running daemon that applies valid edits and refuses bad ones."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from datetime import timedelta
from pathlib import Path

from monitor.clock import parse_iso, utc_iso
from monitor.config import Config, load_config, parse_config
from monitor.daemon import Daemon
from monitor.reload import (
    WatchSettings,
    diff_configs,
    effective_config,
    format_duration,
    valid_again_message,
)
from monitor.store import Store
from tests.alert_helpers import Received, Receiver
from tests.daemon_helpers import Events, feeds_yaml, running, write_config
from tests.newsroom import Newsroom

FAST_WATCH = WatchSettings(
    debounce=timedelta(milliseconds=300),
    step=timedelta(milliseconds=20),
    recheck_every=timedelta(seconds=60),  # longer than the test: edits must arrive as events
    settle=timedelta(milliseconds=20),
)


def parsed(text: str) -> Config:
    return parse_config(text, Path("/srv/monitor/monitor.yaml"), {})


def test_diff_names_what_changed_in_one_short_line() -> None:
    old = parsed(
        "feeds:\n"
        "  - {name: Meduza, url: 'https://meduza.io/rss', interval: 15m}\n"
        "  - {name: TASS, url: 'https://tass.com/rss'}\n"
        "topics:\n  - {name: kursk, query: kursk}\n  - {name: same, query: same}\n"
    )
    new = parsed(
        "feeds:\n"
        "  - {name: Meduza, url: 'https://meduza.io/rss', interval: 5m}\n"
        "  - {name: Yonhap, url: 'https://yna.co.kr/rss'}\n"
        "topics:\n  - {name: kursk, query: 'kursk OR курск'}\n  - {name: same, query: same}\n"
    )
    diff = diff_configs(old, new)
    assert diff.summary() == "feeds: ~Meduza interval 15m→5m, +Yonhap, -TASS; topics: ~kursk"
    assert diff.start == {"Yonhap"} and diff.stop == {"TASS"} and diff.retime == {"Meduza"}
    assert not diff.restart and diff.live
    assert diff_configs(old, old).empty and diff_configs(old, old).summary() == "no change"
    assert diff.rematch == ("kursk",)  # its query changed: stored items could match now


def test_diff_names_the_topics_stored_items_should_be_rematched_for() -> None:
    old = parsed(
        "channels: {a: 'json://localhost/a', b: 'json://localhost/b'}\ntopics:\n"
        "  - {name: routed, query: x, notify: [a]}\n  - {name: langs, query: y}\n"
        "  - {name: gone, query: z}\n"
    )
    new = parsed(
        "channels: {a: 'json://localhost/a', b: 'json://localhost/b'}\ntopics:\n"
        "  - {name: routed, query: x, notify: [b]}\n  - {name: langs, query: y, languages: [ru]}\n"
        "  - {name: fresh, any: [w]}\n"
    )
    diff = diff_configs(old, new)
    assert diff.topics == ("~routed", "~langs", "+fresh", "-gone")
    # A new route changes no match; new languages or a new topic do.
    assert diff.rematch == ("langs", "fresh")


def test_diff_reports_disabled_feeds_channels_settings_and_defaults() -> None:
    old = parsed(
        "defaults: {interval: 15m}\nfeeds:\n  - {name: A, url: 'https://a.example/f'}\n"
        "  - {name: B, url: 'https://b.example/f'}\n"
        "channels: {chat: 'json://localhost/a', mail: 'mailto://x@y.example'}\n"
    )
    new = parsed(
        "defaults: {interval: 10m}\nfeeds:\n  - {name: A, url: 'https://a.example/f'}\n"
        "  - {name: B, url: 'https://b.example/other', enabled: false}\n"
        "channels: {chat: 'json://localhost/b', ops: 'json://localhost/c'}\n"
        "retention: {drop_text_after: 90d}\n"
    )
    diff = diff_configs(old, new)
    assert diff.feeds == ("~B (disabled, url)",)
    assert diff.channels == ("~chat", "+ops", "-mail")
    assert diff.settings == ("defaults.interval 15m→10m", "retention")
    # A follows the default interval: its job is re-timed though its entry did not change.
    assert diff.retime == {"A"} and diff.stop == {"B"} and not diff.start


def test_settings_that_need_a_restart_are_named_and_kept_running() -> None:
    old = parsed("database: a.db\nworkers: 0\nfetch: {per_host: 2}\nfeeds: []\n")
    new = parsed(
        "database: b.db\nworkers: 4\nhttp: '127.0.0.1:9100'\n"
        "fetch: {per_host: 4, backoff_max: 2h}\nfeeds: []\n"
    )
    diff = diff_configs(old, new)
    assert diff.restart == ("database", "workers", "http", "fetch.per_host")
    assert diff.settings == ("fetch.backoff_max 6h→2h",)
    assert diff.summary() == (
        "settings: fetch.backoff_max 6h→2h; needs a restart: database, workers, http, fetch.per_host"
    )
    running_config = effective_config(old, new)
    assert running_config.database == old.database
    assert (running_config.model.workers, running_config.model.http) == (0, None)
    assert running_config.fetch.per_host == 2
    assert running_config.fetch.backoff_max == timedelta(hours=2)  # the live part did change


def test_format_duration() -> None:
    assert [format_duration(timedelta(seconds=s)) for s in (90, 900, 5400, 86400, 0.5)] == [
        "1m30s",
        "15m",
        "1h30m",
        "1d",
        "0.5s",
    ]
    assert format_duration(None) == "default"


def test_running_daemon_applies_valid_edits_and_refuses_broken_ones(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    for n, feed_path in enumerate(("/a.xml", "/b.xml", "/c.xml")):
        newsroom.publish(feed_path, 2, seed=10 * n)
    urls = {name: newsroom.url(f"/{name.lower()}.xml") for name in "ABC"}
    health_seen = threading.Event()

    def on_request(got: Received, when: str) -> None:
        if when == "after" and "rejected" in got.title + got.text:
            health_seen.set()

    with Receiver(on_request=on_request) as rx:
        head = (
            "workers: 0\ndefaults: {interval: 1h, jitter: 0s}\n"
            f"channels: {{ops: '{rx.url()}'}}\nhealth: {{notify: [ops]}}\n"
        )
        path = write_config(
            tmp_path / "config" / "monitor.yaml",
            head + feeds_yaml({"A": urls["A"], "B": urls["B"]}, A="interval: 1h"),
        )
        events = Events()
        daemon = Daemon(
            load_config(path),
            startup_spread=timedelta(0),
            watch=FAST_WATCH,
            on_poll=events.poll,
            on_reload=events.reload,
        )

        async def scenario() -> None:
            async with running(daemon, events):
                assert daemon.watcher is not None
                await events.until(lambda: events.polled("A") == events.polled("B") == 1)
                await asyncio.wait_for(daemon.watcher.watching.wait(), 10)

                # 1. Re-time A, add C, remove B, add a topic: applied without a restart.
                write_config(
                    path,
                    head
                    + feeds_yaml({"A": urls["A"], "C": urls["C"]}, A="interval: 30m")
                    + "topics:\n  - {name: t1, query: city, notify: [ops]}\n",
                )
                await events.until(lambda: len(events.reloads) == 1)
                first = events.reloads[0]
                assert first.applied and first.diff is not None
                assert first.diff.summary() == ("feeds: ~A interval 1h→30m, +C, -B; topics: +t1")
                await events.until(lambda: events.polled("C") == 1)  # the new feed is polled
                assert any("config reloaded: feeds: ~A interval 1h→30m" in m for m in events.logs)
                assert any("`monitor rematch --topic t1`" in m for m in events.logs)
                assert daemon._scheduler is not None
                jobs = {job.id: job for job in daemon._scheduler.get_jobs()}
                assert "feed:B" not in jobs and "feed:C" in jobs
                assert jobs["feed:A"].trigger.interval == timedelta(minutes=30)
                assert daemon._pipeline is not None and daemon._pipeline.matcher is not None
                assert [t.name for t in daemon._pipeline.config.topics] == ["t1"]

                # 2. A broken edit: refused with file:line messages, on the health channel too.
                write_config(
                    path,
                    head + feeds_yaml({"A": "nope", "C": urls["C"]}) + "colour: red\n",
                )
                await events.until(lambda: len(events.reloads) == 2)
                refused = events.reloads[1]
                assert not refused.applied
                assert f"{path}:6: feeds[0].url: 'nope' is not an http(s) URL" in refused.problems
                assert f"{path}:8: colour: unknown key" in refused.problems[1]
                assert any("config edit rejected" in m and "colour" in m for m in events.logs)
                ok = await asyncio.to_thread(health_seen.wait, 20)
                assert ok, "the health channel never heard of the rejected edit"
                assert daemon.config.feed("C") is not None  # the last good config still runs
                assert daemon.config.feed("A") is not None
                assert daemon.config.feed("A").url == urls["A"]  # type: ignore[union-attr]

                # 3. A valid edit that changes a start-up setting: the rest applies, it waits.
                write_config(
                    path,
                    head.replace("workers: 0", "workers: 3")
                    + feeds_yaml({"A": urls["A"], "C": urls["C"]}, A="interval: 30m"),
                )
                await events.until(lambda: len(events.reloads) == 3)
                third = events.reloads[2]
                assert third.applied and third.diff is not None
                assert third.diff.restart == ("workers",)
                assert third.diff.topics == ("-t1",)
                assert daemon.config.model.workers == 0
                assert any("not applied until a restart: workers" in m for m in events.logs)

        asyncio.run(scenario())
        messages = [m.text for m in rx.messages if "rejected" in m.title + m.text]

    assert len(messages) == 1 and "is not an http(s) URL" in messages[0]
    store = Store.open(daemon.config.database, create=False)
    try:
        row = store.conn.execute(
            "SELECT last_fetch, next_fetch FROM feeds WHERE name = 'A'"
        ).fetchone()
    finally:
        store.close()
    # Re-timed from its last fetch: due 30 minutes after it, not an hour.
    last = parse_iso(row["last_fetch"])
    assert last is not None
    assert row["next_fetch"] == utc_iso(last + timedelta(minutes=30))


def _one_feed_daemon(newsroom: Newsroom, tmp_path: Path) -> tuple[Path, str, Events, Daemon]:
    """A daemon (not started) on a config of feed A; its path, its head (the lines before
    `feeds:`), and the events it reports."""
    newsroom.publish("/a.xml", 1)
    head = "workers: 0\ndefaults: {interval: 1h, jitter: 0s}\n"
    path = write_config(
        tmp_path / "config" / "monitor.yaml", head + feeds_yaml({"A": newsroom.url("/a.xml")})
    )
    events = Events()
    daemon = Daemon(load_config(path), startup_spread=timedelta(0), on_reload=events.reload)
    return path, head, events, daemon


def test_sighup_rereads_the_config_without_a_watch(newsroom: Newsroom, tmp_path: Path) -> None:
    path, head, events, daemon = _one_feed_daemon(newsroom, tmp_path)

    async def scenario() -> None:
        async with running(daemon, events):
            await events.until(lambda: any("started:" in m for m in events.logs))
            write_config(path, head + feeds_yaml({"A": newsroom.url("/a.xml")}, A="interval: 2h"))
            os.kill(os.getpid(), signal.SIGHUP)
            await events.until(lambda: len(events.reloads) == 1)

    asyncio.run(scenario())
    assert events.reloads[0].applied
    assert events.reloads[0].diff is not None
    assert events.reloads[0].diff.feeds == ("~A interval default→2h",)


def test_an_emptied_file_is_refused_and_a_pending_restart_is_reported_once(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    path, head, events, daemon = _one_feed_daemon(newsroom, tmp_path)
    feeds = feeds_yaml({"A": newsroom.url("/a.xml")})

    async def scenario() -> None:
        async with running(daemon, events):
            await events.until(lambda: any("started:" in m for m in events.logs))
            # A failed save leaves an empty file: refused, not read as "watch nothing".
            path.write_text("", encoding="utf-8")
            emptied = await daemon.reload()
            assert not emptied.applied
            assert any("the file is empty" in p for p in emptied.problems)
            assert daemon.config.feed("A") is not None

            write_config(path, head.replace("workers: 0", "workers: 2") + feeds)
            changed = await daemon.reload()
            assert changed.applied and changed.diff is not None
            assert changed.diff.restart == ("workers",)
            # Read again (a SIGHUP, a touch): the restart is still pending, and already said.
            again = await daemon.reload()
            assert not again.applied

    asyncio.run(scenario())
    assert sum("not applied until a restart: workers" in m for m in events.logs) == 1


def test_a_reload_that_leaves_no_feed_warns(newsroom: Newsroom, tmp_path: Path) -> None:
    path, head, events, daemon = _one_feed_daemon(newsroom, tmp_path)

    async def scenario() -> None:
        async with running(daemon, events):
            await events.until(lambda: any("started:" in m for m in events.logs))
            write_config(path, head + "feeds: []\n")
            assert (await daemon.reload()).applied

    asyncio.run(scenario())
    assert any("no enabled feed" in m for m in events.logs)


def test_a_fixed_file_that_matches_the_running_config_is_acknowledged_once(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    newsroom.publish("/a.xml", 1)
    good = "workers: 0\ndefaults: {interval: 1h, jitter: 0s}\n" + feeds_yaml(
        {"A": newsroom.url("/a.xml")}
    )
    path = write_config(tmp_path / "config" / "monitor.yaml", good)
    events = Events()
    daemon = Daemon(
        load_config(path), startup_spread=timedelta(0), watch=FAST_WATCH, on_reload=events.reload
    )

    def said() -> int:
        return sum("config is valid again" in m for m in events.logs)

    async def scenario() -> None:
        async with running(daemon, events):
            assert daemon.watcher is not None
            await asyncio.wait_for(daemon.watcher.watching.wait(), 10)
            write_config(path, good.replace("interval: 1h", "interval: often"))
            await events.until(lambda: len(events.reloads) == 1)
            assert events.reloads[0].problems
            # Saved back as it runs: nothing to apply, and now that is said.
            write_config(path, good)
            await events.until(lambda: said() == 1)
            # Further saves that change nothing (a comment) are the usual quiet case again.
            write_config(path, good + "# a comment\n")
            write_config(path, good.replace("interval: 1h", "interval: 2h"))
            await events.until(lambda: len(events.reloads) == 2)
            assert events.reloads[1].applied

    asyncio.run(scenario())
    assert said() == 1
    (line,) = [m for m in events.logs if "config is valid again" in m]
    assert line == "config is valid again (matches the running config); nothing to change"


def test_the_valid_again_line_names_a_change_still_waiting_for_a_restart() -> None:
    old = parsed("workers: 0\nfeeds: []\n")
    diff = diff_configs(old, parsed("workers: 2\nfeeds: []\n"))
    assert valid_again_message(diff) == (
        "config is valid again (matches the running config; workers still waits for a "
        "restart); nothing to change"
    )
    assert valid_again_message(diff_configs(old, old)) == (
        "config is valid again (matches the running config); nothing to change"
    )
