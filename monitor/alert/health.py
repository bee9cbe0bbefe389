"""news-monitor telling its `health.notify` channels about its own trouble, once per incident.

Incidents: a feed failing for longer than `health.feed_failing_after`, a channel whose sends have kept
failing for longer than `health.channel_failing_after`, a config edit that was rejected. Each notice
is an outbox row (kind `health`) whose key names the incident (e.g. the feed and the time it started
failing), so the same incident is reported once however often it is checked; a new incident (the
feed recovered, then failed again) gets a new key. A channel is never told about its own failure.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.alert import outbox
from monitor.clock import parse_iso, utc_iso
from monitor.config import Config


@dataclass(frozen=True)
class Incident:
    key: str  # names the incident: the same trouble always gets the same key
    title: str
    lines: tuple[str, ...]
    since: datetime | None = None
    about_channel: str | None = None  # not reported to the channel it is about


def feed_incidents(
    feeds: Iterable[Mapping[str, object]], config: Config, now: datetime
) -> list[Incident]:
    """Pure: feeds (name, failing_since, last_error) failing for longer than the limit."""
    limit = config.model.health.feed_failing_after
    enabled = {f.name for f in config.feeds if f.enabled}
    found = []
    for row in feeds:
        name = str(row["name"])
        since = parse_iso(str(row["failing_since"])) if row["failing_since"] else None
        if name not in enabled or since is None or now - since < limit:
            continue
        error = config.mask(str(row["last_error"] or "unknown error"))
        found.append(
            Incident(
                key=f"health:feed:{name}:{utc_iso(since)}",
                title=f"feed {name} failing since {utc_iso(since)}",
                lines=(
                    f"Feed {name} has failed every poll since {utc_iso(since)}.",
                    f"Last error: {error}",
                ),
                since=since,
            )
        )
    return found


def channel_incidents(
    failing: Iterable[tuple[str, str]],
    waiting: dict[str, int],
    errors: dict[str, str],
    config: Config,
    now: datetime,
) -> list[Incident]:
    """Pure: channels whose sends have failed since (channel, since) for too long."""
    limit = config.model.health.channel_failing_after
    found = []
    for name, since_text in failing:
        since = parse_iso(since_text)
        if since is None or now - since < limit or name not in config.channels:
            continue
        found.append(
            Incident(
                key=f"health:channel:{name}:{utc_iso(since)}",
                title=f"alert channel {name} failing since {utc_iso(since)}",
                lines=(
                    f"Sending to channel {name} has failed since {utc_iso(since)}; "
                    f"{waiting.get(name, 0)} alert(s) waiting (retried with back-off).",
                    f"Last error: {config.mask(errors.get(name) or 'unknown')}",
                ),
                since=since,
                about_channel=name,
            )
        )
    return found


def config_incident(problems: Sequence[str], path: str) -> Incident:
    digest = hashlib.sha256("\n".join(problems).encode()).hexdigest()[:16]
    return Incident(
        key=f"health:config:{digest}",
        title="config edit rejected",
        lines=(
            f"The edited config {path} was rejected; the previous config stays in use.",
            *problems[:20],
        ),
    )


def check(conn: sqlite3.Connection, config: Config, now: datetime) -> int:
    """Find current incidents and queue their notices; returns how many were new."""
    if not config.model.health.notify:
        return 0
    rows = conn.execute(
        "SELECT name, failing_since, last_error FROM feeds WHERE failing_since IS NOT NULL"
    ).fetchall()
    names = ("name", "failing_since", "last_error")
    feeds = [dict(zip(names, row, strict=True)) for row in rows]
    incidents = feed_incidents(feeds, config, now)
    failing = [
        (str(key).removeprefix("failing:"), str(value))
        for key, value in conn.execute(
            "SELECT key, value FROM outbox_state WHERE key LIKE 'failing:%'"
        ).fetchall()
    ]
    waiting, errors = _channel_queues(conn)
    incidents += channel_incidents(failing, waiting, errors, config, now)
    return report(conn, config, incidents, now)


def report(
    conn: sqlite3.Connection, config: Config, incidents: Iterable[Incident], now: datetime
) -> int:
    added = 0
    for incident in incidents:
        for channel in config.model.health.notify:
            if channel == incident.about_channel or channel not in config.channels:
                continue
            payload = {
                "kind": "health",
                "title": incident.title,
                "lines": list(incident.lines),
                "since": utc_iso(incident.since),
            }
            row = outbox.enqueue_message(
                conn,
                key=f"{incident.key}:{channel}",
                kind="health",
                channel=channel,
                payload=payload,
                now=now,
            )
            added += row is not None
    return added


def _channel_queues(conn: sqlite3.Connection) -> tuple[dict[str, int], dict[str, str]]:
    """Alerts waiting per channel, and the channel's latest send error. That error may be on a
    row already given up on (failed): the rows waiting behind it were never tried."""
    waiting: dict[str, int] = {}
    for channel, count in conn.execute(
        """SELECT channel, count(*) FROM outbox
           WHERE status IN ('pending', 'sending') GROUP BY channel"""
    ).fetchall():
        waiting[channel] = count
    errors: dict[str, str] = {}
    for channel, error in conn.execute(
        """SELECT channel, last_error FROM outbox
           WHERE status <> 'sent' AND last_error IS NOT NULL
           ORDER BY coalesce(last_attempt_at, '') DESC, id DESC"""
    ).fetchall():
        errors.setdefault(channel, error)
    return waiting, errors
