"""Operating it: `monitor status`, /healthz and /metrics, retention and `monitor vacuum`."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor import ops
from monitor.clock import FakeClock, SystemClock
from monitor.config import Config, load_config, parse_address
from monitor.daemon import Daemon, write_heartbeat
from monitor.ops import (
    DaemonLockError,
    DaemonRunning,
    daemon_lock,
    daemon_lock_free,
    lock_file,
    mark_daemon_stopped,
    read_daemon_state,
    read_watermark,
    write_daemon_state,
)
from monitor.schedule import FeedStatus
from monitor.store import FeedStateUpdate, Store
from monitor.timescale import TimeScale
from tests.alert_helpers import Received, Receiver, distinct_text, open_store, seed, story
from tests.daemon_helpers import Events, feeds_yaml, running, write_config
from tests.newsroom import Newsroom, Status, make_story
from tests.test_cli import cli

# --------------------------------------------------------------------------- monitor status


def status_config(tmp_path: Path, extra: str = "") -> Config:
    path = write_config(
        tmp_path / "monitor.yaml",
        "database: state/m.db\nheartbeat: state/heartbeat\n"
        "channels: {chat: 'json://127.0.0.1:9/hook'}\n"
        "topics:\n  - {name: t, query: x, notify: [chat]}\n"
        + feeds_yaml(
            {
                "Good": "https://good.example/f",
                "Bad": "https://bad.example/f",
                "Off": "https://off.example/f",
                "Fresh": "https://fresh.example/f",
            },
            Off="enabled: false",
        )
        + extra,
    )
    return load_config(path)


def test_status_reports_uptime_feeds_items_alerts_and_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = status_config(tmp_path)
    now = SystemClock().now()
    store = open_store(config)
    seed(store, "Good", [story(n, "t") for n in range(3)], now=now)
    seed(store, "Good", [story(n, "t") for n in range(3, 5)], now=now - timedelta(days=2))
    failing = FeedStateUpdate(
        status=FeedStatus.ERROR,
        last_fetch=now,
        next_fetch=now + timedelta(minutes=30),
        error_count=3,
        error="HTTP 503 Service Unavailable",
    )
    store.record_feed_state("Bad", failing)
    store.conn.execute("UPDATE outbox SET status = 'failed' WHERE id = 1")
    store.close()
    write_heartbeat(config.heartbeat, SystemClock())
    write_daemon_state(config, now - timedelta(hours=2), "127.0.0.1:9100")

    assert cli(["status", "--json", "--config", str(config.path)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["running"] is True and found["http"] == "127.0.0.1:9100"
    assert 7190 < found["uptime_seconds"] < 7300
    assert found["feeds"] == {"ok": 1, "failing": 1, "gone": 0, "new": 1, "disabled": 1}
    assert found["failing"][0]["name"] == "Bad"
    assert found["failing"][0]["error"] == "HTTP 503 Service Unavailable"
    assert (found["items_today"], found["items_total"]) == (3, 5)
    assert found["alerts"]["pending"] == 4 and found["alerts"]["failed"] == 1
    assert found["database_bytes"] > 0

    assert cli(["status", "--config", str(config.path)]) == 0
    text = capsys.readouterr().out
    assert "running (pid" in text and "up 2.0h" in text
    assert "feeds: 1 ok, 1 failing, 0 gone, 1 not yet polled, 1 disabled" in text
    assert "HTTP 503 Service Unavailable" in text
    assert "items: 3 today, 5 in all" in text
    assert "alerts: 4 pending, 1 failed, 0 sent" in text


def test_status_says_when_the_daemon_is_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = status_config(tmp_path)
    assert cli(["status", "--json", "--config", str(config.path)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["running"] is False and found["uptime_seconds"] is None
    assert "has not run here" in found["notes"][0]

    write_heartbeat(config.heartbeat, FakeClock(SystemClock().now() - timedelta(minutes=10)))
    assert cli(["status", "--config", str(config.path)]) == 0
    text = capsys.readouterr().out
    assert "not running" in text and "last heartbeat 10m ago" in text


def test_status_and_healthcheck_say_at_once_that_the_daemon_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = status_config(tmp_path)
    now = SystemClock().now().replace(microsecond=0)
    started = now - timedelta(hours=1)
    write_heartbeat(config.heartbeat, FakeClock(now))
    write_daemon_state(config, started, None)
    assert cli(["healthcheck", "--config", str(config.path)]) == 0
    assert "ok: heartbeat" in capsys.readouterr().out
    # Another daemon (same heartbeat file, another database) stopping leaves our record alone.
    mark_daemon_stopped(config, started - timedelta(days=1), now)
    assert "stopped" not in read_daemon_state(config)
    mark_daemon_stopped(config, started, now)  # our clean stop: the heartbeat is still fresh
    assert cli(["status", "--json", "--config", str(config.path)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["running"] is False and found["pid"] is None
    (note,) = found["notes"]
    assert re.fullmatch(r"the daemon stopped \d+s ago", note), note  # seconds on a real clock
    assert cli(["healthcheck", "--config", str(config.path)]) == 1
    assert "the daemon stopped at" in capsys.readouterr().err
    # A heartbeat after the stop mark: a daemon is beating that could not rewrite the record.
    write_heartbeat(config.heartbeat, FakeClock(now + timedelta(seconds=2)))
    assert cli(["status", "--json", "--config", str(config.path)]) == 0
    assert json.loads(capsys.readouterr().out)["running"] is True
    assert cli(["healthcheck", "--config", str(config.path)]) == 0


# A stand-in for the daemon's process: it takes the daemon lock as `monitor run` does and holds it.
LOCK_HOLDER = """
import sys
from monitor.config import load_config
from monitor.ops import daemon_lock
with daemon_lock(load_config(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_killed_daemon_is_not_running_though_its_heartbeat_is_fresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = status_config(tmp_path)
    now = SystemClock().now()
    write_heartbeat(config.heartbeat, FakeClock(now - timedelta(seconds=11)))
    write_daemon_state(config, now - timedelta(hours=1), None)
    # No lock file (a daemon from before the lock, or a deleted file): the heartbeat decides.
    assert daemon_lock_free(config) is None and not lock_file(config).exists()
    assert cli(["healthcheck", "--config", str(config.path)]) == 0
    capsys.readouterr()

    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(config.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        # Probing neither waits for the holder nor takes its lock away.
        assert daemon_lock_free(config) is False
        assert cli(["status", "--json", "--config", str(config.path)]) == 0
        found = json.loads(capsys.readouterr().out)
        assert found["running"] is True and found["notes"] == []
        assert cli(["healthcheck", "--config", str(config.path)]) == 0
        assert re.fullmatch(r"ok: heartbeat \d+s old\n", capsys.readouterr().out)
        with pytest.raises(DaemonRunning, match=rf"\(pid {holder.pid}\)"), daemon_lock(config):
            pass
    finally:
        holder.kill()  # kill -9: no clean stop is recorded
        holder.wait(timeout=30)
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.stdout.close()

    assert daemon_lock_free(config) is True
    assert cli(["status", "--config", str(config.path)]) == 0
    text = capsys.readouterr().out
    assert "daemon: not running" in text and "running (pid" not in text
    assert re.search(r"stopped without a clean shutdown; last heartbeat \d+s ago", text), text
    assert cli(["status", "--json", "--config", str(config.path)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["running"] is False and found["pid"] is None and found["uptime_seconds"] is None
    assert cli(["healthcheck", "--config", str(config.path)]) == 1
    assert "the daemon is not running: it stopped without a clean shutdown" in (
        capsys.readouterr().err.replace("\n", " ")
    )
    # The probe left the lock free: a daemon can start.
    with daemon_lock(config):
        assert daemon_lock_free(config) is False


# An edit the running daemon rejects: a typo, and a secret from the environment in a value whose
# problem quotes it.
BROKEN_EDIT = """database: state/m.db
heartbeat: state/heartbeat
channels:
  chat:
    url: "json://hook.example/${HOOK_TOKEN}"
    mode: digset
    retry_for: ${HOOK_TOKEN}
"""


def _broken_running_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """A daemon's heartbeat and state as `monitor run` leaves them, then its config broken."""
    monkeypatch.setenv("HOOK_TOKEN", "tok-7f3a9c")
    config = status_config(tmp_path)
    store = open_store(config)
    seed(store, "Good", [story(n, "t") for n in range(2)], now=SystemClock().now())
    store.close()
    write_heartbeat(config.heartbeat, SystemClock())
    write_daemon_state(config, SystemClock().now() - timedelta(hours=2), None)
    write_config(config.path, BROKEN_EDIT)
    return config


def test_healthcheck_judges_the_daemon_while_its_config_is_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _broken_running_daemon(tmp_path, monkeypatch)
    with daemon_lock(config):  # the daemon's process, alive
        assert cli(["healthcheck", "--config", str(config.path)]) == 0
        got = capsys.readouterr()
        assert re.fullmatch(r"ok: heartbeat \d+s old\n", got.out)  # as with a valid config
        (warning,) = got.err.splitlines()
        assert warning == (
            f"warning: {config.path} does not validate (2 problems; `monitor check` lists them): "
            f"judging the daemon by {config.heartbeat} and its lock"
        )
    # The lock is free: the daemon is gone, and the broken config does not hide that.
    assert cli(["healthcheck", "--config", str(config.path)]) == 1
    assert "stopped without a clean shutdown" in capsys.readouterr().err.replace("\n", " ")


def test_healthcheck_falls_back_to_the_default_locations_when_the_file_does_not_parse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "config" / "monitor.yaml", "feeds: []\n")
    heartbeat = (tmp_path / "state" / "heartbeat").resolve()  # the config model's default
    write_heartbeat(heartbeat, SystemClock())
    write_config(path, "feeds:\n  - name: A\n    url: https://a.example/f\n      interval: 5m\n")
    assert cli(["healthcheck", "--config", str(path)]) == 0
    got = capsys.readouterr()
    assert got.out.startswith("ok: heartbeat")
    assert f"judging the daemon by the default {heartbeat} and its lock" in got.err
    write_heartbeat(heartbeat, FakeClock(SystemClock().now() - timedelta(minutes=5)))
    assert cli(["healthcheck", "--config", str(path)]) == 1
    assert re.search(r"heartbeat is 30\ds old \(limit 90s\)", capsys.readouterr().err)


def test_status_shows_the_config_problems_and_the_running_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _broken_running_daemon(tmp_path, monkeypatch)
    with daemon_lock(config):
        assert cli(["status", "--config", str(config.path)]) == 2
        got = capsys.readouterr()
        assert "daemon: running (pid" in got.out and "up 2.0h" in got.out
        assert "feeds: not known while the config does not validate" in got.out
        assert "items: 2 today, 2 in all" in got.out
        assert f"database: {config.database}" in got.out
        errors = got.err.splitlines()
        assert errors[0] == f"error: {config.path} does not validate:"
        assert errors[1] == f"{config.path}:6: channels.chat.mode: 'digset' is not one of " + (
            "immediate, digest (did you mean 'digest'?)"
        )
        assert errors[2].startswith(f"{config.path}:7: channels.chat.retry_for: '***' is not")
        assert errors[3] == (
            f"the daemon running on {config.database} (pid {os.getpid()}) keeps its previous "
            "config until this file validates"
        )
        assert "tok-7f3a9c" not in got.out + got.err

        assert cli(["status", "--json", "--config", str(config.path)]) == 2
        got = capsys.readouterr()
        found = json.loads(got.out)
        assert found["running"] is True and found["feeds"] is None and found["failing"] == []
        assert found["items_total"] == 2
        assert [p.split(": ")[1] for p in found["config_problems"]] == [
            "channels.chat.mode",
            "channels.chat.retry_for",
        ]
        assert "tok-7f3a9c" not in got.out + got.err
    # A valid config: the same key, empty.
    write_config(config.path, "database: state/m.db\nheartbeat: state/heartbeat\nfeeds: []\n")
    assert cli(["status", "--json", "--config", str(config.path)]) == 0
    assert json.loads(capsys.readouterr().out)["config_problems"] == []


def test_status_of_a_broken_config_never_creates_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "config" / "monitor.yaml", "database: new.db\nlog_level: loud\n")
    assert cli(["status", "--config", str(path)]) == 2
    errors = capsys.readouterr().err
    assert f"{path}:2: log_level: 'loud' is not one of" in errors
    assert f"no database at {(tmp_path / 'config' / 'new.db').resolve()}" in errors
    assert not (tmp_path / "config" / "new.db").exists()


def test_other_commands_fail_on_a_broken_config_and_say_the_daemon_keeps_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _broken_running_daemon(tmp_path, monkeypatch)
    note = f"the daemon running on {config.database} (pid {os.getpid()}) keeps its previous config"
    with daemon_lock(config):
        for command in (
            ["feeds"],
            ["items"],
            ["alerts"],
            ["developments"],
            ["search", "x"],
            ["check"],
        ):
            assert cli([*command, "--config", str(config.path)]) == 2, command
            got = capsys.readouterr()
            assert got.out == ""
            errors = got.err.splitlines()
            assert errors[0].startswith(f"{config.path}:6: channels.chat.mode:"), command
            assert errors[-1].startswith(note), command
            assert "tok-7f3a9c" not in got.err
    # No daemon holds the lock: the problems alone.
    assert cli(["feeds", "--config", str(config.path)]) == 2
    assert "keeps its previous config" not in capsys.readouterr().err


def test_a_daemon_starting_while_a_status_probes_its_lock_is_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = status_config(tmp_path)
    with daemon_lock(config):
        pass  # the lock file exists from now on
    # A `monitor status` probe in flight holds a shared lock for an instant; it ends while the
    # starting daemon pauses between its tries.
    probe = os.open(lock_file(config), os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
    pauses: list[float] = []

    def probe_ends(seconds: float) -> None:
        pauses.append(seconds)
        os.close(probe)

    monkeypatch.setattr(ops, "_pause", probe_ends)
    with daemon_lock(config):
        assert daemon_lock_free(config) is False
    assert pauses == [ops.LOCK_PROBE_PAUSES[0]]


def test_a_daemon_that_cannot_create_its_lock_says_so(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where the state folder should be")
    path = write_config(
        tmp_path / "monitor.yaml", "workers: 0\ndatabase: blocker/m.db\nheartbeat: hb\nfeeds: []\n"
    )
    with (
        pytest.raises(
            DaemonLockError, match=r"cannot create the daemon lock .*m\.db\.daemon\.lock"
        ),
        daemon_lock(load_config(path)),
    ):
        pass


# --------------------------------------------------------------------------- /healthz and /metrics


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[str, float]:
    """'name{label="v"}' -> value, from the Prometheus text format."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def test_http_serves_health_and_metrics_even_while_the_loop_is_blocked(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    story_ = make_story(
        1, title="Harbour strike closes the port of Osaka", published=SystemClock().now()
    )
    newsroom.add_feed("/a.xml", [newsroom.add_article("/a/1", story_)])
    newsroom.set_fault("/b.xml", Status(500))
    delivered = threading.Event()

    def on_request(got: Received, when: str) -> None:
        if when == "after":
            delivered.set()

    with Receiver(on_request=on_request) as rx:
        path = write_config(
            tmp_path / "monitor.yaml",
            "workers: 0\ndatabase: state/m.db\nheartbeat: state/heartbeat\n"
            "defaults: {interval: 1h, jitter: 0s}\n"
            f"channels: {{chat: '{rx.url()}'}}\n"
            "topics:\n  - {name: ports, query: harbour, notify: [chat]}\n"
            + feeds_yaml({"A": newsroom.url("/a.xml"), "B": newsroom.url("/b.xml")}),
        )
        events = Events()
        daemon = Daemon(
            load_config(path), startup_spread=timedelta(0), on_poll=events.poll, http="127.0.0.1:0"
        )
        daemon.loop_probe = timedelta(milliseconds=200)

        async def scenario() -> None:
            async with running(daemon, events):
                await events.until(lambda: len(events.polls) == 2)
                assert await asyncio.to_thread(delivered.wait, 20)
                await events.until(lambda: any("alerts sent=1" in m for m in events.logs))
                base = f"http://{daemon.http_address}"

                code, body = await asyncio.to_thread(get, f"{base}/healthz")
                assert code == 200, body
                health = json.loads(body)
                assert health["status"] == "ok" and health["phase"] == "running"
                assert health["problems"] == []

                code, body = await asyncio.to_thread(get, f"{base}/metrics")
                assert code == 200
                found = samples(body)
                assert found['monitor_polls_total{status="ok"}'] == 1
                assert found['monitor_polls_total{status="error"}'] == 1
                assert found["monitor_fetch_errors_total"] == 1
                assert found["monitor_items_stored_total"] == 1
                assert found["monitor_alerts_sent_total"] == 1
                assert found["monitor_poll_duration_seconds_count"] == 2
                assert found['monitor_feeds{status="ok"}'] == 1
                assert found['monitor_feeds{status="failing"}'] == 1
                assert found['monitor_outbox{status="sent"}'] == 1
                assert found["monitor_items"] == 1 and found["monitor_database_bytes"] > 0

                assert (await asyncio.to_thread(get, f"{base}/nope"))[0] == 404

                # Block the event loop (as a runaway computation would) while another thread
                # asks: /metrics still answers, /healthz says the loop is stuck.
                answers: dict[str, tuple[int, str]] = {}
                done = threading.Event()

                def ask() -> None:
                    answers["metrics"] = get(f"{base}/metrics")
                    answers["healthz"] = get(f"{base}/healthz")
                    done.set()

                threading.Thread(target=ask).start()
                assert done.wait(30)  # blocks the daemon's loop until the answers are in
                assert answers["metrics"][0] == 200
                assert answers["healthz"][0] == 503
                assert "did not answer within 0.2s" in answers["healthz"][1]
                code, _ = await asyncio.to_thread(get, f"{base}/healthz")
                assert code == 200  # the loop runs again

        asyncio.run(scenario())


def test_healthz_fails_when_the_heartbeat_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    path = write_config(
        tmp_path / "monitor.yaml",
        "workers: 0\ndatabase: state/m.db\nheartbeat: blocker/heartbeat\nfeeds: []\n",
    )
    events = Events()
    daemon = Daemon(load_config(path), http="127.0.0.1:0")

    async def scenario() -> None:
        async with running(daemon, events):
            await events.until(lambda: any("cannot write heartbeat" in m for m in events.logs))
            code, body = await asyncio.to_thread(get, f"http://{daemon.http_address}/healthz")
            assert code == 503
            assert json.loads(body)["problems"] == ["no fresh heartbeat"]

    asyncio.run(scenario())


def test_http_address_parsing_and_bad_addresses_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parse_address("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_address("[::1]:80") == ("::1", 80)
    assert parse_address("localhost:0") == ("localhost", 0)
    for bad in ("9100", "127.0.0.1", "host:99999", "a b:1"):
        with pytest.raises(ValueError):
            parse_address(bad)
    path = write_config(tmp_path / "monitor.yaml", "http: 'nowhere'\nfeeds: []\n")
    for command in ("check", "run"):  # `monitor check` already says what `run` would refuse
        assert cli([command, "--config", str(path)]) == 2
        assert f"{path}:1: http: 'nowhere' is not HOST:PORT" in capsys.readouterr().err
    good = write_config(tmp_path / "good.yaml", "feeds: []\n")
    assert cli(["run", "--http", "9100", "--config", str(good)]) == 2
    assert "--http: '9100' is not HOST:PORT" in capsys.readouterr().err


# --------------------------------------------------------------------------- retention


def retention_config(tmp_path: Path, keep: str | None = "90d") -> Config:
    retention = f"retention: {{drop_text_after: {keep}}}\n" if keep else ""
    path = write_config(
        tmp_path / "monitor.yaml",
        "workers: 0\ndatabase: state/m.db\nheartbeat: state/heartbeat\n"
        "topics:\n  - {name: t, query: x}\n" + feeds_yaml({"A": "https://a.example/f"}) + retention,
    )
    return load_config(path)


def seed_old_and_new(config: Config, now: datetime) -> tuple[list[int], list[int]]:
    """Ten items first seen 100 days ago (text with 'oldword'), ten seen yesterday ('newword')."""
    store = open_store(config)
    big = " ".join(distinct_text(n) for n in range(40))  # ~10 KB: vacuum has something to free
    old = seed(
        store,
        "A",
        [story(n, "t", text=f"oldword {big}") for n in range(10)],
        now=now - timedelta(days=100),
    )
    new = seed(
        store,
        "A",
        [story(n, "t", text=f"newword {big}") for n in range(10, 20)],
        now=now - timedelta(days=1),
    )
    store.close()
    return old, new


def search_ids(config: Config, query: str, capsys: pytest.CaptureFixture[str]) -> set[int]:
    assert cli(["search", "--json", "--limit", "100", query, "--config", str(config.path)]) == 0
    return {hit["id"] for hit in json.loads(capsys.readouterr().out)}


def test_vacuum_drops_old_text_keeps_metadata_and_shrinks_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = retention_config(tmp_path)
    old, new = seed_old_and_new(config, SystemClock().now())
    assert search_ids(config, "oldword", capsys) == set(old)

    assert cli(["vacuum", "--json", "--config", str(config.path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dropped_text"] == 10 and report["retention"] == "90d"
    assert report["size_after"] < report["size_before"]

    assert search_ids(config, "oldword", capsys) == set()  # gone from the search index
    assert search_ids(config, "newword", capsys) == set(new)
    store = Store.open(config.database, create=False)
    rows = {r["id"]: r for r in store.conn.execute("SELECT * FROM items").fetchall()}
    matches = store.count("matches")
    store.close()
    assert all(rows[i]["text"] == "" and rows[i]["summary"] == "" for i in old)
    assert all(rows[i]["title"] and rows[i]["url"] and rows[i]["fetched"] for i in old)
    assert all("newword" in rows[i]["text"] for i in new)
    assert matches == 20  # matches (and developments, alerts) are metadata: kept

    assert cli(["vacuum", "--config", str(config.path)]) == 0
    text = capsys.readouterr().out
    assert "dropped the text of 0 items older than 90d" in text and "→" in text


def test_vacuum_without_a_limit_keeps_all_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = retention_config(tmp_path, keep=None)
    old, _ = seed_old_and_new(config, SystemClock().now())
    assert cli(["vacuum", "--config", str(config.path)]) == 0
    assert "no limit set" in capsys.readouterr().out
    assert search_ids(config, "oldword", capsys) == set(old)


def test_daemon_runs_retention_on_its_own_schedule(tmp_path: Path) -> None:
    config = retention_config(tmp_path)
    now = SystemClock().now()
    old, new = seed_old_and_new(config, now)
    events = Events()
    # Ten minutes of daemon time per real second: the first daily run is due after 0.5 s.
    daemon = Daemon(config, time_scale=TimeScale.fast(600, now))

    async def scenario() -> None:
        async with running(daemon, events):
            await events.until(lambda: any("retention: dropped" in m for m in events.logs))

    asyncio.run(scenario())
    assert any("dropped the text of 10 items first seen before" in m for m in events.logs)
    store = Store.open(config.database, create=False)
    texts = dict(store.conn.execute("SELECT id, text FROM items").fetchall())
    watermark = read_watermark(store.conn)
    store.close()
    assert [texts[i] for i in old] == [""] * 10 and all(texts[i] for i in new)
    assert watermark is not None and now - timedelta(days=91) < watermark < now
    assert watermark.tzinfo is UTC or watermark.utcoffset() == timedelta(0)


# --------------------------------------------------------------------------- scheduling


def test_feed_jobs_wait_for_the_next_fetch_and_for_retry_after(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    newsroom.publish("/a.xml", 1)
    newsroom.set_fault("/b.xml", Status(503, retry_after=7200))  # "come back in two hours"
    path = write_config(
        tmp_path / "monitor.yaml",
        "workers: 0\ndatabase: state/m.db\nheartbeat: state/heartbeat\n"
        "defaults: {interval: 1h, jitter: 0s}\n"
        + feeds_yaml({"A": newsroom.url("/a.xml"), "B": newsroom.url("/b.xml")}),
    )
    events = Events()
    scale = TimeScale.fast(60)  # an hour of daemon time is a real minute
    daemon = Daemon(
        load_config(path), time_scale=scale, startup_spread=timedelta(0), on_poll=events.poll
    )

    async def scenario() -> None:
        async with running(daemon, events):
            await events.until(lambda: events.polled("A") == events.polled("B") == 1)
            assert daemon._scheduler is not None
            runs = {j.id: j.next_run_time for j in daemon._scheduler.get_jobs()}
            real_now = SystemClock().now()
            # A: one interval (a real minute) after its poll; B: when its server said, not sooner.
            assert abs((runs["feed:A"] - real_now).total_seconds() - 60) < 5
            assert abs((runs["feed:B"] - real_now).total_seconds() - 120) < 5

    asyncio.run(scenario())
    assert [o.status for o in events.polls if o.feed == "B"] == ["error"]


def test_scaled_clock_runs_fast_and_continues_across_restarts() -> None:
    epoch = SystemClock().now() - timedelta(seconds=10)
    first, second = TimeScale.fast(360, epoch), TimeScale.fast(360, epoch)
    # Ten real seconds since the epoch are an hour of daemon time, on every clock of that epoch.
    assert abs((first.clock.now() - epoch) - timedelta(hours=1)) < timedelta(minutes=1)
    assert abs(first.clock.now() - second.clock.now()) < timedelta(minutes=1)
    assert first.real_delay(timedelta(hours=1)) == timedelta(seconds=10)
    due = first.clock.now() + timedelta(hours=2)
    assert abs((first.real_time(due) - SystemClock().now()) - timedelta(seconds=20)) < timedelta(
        seconds=1
    )
    assert TimeScale.fast(1.0).factor == 1.0 and isinstance(TimeScale.real().clock, SystemClock)


# --------------------------------------------------------------------------- one daemon per database


def test_a_second_daemon_on_the_same_database_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()  # `monitor run` sets up logging: keep it from outliving the test
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    path = write_config(
        tmp_path / "monitor.yaml",
        "workers: 0\ndatabase: state/m.db\nheartbeat: state/hb\nfeeds: []\n",
    )
    config = load_config(path)
    events = Events()
    first = Daemon(config)

    async def scenario() -> None:
        async with running(first, events):
            await events.until(lambda: any(m.startswith("started") for m in events.logs))
            with pytest.raises(DaemonRunning, match=rf"m\.db \(pid {os.getpid()}\): stop it first"):
                await Daemon(config).serve()
            # `monitor run` says so and exits 1, leaving the first daemon's state alone.
            assert await asyncio.to_thread(cli, ["run", "--config", str(path)]) == 1
            assert "another daemon is running" in capsys.readouterr().err
            # Nor does a one-off pass run beside it.
            assert await asyncio.to_thread(cli, ["once", "--config", str(path)]) == 1
            assert "another daemon is running" in capsys.readouterr().err
            assert first.phase == "running"
        # Once the first has stopped, the lock is free again.
        second = Daemon(config)
        async with running(second, events):
            await events.until(lambda: second.phase == "running")

    asyncio.run(scenario())


# --------------------------------------------------------------------------- backup


def test_backup_is_one_consistent_snapshot_while_another_connection_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = retention_config(tmp_path, keep=None)
    seed_old_and_new(config, SystemClock().now())
    stop = threading.Event()
    commits = 0

    def writer() -> None:  # the daemon's part: transactions that each write two rows
        nonlocal commits
        store = Store.open(config.database, create=False)
        try:
            while not stop.is_set():
                with store.transaction():
                    for key in ("pair.a", "pair.b"):
                        store.conn.execute(
                            "INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)",
                            (key, str(commits)),
                        )
                commits += 1
        finally:
            store.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while commits < 50:  # the writer is under way
            threading.Event().wait(0.01)
        dest = tmp_path / "backups" / "monitor-copy.db"
        dest.parent.mkdir()
        assert cli(["backup", str(dest), "--config", str(config.path)]) == 0
    finally:
        stop.set()
        thread.join()
    assert f"to {dest}: 20 items" in capsys.readouterr().out
    copy = sqlite3.connect(dest)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file
        pair = dict(copy.execute("SELECT key, value FROM kv WHERE key LIKE 'pair.%'").fetchall())
        assert pair["pair.a"] == pair["pair.b"]  # never half a transaction
        assert copy.execute("SELECT count(*) FROM matches").fetchone()[0] == 20
    finally:
        copy.close()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["monitor-copy.db"]


def test_backup_never_replaces_a_file_unasked_and_leaves_nothing_when_it_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = retention_config(tmp_path, keep=None)
    seed_old_and_new(config, SystemClock().now())
    dest = tmp_path / "copy.db"
    dest.write_text("my notes", encoding="utf-8")
    assert cli(["backup", str(dest), "--config", str(config.path)]) == 1
    assert "exists (use --force to replace it)" in capsys.readouterr().err
    assert dest.read_text(encoding="utf-8") == "my notes"
    assert cli(["backup", str(dest), "--force", "--config", str(config.path)]) == 0
    assert dest.read_bytes().startswith(b"SQLite format 3")

    missing = tmp_path / "no-such-folder" / "copy.db"
    assert cli(["backup", str(missing), "--config", str(config.path)]) == 1
    assert "is not a folder" in capsys.readouterr().err

    for own in ("m.db", "m.db-wal"):  # the live database, or its log, is not a backup target
        assert (
            cli(
                [
                    "backup",
                    str(config.database.parent / own),
                    "--force",
                    "--config",
                    str(config.path),
                ]
            )
            == 1
        )
        assert "is the database itself" in capsys.readouterr().err

    # A name the file system refuses (the partial copy's name, 255+ bytes): nothing is left.
    too_long = tmp_path / ("c" * 250 + ".db")
    assert cli(["backup", str(too_long), "--config", str(config.path)]) == 1
    assert "cannot back up to" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.db", "monitor.yaml", "state"]


def test_rematch_does_not_count_items_whose_text_retention_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = retention_config(tmp_path)
    seed_old_and_new(config, SystemClock().now())  # 20 recorded matches of topic t (query x)
    assert cli(["vacuum", "--config", str(config.path)]) == 0  # the 10 old ones leave the index
    capsys.readouterr()
    assert cli(["rematch", "--topic", "t", "--config", str(config.path)]) == 0
    # Query x matches none: of the recorded matches, only the 10 still indexed say so.
    assert "10 earlier matches that the topic as now written" in capsys.readouterr().out
