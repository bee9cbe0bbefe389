"""Digests: a digest channel's alerts collected into one message on its cron schedule.

When a channel's schedule has fired since its last digest, one digest row is queued (kind `digest`,
key `digest:CHANNEL:FIRE-TIME`) holding every waiting member alert; the members point at it
(`digest_id`) and become `sent` or `failed` with it. The digest row itself goes through the same
claim / send / retry path as an immediate alert. Missed fire times (the service was down) make one
digest, not one per missed slot.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from monitor.alert import outbox
from monitor.clock import parse_iso, utc_iso
from monitor.config import Channel
from monitor.sqlin import in_chunks
from monitor.store.outlets import OUTLET_SQL


def next_fire(schedule: str, zone: str, last: datetime) -> datetime | None:
    """The first fire time of `schedule` after `last`."""
    trigger = CronTrigger.from_crontab(schedule, timezone=zone)
    # Timestamps are stored to the second: start a second later so `last` itself is not due again.
    fire: datetime | None = trigger.get_next_fire_time(None, last + timedelta(seconds=1))
    return fire


def due_fire(schedule: str, zone: str, last: datetime, now: datetime) -> datetime | None:
    """The first fire time of `schedule` after `last`, when it is not later than `now`."""
    fire = next_fire(schedule, zone, last)
    return fire if fire is not None and fire <= now else None


def next_digest(
    conn: sqlite3.Connection, name: str, channel: Channel, now: datetime
) -> datetime | None:
    """When the channel's next digest is due: its schedule's first fire time after the last
    digest (after now for a channel no dispatcher has looked at yet, as `build_digest` starts
    it). A time already past is due: the next dispatch (or run) sends it."""
    if not channel.schedule:
        return None
    last = parse_iso(outbox.state_get(conn, f"digest:{name}")) or now
    return next_fire(channel.schedule, channel.timezone, last)


def build_digest(
    conn: sqlite3.Connection,
    name: str,
    channel: Channel,
    now: datetime,
    topic_order: Sequence[str] = (),
) -> int | None:
    """Queue the channel's digest when its schedule says so; returns the digest row id."""
    assert channel.schedule
    state_key = f"digest:{name}"
    with outbox.transaction(conn):
        last = parse_iso(outbox.state_get(conn, state_key))
        if last is None:  # first look at this channel: the next fire time after now is the first
            outbox.state_set(conn, state_key, utc_iso(now) or "")
            return None
        fire = due_fire(channel.schedule, channel.timezone, last, now)
        if fire is None:
            return None
        outbox.state_set(conn, state_key, utc_iso(now) or "")
        members = outbox.digest_members(conn, name)
        if not members:
            return None
        payload = _payload(conn, name, members, last, now, topic_order)
        topics = list(dict.fromkeys(t for m in members for t in m.topics))
        digest_id = outbox.enqueue_message(
            conn,
            key=f"digest:{name}:{utc_iso(fire)}",
            kind="digest",
            channel=name,
            payload=payload,
            now=now,
            topics=topics,
        )
        if digest_id is not None:
            outbox.attach_to_digest(conn, digest_id, [m.id for m in members])
    return digest_id


def _payload(
    conn: sqlite3.Connection,
    name: str,
    members: Sequence[outbox.OutboxRow],
    since: datetime,
    now: datetime,
    topic_order: Sequence[str],
) -> dict[str, Any]:
    dev_ids = sorted(
        {d["id"] for m in members for d in m.payload.get("developments") or [] if d.get("id")}
    )
    return {
        "kind": "digest",
        "channel": name,
        "since": utc_iso(since),
        "until": utc_iso(now),
        "topics": list(dict.fromkeys(t for m in members for t in m.topics)),
        "topic_order": list(topic_order),
        "entries": [m.payload for m in members],
        "development_outlets": development_outlets(conn, dev_ids),
    }


def development_outlets(conn: sqlite3.Connection, dev_ids: Sequence[int]) -> dict[str, list[str]]:
    """Every outlet that reported each development ("also reported by"), keyed by str(id)."""
    found: dict[str, list[str]] = {}
    for chunk, marks in in_chunks(dev_ids):
        rows = conn.execute(
            f"""SELECT di.development_id, {OUTLET_SQL} AS outlet
                FROM development_items di JOIN items i ON i.id = di.item_id
                LEFT JOIN feeds f ON f.id = i.feed_id
                WHERE di.development_id IN ({marks})
                ORDER BY di.added_at, i.id""",
            chunk,
        ).fetchall()
        for dev_id, outlet in rows:
            if outlet:
                outlets = found.setdefault(str(dev_id), [])
                if outlet not in outlets:
                    outlets.append(outlet)
    return found
