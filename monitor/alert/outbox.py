"""The outbox: alerts written with the match that caused them, sent later, once.

Life of a row: `pending` -> (claimed) `sending` -> `sent`, or back to `pending` with a back-off when the
send failed, or `failed` once the channel has been retried for `retry_for` (24 h by default).

- Claim before send: `claim_next` marks the head of a channel's queue `sending` with a lease
  (`claimed_by`, `claimed_until`) inside one `BEGIN IMMEDIATE` transaction, so two dispatchers (a
  daemon and a `monitor once`) never both get the same row.
- Order per channel: only the oldest unsent row of a channel can be claimed; while it is pending
  (backing off) or being sent, the rows behind it wait.
- A crash while sending leaves the row `sending`; once `claimed_until` has passed anyone may claim it
  again. The one window that can deliver an alert twice: the channel accepted the message, and the
  process died (or the send timed out) before `mark_sent` committed.

Every function takes a `sqlite3.Connection`; `enqueue` runs inside the caller's transaction, the
others open their own short transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.alert.plan import PlannedAlert
from monitor.clock import parse_iso, utc_iso
from monitor.sqlin import in_chunks

BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
STATUSES = ("pending", "sending", "sent", "failed")


@dataclass(frozen=True)
class OutboxRow:
    id: int
    key: str
    kind: str  # alert, digest, health
    channel: str
    mode: str  # immediate, digest (a digest member, sent inside a digest message)
    topics: tuple[str, ...]
    item_id: int | None
    development_id: int | None
    revision: int
    created_at: datetime
    retry_since: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_by: str | None
    claimed_until: datetime | None
    last_error: str | None
    last_attempt_at: datetime | None
    sent_at: datetime | None
    digest_id: int | None
    payload: dict[str, Any]
    earlier_attempts: int = 0  # tries before the last `monitor alerts retry`

    @property
    def total_attempts(self) -> int:
        """Every try, across `monitor alerts retry` (which restarts `attempts`)."""
        return self.attempts + self.earlier_attempts

    def as_json(self) -> dict[str, Any]:
        """For `monitor alerts --json`."""
        return {
            "id": self.id,
            "key": self.key,
            "kind": self.kind,
            "channel": self.channel,
            "mode": self.mode,
            "topics": list(self.topics),
            "item_id": self.item_id,
            "development_id": self.development_id,
            "revision": self.revision,
            "status": self.status,
            "attempts": self.attempts,
            "total_attempts": self.total_attempts,
            "created_at": utc_iso(self.created_at),
            "next_attempt_at": utc_iso(self.next_attempt_at),
            "sent_at": utc_iso(self.sent_at),
            "last_error": self.last_error,
            "digest_id": self.digest_id,
            "title": _title_of(self.kind, self.payload),
        }


def _title_of(kind: str, payload: dict[str, Any]) -> str:
    if kind == "digest":  # its payload has no title of its own: say what it carries
        count = len(payload.get("entries") or [])
        return f"digest of {count} alert{'' if count == 1 else 's'}"
    item = payload.get("item")
    if isinstance(item, dict):
        return str(item.get("title") or "")
    return str(payload.get("title") or "")


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after `attempts` failed ones: 30 s, 1 min, 2 min ... 1 h."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * (1 << max(0, min(attempts - 1, 16))))


# --------------------------------------------------------------------------- transactions


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction of our own, or the caller's when one is already open."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _row(data: dict[str, Any]) -> OutboxRow:
    return OutboxRow(
        id=data["id"],
        key=data["key"],
        kind=data["kind"],
        channel=data["channel"],
        mode=data["mode"],
        topics=tuple(json.loads(data["topics"] or "[]")),
        item_id=data["item_id"],
        development_id=data["development_id"],
        revision=data["revision"],
        created_at=_when(data["created_at"]),
        retry_since=_when(data["retry_since"]),
        status=data["status"],
        attempts=data["attempts"],
        next_attempt_at=_when(data["next_attempt_at"]),
        claimed_by=data["claimed_by"],
        claimed_until=parse_iso(data["claimed_until"]),
        last_error=data["last_error"],
        last_attempt_at=parse_iso(data["last_attempt_at"]),
        sent_at=parse_iso(data["sent_at"]),
        digest_id=data["digest_id"],
        payload=json.loads(data["payload"] or "{}"),
        earlier_attempts=data["earlier_attempts"],
    )


def _when(text: str) -> datetime:
    value = parse_iso(text)
    assert value is not None
    return value


def _iso(when: datetime) -> str:
    text = utc_iso(when)
    assert text is not None
    return text


# --------------------------------------------------------------------------- writing


def enqueue(conn: sqlite3.Connection, rows: Iterable[PlannedAlert]) -> int:
    """Write planned alerts; an alert whose key exists is already queued or sent (idempotent).

    Called by the Store inside the poll's transaction. Returns how many rows were new.
    """
    added = 0
    for row in rows:
        cursor = conn.execute(
            """INSERT OR IGNORE INTO outbox (key, kind, channel, mode, topics, item_id,
               development_id, revision, created_at, retry_since, next_attempt_at, payload)
               VALUES (?, 'alert', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                row.key,
                row.channel,
                row.mode,
                json.dumps(list(row.topics), ensure_ascii=False),
                row.item_id,
                row.development_id,
                row.revision,
                _iso(row.created_at),
                _iso(row.created_at),
                _iso(row.created_at),
                json.dumps(row.payload, ensure_ascii=False),
            ),
        )
        added += cursor.rowcount
        if cursor.rowcount and row.development_id is not None:
            # Keep the development's alert counter at least at the revision just queued.
            conn.execute(
                "UPDATE developments SET alerts = max(alerts, ?) WHERE id = ?",
                (row.revision, row.development_id),
            )
    return added


def enqueue_message(
    conn: sqlite3.Connection,
    *,
    key: str,
    kind: str,
    channel: str,
    payload: dict[str, Any],
    now: datetime,
    topics: Sequence[str] = (),
) -> int | None:
    """Queue a message of our own (a digest or a health notice); None when the key exists."""
    with _transaction(conn):
        cursor = conn.execute(
            """INSERT OR IGNORE INTO outbox (key, kind, channel, mode, topics, created_at,
               retry_since, next_attempt_at, payload)
               VALUES (?, ?, ?, 'immediate', ?, ?, ?, ?, ?)""",
            (
                key,
                kind,
                channel,
                json.dumps(list(topics), ensure_ascii=False),
                _iso(now),
                _iso(now),
                _iso(now),
                json.dumps(payload, ensure_ascii=False),
            ),
        )
    return int(cursor.lastrowid or 0) if cursor.rowcount else None


# --------------------------------------------------------------------------- claiming and marking


def stored_channels(conn: sqlite3.Connection) -> list[str]:
    """Every channel the outbox holds alerts for (sent or not), by name."""
    return [row[0] for row in conn.execute("SELECT DISTINCT channel FROM outbox ORDER BY 1")]


def channels_with_work(conn: sqlite3.Connection) -> list[str]:
    """Channels whose send queue has anything unsent."""
    cursor = conn.execute(
        """SELECT DISTINCT channel FROM outbox
           WHERE mode = 'immediate' AND status IN ('pending', 'sending') ORDER BY channel"""
    )
    return [row[0] for row in cursor.fetchall()]


def claim_next(
    conn: sqlite3.Connection, channel: str, worker: str, now: datetime, lease: timedelta
) -> OutboxRow | None:
    """Claim the head of a channel's queue when it is due; None when there is nothing to send now.

    The head is the channel's oldest unsent row: rows behind it are never claimed first, so alerts
    arrive in the order they were made. A head claimed by a crashed worker is taken over once its
    lease (`claimed_until`) has passed; that counts as another attempt.
    """
    stamp = _iso(now)
    with _transaction(conn):
        head = _dicts(
            conn.execute(
                """SELECT * FROM outbox WHERE channel = ? AND mode = 'immediate'
                   AND status IN ('pending', 'sending') ORDER BY id LIMIT 1""",
                (channel,),
            )
        )
        if not head:
            return None
        row = head[0]
        due = (row["status"] == "pending" and row["next_attempt_at"] <= stamp) or (
            row["status"] == "sending" and (row["claimed_until"] or "") <= stamp
        )
        if not due:
            return None
        cursor = conn.execute(
            """UPDATE outbox SET status = 'sending', claimed_by = ?, claimed_until = ?,
               attempts = attempts + 1, last_attempt_at = ?
               WHERE id = ? AND status = ? AND coalesce(claimed_until, '') = ?""",
            (
                worker,
                _iso(now + lease),
                stamp,
                row["id"],
                row["status"],
                row["claimed_until"] or "",
            ),
        )
        if cursor.rowcount != 1:  # cannot happen inside BEGIN IMMEDIATE; be safe anyway
            return None
        claimed = _dicts(conn.execute("SELECT * FROM outbox WHERE id = ?", (row["id"],)))
    return _row(claimed[0])


def mark_sent(conn: sqlite3.Connection, row_id: int, worker: str, now: datetime) -> bool:
    """Record a delivery apprise confirmed. False when our claim was lost (lease ran out)."""
    with _transaction(conn):
        cursor = conn.execute(
            """UPDATE outbox SET status = 'sent', sent_at = ?, claimed_by = NULL,
               claimed_until = NULL, last_error = NULL
               WHERE id = ? AND status = 'sending' AND claimed_by = ?""",
            (_iso(now), row_id, worker),
        )
        if cursor.rowcount != 1:
            return False
        conn.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ? WHERE digest_id = ?",
            (_iso(now), row_id),
        )
        channel = conn.execute("SELECT channel FROM outbox WHERE id = ?", (row_id,)).fetchone()[0]
        conn.execute("DELETE FROM outbox_state WHERE key = ?", (f"failing:{channel}",))
        # The channel works again: what waited out its back-off behind a failed head is due now,
        # not an hour later.
        conn.execute(
            """UPDATE outbox SET next_attempt_at = ? WHERE channel = ? AND mode = 'immediate'
               AND status = 'pending' AND next_attempt_at > ?""",
            (_iso(now), channel, _iso(now)),
        )
    return True


def mark_failed(
    conn: sqlite3.Connection,
    row_id: int,
    worker: str,
    error: str,
    now: datetime,
    retry_for: timedelta,
) -> str:
    """Record a failed send: back to `pending` with back-off, or `failed` after `retry_for`.

    Returns the row's new status ('lost' when our claim had run out and someone else holds it).
    """
    with _transaction(conn):
        found = _dicts(conn.execute("SELECT * FROM outbox WHERE id = ?", (row_id,)))
        if not found or found[0]["status"] != "sending" or found[0]["claimed_by"] != worker:
            return "lost"
        row = _row(found[0])
        conn.execute(
            "INSERT OR IGNORE INTO outbox_state (key, value) VALUES (?, ?)",
            (f"failing:{row.channel}", _iso(now)),
        )
        retry_at = now + backoff(row.attempts)
        if now - row.retry_since < retry_for:
            conn.execute(
                """UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = ?,
                   claimed_by = NULL, claimed_until = NULL WHERE id = ?""",
                (_iso(retry_at), error[:2000], row_id),
            )
            return "pending"
        _give_up(conn, row, error, now, retry_for, retry_at)
    return "failed"


def _give_up(
    conn: sqlite3.Connection,
    row: OutboxRow,
    error: str,
    now: datetime,
    retry_for: timedelta,
    retry_at: datetime,
) -> None:
    """The head failed for good. Rows queued behind it as long ago waited as long: fail them too;
    the younger ones keep the channel's back-off rather than hammering a dead service."""
    final = f"gave up after {row.attempts} attempts: {error}"[:2000]
    conn.execute(
        """UPDATE outbox SET status = 'failed', last_error = ?, claimed_by = NULL,
           claimed_until = NULL WHERE id = ? OR digest_id = ?""",
        (final, row.id, row.id),
    )
    waited = _dicts(
        conn.execute(
            """SELECT id FROM outbox WHERE channel = ? AND mode = 'immediate'
               AND status = 'pending' AND retry_since <= ?""",
            (row.channel, _iso(now - retry_for)),
        )
    )
    why = f"channel down for over {retry_for} (alert {row.id} failed): {error}"[:2000]
    for other in waited:
        conn.execute(
            "UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ? OR digest_id = ?",
            (why, other["id"], other["id"]),
        )
    conn.execute(
        """UPDATE outbox SET next_attempt_at = max(next_attempt_at, ?)
           WHERE channel = ? AND mode = 'immediate' AND status = 'pending'""",
        (_iso(retry_at), row.channel),
    )


def release(conn: sqlite3.Connection, row_id: int, worker: str) -> None:
    """Give a claim back untried (shutting down before the send started)."""
    with _transaction(conn):
        conn.execute(
            """UPDATE outbox SET status = 'pending', attempts = max(0, attempts - 1),
               claimed_by = NULL, claimed_until = NULL
               WHERE id = ? AND status = 'sending' AND claimed_by = ?""",
            (row_id, worker),
        )


def retry_failed(conn: sqlite3.Connection, now: datetime, ids: Sequence[int] | None = None) -> int:
    """`monitor alerts retry`: failed rows go back to pending, due now, with a fresh retry budget.

    `attempts` restarts (the back-off counts from the retry); the tries so far move to
    `earlier_attempts`, so the listing still counts them."""
    where = "status = 'failed'"
    params: list[Any] = []
    if ids:
        where += f" AND id IN ({','.join('?' * len(ids))})"
        params.extend(ids)
    with _transaction(conn):
        cursor = conn.execute(
            f"""UPDATE outbox SET status = 'pending', attempts = 0,
                earlier_attempts = earlier_attempts + attempts, next_attempt_at = ?,
                retry_since = ?, last_error = NULL, claimed_by = NULL, claimed_until = NULL
                WHERE {where} AND mode = 'immediate'""",
            (_iso(now), _iso(now), *params),
        )
        count = cursor.rowcount
        # Members of a digest that is retried follow it.
        conn.execute(
            """UPDATE outbox SET status = 'pending' WHERE status = 'failed' AND digest_id IN
               (SELECT id FROM outbox WHERE kind = 'digest' AND status = 'pending')"""
        )
    return count


# --------------------------------------------------------------------------- reading


def statuses(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, str]:
    """The status of each of these alerts that exists."""
    found: dict[int, str] = {}
    for chunk, marks in in_chunks(ids):
        rows = conn.execute(f"SELECT id, status FROM outbox WHERE id IN ({marks})", chunk)
        found.update((int(r[0]), str(r[1])) for r in rows)
    return found


def get(conn: sqlite3.Connection, row_id: int) -> OutboxRow | None:
    found = _dicts(conn.execute("SELECT * FROM outbox WHERE id = ?", (row_id,)))
    return _row(found[0]) if found else None


def list_rows(
    conn: sqlite3.Connection,
    *,
    status: str | None = None,
    channel: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
    newest_first: bool = True,
) -> list[OutboxRow]:
    clauses, params = [], []
    for column, value in (("status", status), ("channel", channel), ("kind", kind)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    order = "DESC" if newest_first else "ASC"
    sql = f"SELECT * FROM outbox {where} ORDER BY id {order}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(str(limit))
    return [_row(d) for d in _dicts(conn.execute(sql, params))]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Messages by status (an immediate alert, a digest, a health notice: one message each),
    and the alerts of digest channels apart: `waiting_for_digest` (not sent yet) and
    `delivered_in_digests`. A digest's alerts are not messages: counted as such, one digest of
    four alerts made five "sent". A failed digest's alerts are in its one failed message."""
    found = {status: 0 for status in STATUSES}
    found.update(waiting_for_digest=0, delivered_in_digests=0)
    rows = conn.execute("SELECT mode, status, count(*) FROM outbox GROUP BY mode, status")
    for mode, status, count in rows:
        if mode != "digest":
            found[status] = found.get(status, 0) + count
        elif status in ("pending", "sending"):
            found["waiting_for_digest"] += count
        elif status == "sent":
            found["delivered_in_digests"] += count
    return found


def digest_members(conn: sqlite3.Connection, channel: str) -> list[OutboxRow]:
    """Digest alerts of a channel not yet put into a digest message, oldest first."""
    cursor = conn.execute(
        """SELECT * FROM outbox WHERE channel = ? AND mode = 'digest' AND status = 'pending'
           AND digest_id IS NULL ORDER BY id""",
        (channel,),
    )
    return [_row(d) for d in _dicts(cursor)]


def attach_to_digest(conn: sqlite3.Connection, digest_id: int, member_ids: Sequence[int]) -> None:
    for chunk, marks in in_chunks(member_ids):
        conn.execute(f"UPDATE outbox SET digest_id = ? WHERE id IN ({marks})", (digest_id, *chunk))


def state_get(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM outbox_state WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def state_set(conn: sqlite3.Connection, key: str, value: str) -> None:
    with _transaction(conn):
        conn.execute(
            """INSERT INTO outbox_state (key, value) VALUES (?, ?)
               ON CONFLICT (key) DO UPDATE SET value = excluded.value""",
            (key, value),
        )


def transaction(conn: sqlite3.Connection) -> Any:
    """A write transaction (or the caller's), for callers combining several of these steps."""
    return _transaction(conn)
