"""Delivery through apprise to real servers on loopback: SMTP, a JSON webhook, ntfy, Mattermost.

Time is a FakeClock: back-off and schedules move only when the test says so.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from rich.console import Console

from monitor.alert import outbox
from monitor.alert.dispatch import Dispatcher, DispatchReport
from monitor.clock import FakeClock
from monitor.config import Config, load_config
from monitor.schedule import FeedStatus
from monitor.store import FeedStateUpdate, Store
from tests.alert_helpers import (
    KEY_TEMPLATE,
    NOW,
    Receiver,
    SmtpSink,
    make_config,
    open_store,
    seed,
    story,
)
from tests.newsroom import Newsroom
from tests.newsroom_content import make_story

T = TypeVar("T")
RU = "Пхеньян направил войска в Курскую область"
KO = "북한군 쿠르스크 파병 확인"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def dispatch(config: Config, clock: FakeClock, **kw: Any) -> DispatchReport:
    async def go() -> DispatchReport:
        dispatcher = Dispatcher(config, config.database, clock, **kw)
        try:
            return await dispatcher.send_due()
        finally:
            await dispatcher.aclose()

    return run(go())


def statuses(store: Store) -> dict[str, str]:
    return {r.key: r.status for r in outbox.list_rows(store.conn)}


# --------------------------------------------------------------------------- email


def test_email_reaches_a_real_smtp_server_with_utf8_subject_and_body(tmp_path: Path) -> None:
    with SmtpSink() as smtp:
        config = make_config(
            tmp_path,
            f"""
database: m.db
feeds: [{{name: Meduza, url: "https://meduza.example/rss"}}]
channels:
  analyst-email: {{url: "{smtp.url()}", format: html}}
  plain-email: "{smtp.url("desk@example.org")}"
topics:
  - {{name: dprk-troops, query: курск, notify: [analyst-email, plain-email]}}
""",
        )
        store = open_store(config)
        seed(
            store,
            "Meduza",
            [story(1, "dprk-troops", title=f"{RU} / {KO}",
                   snippet=f"По данным разведки, **{KO}** и войска", terms=("курск",),
                   site_name="Медуза")],
        )  # fmt: skip
        report = dispatch(config, FakeClock(NOW))
        assert report.sent == 2
        assert len(smtp.messages) == 2
    html_mail, text_mail = sorted(smtp.messages, key=lambda m: str(m["To"]))
    assert "analyst@example.org" in str(html_mail["To"])
    for mail in (html_mail, text_mail):
        subject = str(mail["Subject"])
        assert RU in subject and KO in subject and subject.startswith("dprk-troops: ")
    html = html_mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert RU in html and f"<b>{KO}</b>" in html and "Медуза" in html
    assert 'href="https://news.example/a/1"' in html
    text = text_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert RU in text and f"*{KO}*" in text and "https://news.example/a/1" in text
    assert "Matched: курск" in text
    assert set(statuses(store).values()) == {"sent"}


# --------------------------------------------------------------------------- chat


def test_chat_json_webhook_ntfy_and_mattermost_see_the_message(tmp_path: Path) -> None:
    with Receiver() as rx:
        config = make_config(
            tmp_path,
            f"""
database: m.db
feeds: [{{name: A, url: "https://a.example/feed"}}]
channels:
  hook: {{url: "{rx.url("json", "/hook")}", format: markdown}}
  ntfy: "{rx.url("ntfy", "/alerts")}"
  mattermost: {{url: "{rx.url("mmost", "/tokenabc")}", format: markdown}}
topics:
  - {{name: kursk, query: kursk, notify: [hook, ntfy, mattermost]}}
""",
        )
        store = open_store(config)
        seed(store, "A", [story(1, "kursk", title="Troops in *Kursk*", site_name="NK News")])
        assert dispatch(config, FakeClock(NOW)).sent == 3
        by_path = {m.path: m for m in rx.messages}
    hook = by_path["/hook"]
    assert hook.title == "kursk: Troops in *Kursk*"  # a title field is plain text
    assert "[Troops in \\*Kursk\\*](https://news.example/a/1)" in hook.text
    assert "NK News" in hook.text and "**Russia**" in hook.text
    ntfy = by_path["/"]
    assert ntfy.body["topic"] == "alerts" and ntfy.title == "kursk: Troops in *Kursk*"
    assert "https://news.example/a/1" in ntfy.text
    mm = by_path["/hooks/tokenabc"]
    # Mattermost has no title field: the title goes into the text, escaped like the rest.
    assert mm.text.startswith("**kursk: Troops in \\*Kursk\\***")


def test_apprise_throttle_is_off_so_a_backlog_goes_out_quickly(tmp_path: Path) -> None:
    # ntfy's plugin would sleep 5.5 s between two sends to the same server by default.
    with Receiver() as rx:
        config = make_config(
            tmp_path,
            f"""
database: m.db
feeds: [{{name: A, url: "https://a.example/feed"}}]
channels: {{ntfy: "{rx.url("ntfy", "/t")}"}}
topics: [{{name: t, query: x, notify: [ntfy]}}]
""",
        )
        seed(open_store(config), "A", [story(n, "t") for n in range(4)])
        started = time.monotonic()
        assert dispatch(config, FakeClock(NOW)).sent == 4
        assert time.monotonic() - started < 5.0
        assert len(rx.messages) == 4


# --------------------------------------------------------------------------- reliability


CHAT = """
database: m.db
feeds: [{{name: A, url: "https://a.example/feed"}}]
channels:
  chat: {{url: "{url}", template: key.j2, timeout: {timeout}}}
  other: {{url: "{url2}", template: key.j2}}
topics:
  - {{name: t, query: x, notify: [chat]}}
  - {{name: o, query: y, notify: [other]}}
"""


def chat_config(tmp_path: Path, rx: Receiver, timeout: str = "5s") -> Config:
    (tmp_path / "key.j2").write_text(KEY_TEMPLATE, encoding="utf-8")
    return make_config(
        tmp_path,
        CHAT.format(url=rx.url("json", "/chat"), url2=rx.url("json", "/other"), timeout=timeout),
    )


def test_down_channel_queues_alerts_then_delivers_in_order_none_twice(tmp_path: Path) -> None:
    with Receiver(down=True) as rx:
        config = chat_config(tmp_path, rx)
        store = open_store(config)
        clock = FakeClock(NOW)
        seed(store, "A", [story(n, "t") for n in range(3)])
        assert dispatch(config, clock).retrying == 1
        assert rx.refused == 1  # only the head was tried: the others wait behind it
        for hour in range(1, 4):  # three hours down, new alerts keep coming
            clock.set(NOW + timedelta(hours=hour))
            seed(store, "A", [story(100 + hour, "t")], now=clock.now())
            dispatch(config, clock)
        assert rx.messages == [] and set(statuses(store).values()) == {"pending"}
        tries_while_down = rx.refused
        assert 4 <= tries_while_down <= 12  # back-off, not hammering
        # Before the head's next try nothing is attempted.
        head = outbox.list_rows(store.conn, newest_first=False)[0]
        clock.set(head.next_attempt_at - timedelta(seconds=1))
        dispatch(config, clock)
        assert rx.refused == tries_while_down
        rx.down = False
        clock.set(head.next_attempt_at)
        report = dispatch(config, clock)
        assert report.sent == 6
        expected = [r.key for r in outbox.list_rows(store.conn, newest_first=False)]
        assert rx.keys() == expected  # in the order they were made, each once
        assert set(statuses(store).values()) == {"sent"}
        assert dispatch(config, clock).sent == 0
        assert len(rx.messages) == 6


def test_one_channel_down_does_not_hold_up_another(tmp_path: Path) -> None:
    with Receiver() as rx:
        config = chat_config(tmp_path, rx)
        (tmp_path / "key.j2").write_text(KEY_TEMPLATE)
        store = open_store(config)
        seed(store, "A", [story(1, "t"), story(2, "o")])
        rx.on_request = lambda got, when: _refuse_chat(rx, got, when)
        report = dispatch(config, FakeClock(NOW))
        assert report.sent == 1 and report.retrying == 1
        assert [m.path for m in rx.messages] == ["/other"]


def _refuse_chat(rx: Receiver, got: Any, when: str) -> None:
    if when == "before":
        rx.down = got.path == "/chat"


def test_two_dispatchers_racing_send_each_alert_once(tmp_path: Path) -> None:
    with Receiver() as rx:
        config = chat_config(tmp_path, rx)
        store = open_store(config)
        seed(store, "A", [story(n, "t" if n % 2 else "o") for n in range(24)])
        clock = FakeClock(NOW)

        async def race() -> list[DispatchReport]:
            dispatchers = [Dispatcher(config, config.database, clock) for _ in range(3)]
            try:
                return list(await asyncio.gather(*(d.send_due() for d in dispatchers)))
            finally:
                for d in dispatchers:
                    await d.aclose()

        reports = run(race())
        keys = rx.keys()
        assert sorted(k for k in keys if k) == sorted(statuses(store))  # every alert, once
        assert len(keys) == len(set(keys)) == 24
        assert sum(r.sent for r in reports) == 24
        # Per channel, in the order they were made.
        for path, channel in (("/chat", "chat"), ("/other", "other")):
            got = [m.key for m in rx.messages if m.path == path]
            made = [
                r.key for r in outbox.list_rows(store.conn, channel=channel, newest_first=False)
            ]
            assert got == made


def test_a_hung_service_is_bounded_by_the_timeout(tmp_path: Path) -> None:
    release = threading.Event()

    def hang(got: Any, when: str) -> None:
        if when == "before":
            release.wait(30)  # the service never answers (until the test ends)

    with Receiver() as rx:
        rx.on_request = hang
        config = chat_config(tmp_path, rx, timeout="1s")
        store = open_store(config)
        seed(store, "A", [story(1, "t")])
        started = time.monotonic()
        report = dispatch(config, FakeClock(NOW))
        elapsed = time.monotonic() - started
        release.set()
    assert report.retrying == 1 and report.sent == 0
    assert elapsed < 8
    (row,) = outbox.list_rows(store.conn)
    assert row.status == "pending" and row.attempts == 1 and row.last_error


def test_alert_max_age_keeps_a_backlog_quiet(tmp_path: Path) -> None:
    with Receiver() as rx:
        config = chat_config(tmp_path, rx)
        store = open_store(config)
        seed(
            store,
            "A",
            [story(1, "t", published=NOW - timedelta(days=10)), story(2, "t")],
        )
        assert dispatch(config, FakeClock(NOW)).sent == 1
        # item 2 opened a development of its own (the first development is item 1's)
        assert [m.key for m in rx.messages] == ["dev:2:chat:1"]


def test_alert_is_not_sent_twice_across_restarts(tmp_path: Path) -> None:
    with Receiver() as rx:
        config = chat_config(tmp_path, rx)
        seed(open_store(config), "A", [story(1, "t")])
        clock = FakeClock(NOW)
        assert dispatch(config, clock).sent == 1
        clock.advance(timedelta(days=2))
        assert dispatch(config, clock).sent == 0  # a new process sees it as sent
        assert len(rx.messages) == 1


# --------------------------------------------------------------------------- digests


def test_digest_goes_out_on_its_cron_schedule_grouped(tmp_path: Path) -> None:
    with Receiver() as rx:
        config = make_config(
            tmp_path,
            f"""
database: m.db
feeds: [{{name: A, url: "https://a.example/feed"}}]
channels:
  morning:
    url: "{rx.url("json", "/digest")}"
    mode: digest
    schedule: "0 8 * * *"
    timezone: Europe/Berlin
    format: markdown
topics:
  - {{name: kursk, query: x, notify: [morning]}}
  - {{name: parade, query: y, notify: [morning]}}
""",
        )
        store = open_store(config)
        clock = FakeClock(datetime(2026, 3, 1, 6, 0, tzinfo=UTC))  # 07:00 in Berlin
        assert dispatch(config, clock).sent == 0  # first look: the schedule starts now
        seed(store, "A", [story(1, "kursk", title="Troops in Kursk"),
                          story(2, "parade", title="Parade cancelled"),
                          story(3, "kursk", title="More troops")], now=clock.now())  # fmt: skip
        assert dispatch(config, clock).sent == 0
        assert rx.messages == []
        clock.set(datetime(2026, 3, 1, 7, 0, 30, tzinfo=UTC))  # 08:00:30 in Berlin
        report = dispatch(config, clock)
        assert report.digests == 1 and report.sent == 1
        (msg,) = rx.messages
        assert msg.title == "news-monitor digest: 3 alerts (kursk, parade)"
        assert msg.text.index("### kursk") < msg.text.index("### parade")
        assert "Troops in Kursk" in msg.text and "Parade cancelled" in msg.text
        assert set(statuses(store).values()) == {"sent"}
        clock.advance(timedelta(hours=3))
        seed(store, "A", [story(4, "kursk", title="Later news")], now=clock.now())
        assert dispatch(config, clock).sent == 0  # not before tomorrow's 08:00
        clock.set(datetime(2026, 3, 2, 7, 0, 5, tzinfo=UTC))
        assert dispatch(config, clock).sent == 1
        assert "Later news" in rx.messages[-1].text and len(rx.messages) == 2


# --------------------------------------------------------------------------- health


HEALTH = """
database: m.db
feeds: [{{name: Flaky, url: "https://flaky.example/feed"}}]
channels:
  chat: "{chat}"
  ops: "{ops}"
topics: [{{name: t, query: x, notify: [chat]}}]
health: {{notify: [ops, chat], feed_failing_after: 24h, channel_failing_after: 1h}}
"""


def test_health_notices_once_per_incident(tmp_path: Path) -> None:
    with Receiver() as rx:
        config = make_config(
            tmp_path, HEALTH.format(chat=rx.url("json", "/chat"), ops=rx.url("json", "/ops"))
        )
        store = open_store(config)
        clock = FakeClock(NOW)
        failing = FeedStateUpdate(
            status=FeedStatus.ERROR,
            last_fetch=NOW - timedelta(hours=25),
            next_fetch=NOW,
            error_count=9,
            error="HTTP 503 from https://user:hunter2@flaky.example/feed",
        )
        store.record_feed_state("Flaky", failing)
        dispatch(config, clock)
        feed_notices = [m for m in rx.messages if "Flaky" in m.text]
        assert {m.path for m in feed_notices} == {"/ops", "/chat"}
        assert "hunter2" not in feed_notices[0].text  # secrets masked
        dispatch(config, clock)
        clock.advance(timedelta(hours=2))
        dispatch(config, clock)
        assert len([m for m in rx.messages if "Flaky" in m.text]) == 2  # once per channel

        # The chat channel goes down for longer than channel_failing_after: ops is told, once.
        rx.on_request = lambda got, when: _refuse_chat(rx, got, when)
        seed(store, "Flaky", [story(1, "t")], now=clock.now())
        for _ in range(12):
            clock.advance(timedelta(minutes=15))
            dispatch(config, clock)
        about_chat = [m for m in rx.messages if "channel chat" in m.text]
        assert [m.path for m in about_chat] == ["/ops"]

        async def rejected() -> int:
            d = Dispatcher(config, config.database, clock)
            try:
                first = await d.config_rejected(["monitor.yaml:3: feeds: bad"])
                again = await d.config_rejected(["monitor.yaml:3: feeds: bad"])
                await d.send_due()
                return first * 10 + again
            finally:
                await d.aclose()

        rx.on_request = None
        rx.down = False
        assert run(rejected()) == 20  # queued for ops and chat the first time only
        rejected_notices = [m.path for m in rx.messages if "config edit rejected" in m.title]
        assert rejected_notices == ["/ops"]  # chat's is queued behind its backing-off alert
        clock.advance(timedelta(hours=2))
        dispatch(config, clock)
        chat = [m for m in rx.messages if m.path == "/chat"]
        assert [m.title for m in chat[-2:]] == ["t: Story 1", "news-monitor: config edit rejected"]


# --------------------------------------------------------------------------- end to end


def test_monitor_once_polls_then_delivers_and_no_alerts_skips(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    from monitor.once import run_once_command

    story_ = make_story(7, "en", title="Kim Jong Un meets Putin in Vladivostok")
    entry = newsroom.add_article("/en/news/kim-putin", story_)
    feed_url = newsroom.add_feed("/en.xml", [entry])
    with Receiver() as rx:
        path = tmp_path / "config" / "monitor.yaml"
        path.parent.mkdir()
        path.write_text(
            f"""
database: ../state/monitor.db
workers: 0
defaults: {{timeout: 2s, alert_max_age: null}}
feeds: [{{name: Newsroom, url: "{feed_url}"}}]
channels: {{chat: "{rx.url("json", "/chat")}"}}
topics: [{{name: summit, query: putin, notify: [chat]}}]
""",
            encoding="utf-8",
        )
        config = load_config(path)
        console = Console(file=open(tmp_path / "out.txt", "w"), force_terminal=False)  # noqa: SIM115
        clock = FakeClock(NOW)
        assert run(run_once_command(config, console, send_alerts=False, clock=clock)) == 0
        assert rx.messages == []
        store = Store.open(config.database)
        assert list(statuses(store).values()) == ["pending"]
        assert run(run_once_command(config, console, send_alerts=True, clock=clock)) == 0
        (msg,) = rx.messages
        assert msg.title == "summit: Kim Jong Un meets Putin in Vladivostok"
        assert "**Putin**" in msg.text or "*Putin*" in msg.text
        assert list(statuses(store).values()) == ["sent"]
        console.file.close()


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_test_command_sends_a_sample(tmp_path: Path, fmt: str) -> None:
    with Receiver() as rx:
        config = make_config(
            tmp_path,
            f'database: m.db\nchannels: {{c: {{url: "{rx.url()}", format: {fmt}}}}}\n',
        )

        async def go() -> Any:
            d = Dispatcher(config, config.database, FakeClock(NOW))
            try:
                return await d.send_test("c")
            finally:
                await d.aclose()

        result = run(go())
        assert result.ok and "JSON" in result.detail
        rx.down = True
        failed = run(go())
    assert not failed.ok
    assert "503" in failed.detail
    assert len(rx.messages) == 1 and "Test alert" in rx.messages[0].title


def quick_feed_name() -> str:
    """A feed name whose first poll the daemon schedules within 0.3 s of start-up."""
    from monitor.schedule import startup_offset

    return next(
        f"feed-{n}" for n in range(100_000) if startup_offset(f"feed-{n}") < timedelta(seconds=0.3)
    )


def test_daemon_sends_right_after_a_poll_and_stops_cleanly(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    from monitor.daemon import Daemon

    entry = newsroom.add_article(
        "/en/news/parade", make_story(3, "en", title="Pyongyang parade shows new missiles")
    )
    feed_url = newsroom.add_feed("/parade.xml", [entry])
    arrived = threading.Event()
    with Receiver(on_request=lambda got, when: arrived.set() if when == "after" else None) as rx:
        path = tmp_path / "config" / "monitor.yaml"
        path.parent.mkdir()
        path.write_text(
            f"""
database: ../state/monitor.db
workers: 0
defaults: {{timeout: 2s, interval: 1h, alert_max_age: null}}
feeds: [{{name: {quick_feed_name()}, url: "{feed_url}"}}]
channels:
  chat: "{rx.url("json", "/chat")}"
  morning: {{url: "{rx.url("json", "/digest")}", mode: digest, schedule: "0 8 * * *"}}
topics: [{{name: parade, query: missiles, notify: [chat, morning]}}]
""",
            encoding="utf-8",
        )
        config = load_config(path)

        async def serve() -> bool:
            daemon = Daemon(config)
            task = asyncio.create_task(daemon.serve())
            try:
                return await asyncio.to_thread(arrived.wait, 20)
            finally:
                daemon.request_stop()
                await task

        assert run(serve())
        (msg,) = rx.messages
        assert msg.path == "/chat" and msg.title == "parade: Pyongyang parade shows new missiles"
    store = Store.open(config.database)
    assert statuses(store) == {"dev:1:chat:1": "sent", "dev:1:morning:1": "pending"}


def test_final_failure_log_says_how_to_retry_and_tries_add_up_across_retries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Receiver(down=True) as rx:
        config = chat_config(tmp_path, rx)
        store = open_store(config)
        clock = FakeClock(NOW)
        seed(store, "A", [story(1, "t")])
        with caplog.at_level(logging.WARNING, logger="monitor.alert"):
            assert dispatch(config, clock).retrying == 1
            clock.set(NOW + timedelta(days=2))  # past the channel's 24 h retry budget
            assert dispatch(config, clock).failed == 1
        (row,) = outbox.list_rows(store.conn)
        lines = [r.getMessage() for r in caplog.records if r.name == "monitor.alert"]
        assert "queues it again" not in lines[0]  # still retrying: no hint
        assert lines[1].startswith(f"alert {row.key} to chat failed (failed): ")
        assert lines[1].endswith(f"; `monitor alerts retry {row.id}` queues it again")

        assert outbox.retry_failed(store.conn, clock.now()) == 1
        assert dispatch(config, clock).retrying == 1
        again = outbox.get(store.conn, row.id)
        assert again is not None and again.status == "pending"
        # The back-off restarts from the retry; the listing counts every try.
        assert again.attempts == 1 and again.total_attempts == 3
        assert again.next_attempt_at == clock.now() + outbox.backoff(1)
        assert again.as_json()["total_attempts"] == 3
