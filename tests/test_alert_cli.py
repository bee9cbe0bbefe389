"""`monitor alerts`, `monitor alerts retry`, `monitor alerts test CHANNEL`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.alert import outbox
from monitor.cli import app
from tests.alert_helpers import NOW, Receiver, make_config, open_store, seed, story

CONFIG = """
database: m.db
feeds: [{{name: A, url: "https://a.example/feed"}}]
channels:
  chat: "{url}"
  dead: "json://user:s3cret-pass@127.0.0.1:9/hook"
topics:
  - {{name: t, query: x, notify: [chat]}}
  - {{name: d, query: y, notify: [dead]}}
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MONITOR_CONFIG", str(tmp_path / "monitor.yaml"))
    return CliRunner()


def test_alerts_lists_and_filters_by_status(runner: CliRunner, tmp_path: Path) -> None:
    config = make_config(tmp_path, CONFIG.format(url="json://127.0.0.1:9/chat"))
    store = open_store(config)
    seed(store, "A", [story(1, "t", title="Kursk update"), story(2, "d")])
    row = outbox.claim_next(store.conn, "dead", "w", NOW + timedelta(days=2), timedelta(minutes=1))
    assert row is not None
    failed = "HTTP 503 from json://user:s3cret-pass@127.0.0.1:9/hook"
    outbox.mark_failed(store.conn, row.id, "w", failed, NOW + timedelta(days=2), timedelta(days=1))

    listed = runner.invoke(app, ["alerts", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["channel"], r["status"]) for r in rows] == [("dead", "failed"), ("chat", "pending")]
    assert rows[1]["title"] == "Kursk update" and rows[1]["topics"] == ["t"]
    assert "s3cret-pass" not in listed.stdout  # secrets masked

    only_failed = json.loads(runner.invoke(app, ["alerts", "--status", "failed", "--json"]).stdout)
    # one alert per development: the key names the development the item opened
    assert [r["key"] for r in only_failed] == [f"dev:{only_failed[0]['development_id']}:dead:1"]
    assert only_failed[0]["item_id"] == row.item_id

    table = runner.invoke(app, ["alerts"], env={"COLUMNS": "250"})
    assert table.exit_code == 0 and "1 pending" in table.stdout and "1 failed" in table.stdout
    assert "Kursk update" in table.stdout

    bad = runner.invoke(app, ["alerts", "--status", "lost"])
    assert bad.exit_code == 2


def test_alerts_retry_puts_failed_alerts_back(runner: CliRunner, tmp_path: Path) -> None:
    config = make_config(tmp_path, CONFIG.format(url="json://127.0.0.1:9/chat"))
    store = open_store(config)
    seed(store, "A", [story(2, "d")])
    row = outbox.claim_next(store.conn, "dead", "w", NOW + timedelta(days=2), timedelta(minutes=1))
    assert row is not None
    outbox.mark_failed(store.conn, row.id, "w", "down", NOW + timedelta(days=2), timedelta(days=1))
    result = runner.invoke(app, ["alerts", "retry"])
    assert result.exit_code == 0 and "1 failed alert queued again" in result.stdout
    again = outbox.get(store.conn, row.id)
    assert again is not None and again.status == "pending" and again.attempts == 0
    assert again.total_attempts == 1  # the try before the retry still counts in the listing
    listed = runner.invoke(app, ["alerts"], env={"COLUMNS": "60"})
    assert listed.exit_code == 0 and "1 try" in listed.stdout, listed.stdout
    # Named ids that cannot be retried say why; an unknown one fails the command.
    named = runner.invoke(app, ["alerts", "retry", str(row.id), "999"])
    assert named.exit_code == 1 and "0 failed alerts queued again" in named.stdout
    assert f"alert {row.id}: pending, not failed: nothing to retry" in named.output
    assert "alert 999: no such alert" in named.output


def test_alerts_test_reports_what_the_channel_answered(runner: CliRunner, tmp_path: Path) -> None:
    with Receiver() as rx:
        make_config(tmp_path, CONFIG.format(url=rx.url("json", "/chat")))
        ok = runner.invoke(app, ["alerts", "test", "chat"])
        assert ok.exit_code == 0, ok.output
        assert "sent a test alert to chat" in ok.stdout and "JSON: SUCCESS" in ok.stdout
        assert len(rx.messages) == 1 and rx.messages[0].path == "/chat"
        rx.down = True
        down = runner.invoke(app, ["alerts", "test", "chat"])
        assert down.exit_code == 1 and "503" in down.output
        # Said once: apprise's own warning of the same failure is not printed beside it.
        assert "apprise" not in down.output.replace("apprise URL", "")
        unknown = runner.invoke(app, ["alerts", "test", "nope"])
        assert unknown.exit_code == 2 and "no channel named 'nope'" in unknown.output


def test_alerts_for_an_unknown_channel_is_an_error_but_a_removed_one_still_lists(
    runner: CliRunner, tmp_path: Path
) -> None:
    config = make_config(tmp_path, CONFIG.format(url="json://127.0.0.1:9/chat"))
    store = open_store(config)
    seed(store, "A", [story(1, "t")])  # one alert to chat
    store.close()
    unknown = runner.invoke(app, ["alerts", "--channel", "chta"])
    assert unknown.exit_code == 2
    assert "no channel named 'chta' (channels: chat, dead)" in unknown.output
    quiet = runner.invoke(app, ["alerts", "--channel", "dead"])  # configured, nothing sent yet
    assert quiet.exit_code == 0 and "no alerts to show" in quiet.stdout

    # chat is taken out of the config; the alerts it was sent are still there to look at.
    make_config(
        tmp_path,
        'database: m.db\nfeeds: [{name: A, url: "https://a.example/feed"}]\n'
        'channels: {dead: "json://127.0.0.1:9/hook"}\ntopics: [{name: d, query: y}]\n',
    )
    kept = runner.invoke(app, ["alerts", "--channel", "chat", "--json"])
    assert kept.exit_code == 0, kept.output
    assert [r["channel"] for r in json.loads(kept.stdout)] == ["chat"]
    none_failed = runner.invoke(app, ["alerts", "--channel", "chat", "--status", "failed"])
    assert none_failed.exit_code == 0 and "no alerts to show" in none_failed.stdout
    unknown = runner.invoke(app, ["alerts", "--channel", "chta"])
    assert unknown.exit_code == 2
    assert "(channels: dead; no longer configured but in the outbox: chat)" in unknown.output
