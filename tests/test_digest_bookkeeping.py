"""How `monitor alerts` and `monitor status` count and show a digest channel's alerts: waiting for
the digest (and when it goes out), then delivered in it; messages counted as messages."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.alert import outbox
from monitor.alert.digest import next_digest
from monitor.alert.dispatch import Dispatcher, DispatchReport
from monitor.cli import _digest_time, app
from monitor.clock import FakeClock, SystemClock, utc_iso
from monitor.config import Channel, Config
from tests.alert_helpers import Receiver, make_config, open_store, seed, story

CONFIG = """
database: m.db
feeds: [{{name: A, url: "https://a.example/feed"}}]
channels:
  chat: "{chat}"
  morning: {{url: "{morning}", mode: digest, schedule: "0 8 * * *", timezone: UTC}}
topics:
  - {{name: t, query: x, notify: [chat, morning]}}
"""


def dispatch(config: Config, clock: FakeClock) -> DispatchReport:
    async def go() -> DispatchReport:
        dispatcher = Dispatcher(config, config.database, clock)
        try:
            return await dispatcher.send_due()
        finally:
            await dispatcher.aclose()

    return asyncio.run(go())


def render(runner: CliRunner, args: list[str], columns: int) -> str:
    result = runner.invoke(app, args, env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MONITOR_CONFIG", str(tmp_path / "monitor.yaml"))
    return CliRunner()


def test_digest_alerts_wait_for_their_digest_then_count_as_delivered_in_it(
    runner: CliRunner, tmp_path: Path
) -> None:
    with Receiver() as rx:
        config = make_config(
            tmp_path, CONFIG.format(chat=rx.url("json", "/chat"), morning=rx.url("json", "/dg"))
        )
        now = SystemClock().now()
        store = open_store(config)
        assert dispatch(config, FakeClock(now)).sent == 0  # the digest's schedule starts now
        seed(store, "A", [story(n, "t", title=f"Story {n}") for n in range(4)], now=now)
        assert dispatch(config, FakeClock(now)).sent == 4  # the chat ones, at once

        # Waiting: when the digest goes out, not an attempt time that reads as overdue.
        at = r"waits for digest (tomorrow )?at 08:00 UTC"
        wide = render(runner, ["alerts"], 250)
        assert "(outbox: 0 pending, 4 waiting for digest, 0 failed, 4 sent)" in wide
        assert len(re.findall(rf"│ pending │ 0     │ {at} │", wide)) == 4
        narrow = " ".join(render(runner, ["alerts"], 80).split())
        assert (
            len(re.findall(rf"morning alert \(digest\) 0 tries created \S+ ago {at}", narrow)) == 4
        )
        status = render(runner, ["status"], 80)
        assert "alerts: 0 pending, 4 waiting for digest, 0 failed, 4 sent" in status

        # The schedule fired while nothing ran: due now, and the next dispatch sends it.
        outbox.state_set(store.conn, "digest:morning", utc_iso(now - timedelta(days=2)) or "")
        assert "waits for digest due now" in render(runner, ["alerts"], 250)
        report = dispatch(config, FakeClock(now))
        assert report.digests == 1 and report.sent == 1
        assert len(rx.messages) == 5

    # One digest message of four alerts: five messages in all, not nine "sent".
    wide = render(runner, ["alerts"], 250)
    assert "(outbox: 0 pending, 0 failed, 5 messages sent, 4 alerts delivered in digests)" in wide
    assert "digest of 4 alerts" in wide
    status = render(runner, ["status", "--json"], 80)
    assert '"waiting_for_digest": 0' in status and '"delivered_in_digests": 4' in status
    counts = outbox.counts(store.conn)
    assert (counts["sent"], counts["delivered_in_digests"]) == (5, 4)
    (digest,) = outbox.list_rows(store.conn, kind="digest")
    assert digest.as_json()["title"] == "digest of 4 alerts"
    store.close()


def test_next_digest_follows_the_schedule_in_the_channels_zone(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, CONFIG.format(chat="json://127.0.0.1:9/c", morning="json://127.0.0.1:9/m")
    )
    store = open_store(config)
    channel = Channel(
        url="json://x", mode="digest", schedule="55 20 * * *", timezone="Europe/Berlin"
    )
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
    fresh = next_digest(store.conn, "evening", channel, now)  # no digest yet: the next after now
    assert fresh == datetime(2026, 3, 2, 19, 55, tzinfo=UTC)
    assert _digest_time(fresh, "Europe/Berlin", now) == "at 20:55 CET"
    outbox.state_set(store.conn, "digest:evening", "2026-03-02T20:00:00Z")  # today's went out
    tomorrow = next_digest(store.conn, "evening", channel, now + timedelta(hours=8))
    assert tomorrow == datetime(2026, 3, 3, 19, 55, tzinfo=UTC)
    assert _digest_time(tomorrow, "Europe/Berlin", now) == "tomorrow at 20:55 CET"
    assert _digest_time(tomorrow, "Europe/Berlin", now - timedelta(days=2)) == "on Tue at 20:55 CET"
    assert _digest_time(tomorrow, "Europe/Berlin", now - timedelta(days=9)) == (
        "on 2026-03-03 at 20:55 CET"
    )
    assert _digest_time(tomorrow, "Europe/Berlin", tomorrow) == "due now"
    store.close()


def test_alerts_help_names_every_accepted_status(runner: CliRunner) -> None:
    result = runner.invoke(app, ["alerts", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "pending, sending, sent, failed" in " ".join(result.stdout.split())
