"""The dispatcher: sends what the outbox holds, once, in order, with retries.

`await Dispatcher(config, database, clock).send_due()` makes one delivery attempt for every due
alert: per channel, claim the head of the queue, render it, send it through apprise, record the
outcome, and go on with the next one until the channel's queue is empty or a send fails (the rest
then wait behind it, keeping the order). Channels are served concurrently. Before that it queues any
digest whose schedule has fired and any health notice that is due.

The daemon calls `send_due()` every few seconds and right after a poll that stored new items;
`monitor once` calls it once before exiting. Two dispatchers (in two processes) may run at once:
the claim in `monitor.alert.outbox` makes sure a row is sent by only one of them.

Database work runs on one thread of the dispatcher's own (its own connection when given a path),
apprise sends on one thread per channel: the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import jinja2

from monitor.alert import digest, health, outbox
from monitor.alert.render import Message, Renderer
from monitor.alert.send import ChannelSender, SendResult
from monitor.clock import Clock, SystemClock, utc_iso
from monitor.config import Channel, Config
from monitor.store import Store

log = logging.getLogger("monitor.alert")
T = TypeVar("T")
LEASE_MARGIN = timedelta(seconds=60)  # a claim outlives the send timeout by this much
PER_CHANNEL_LIMIT = 1000  # sends per channel per call, a bound against surprises


@dataclass
class DispatchReport:
    sent: int = 0
    retrying: int = 0  # failed this time, pending with back-off
    failed: int = 0  # failed for good
    digests: int = 0  # digest messages queued
    health: int = 0  # health notices queued
    errors: list[str] = field(default_factory=list)

    def merge(self, other: DispatchReport) -> None:
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.errors.extend(other.errors)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Dispatcher:
    def __init__(
        self,
        config: Config,
        store: Store | sqlite3.Connection | str | os.PathLike[str],
        clock: Clock | None = None,
        *,
        worker: str | None = None,
    ) -> None:
        """`store`: a path (the dispatcher opens its own connection: the usual case), or a Store /
        connection that no other thread uses while the dispatcher runs."""
        self.config = config
        self.clock = clock or SystemClock()
        self.worker = worker or default_worker_id()
        self._own: Store | None = None
        if isinstance(store, Store):
            self.conn = store.conn
        elif isinstance(store, sqlite3.Connection):
            self.conn = store
        else:
            self._own = Store.open(Path(store))
            self.conn = self._own.conn
        self.renderer = Renderer()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-db")
        self._senders: dict[str, ChannelSender] = {}
        self._lock = asyncio.Lock()
        self._again = False

    # ----------------------------------------------------------------- life cycle

    def reconfigure(self, config: Config) -> None:
        """Use a new config; channels whose settings changed get a fresh apprise object."""
        for name, sender in list(self._senders.items()):
            if config.channels.get(name) != sender.channel:
                sender.close()
                del self._senders[name]
        self.config = config

    async def aclose(self) -> None:
        for sender in self._senders.values():
            sender.close()
        self._senders.clear()
        await asyncio.to_thread(self._db.shutdown, wait=True)
        if self._own is not None:
            self._own.close()

    async def idle(self) -> None:
        """Wait until no `send_due` is running."""
        async with self._lock:
            pass

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, lambda: fn(*args))

    # ----------------------------------------------------------------- sending

    async def send_due(self) -> DispatchReport:
        """One delivery attempt for every due alert (and due digests and health notices).

        A call while another is running asks that one to look again when it is done.
        """
        if self._lock.locked():
            self._again = True
            return DispatchReport()
        report = DispatchReport()
        async with self._lock:
            self._again = True
            while self._again:
                self._again = False
                await self._round(report)
        if report.sent or report.retrying or report.failed:
            log.info(
                "alerts sent=%d retrying=%d failed=%d", report.sent, report.retrying, report.failed
            )
        return report

    async def _round(self, report: DispatchReport) -> None:
        queued = await self._call(self._housekeeping)
        report.digests += queued[0]
        report.health += queued[1]
        channels = await self._call(outbox.channels_with_work, self.conn)
        parts = await asyncio.gather(*(self._drain(name) for name in channels))
        for part in parts:
            report.merge(part)

    def _housekeeping(self) -> tuple[int, int]:
        """On the DB thread: retire alerts of removed channels, queue due digests and notices."""
        now = self.clock.now()
        with outbox.transaction(self.conn):
            for name in outbox.channels_with_work(self.conn):
                if name not in self.config.channels:
                    self.conn.execute(
                        """UPDATE outbox SET status = 'failed', last_error = ?
                           WHERE channel = ? AND status IN ('pending', 'sending')""",
                        (f"no channel named {name!r} in the config any more", name),
                    )
        digests = 0
        order = [t.name for t in self.config.topics]
        for name, channel in self.config.channels.items():
            if channel.mode == "digest":
                digests += digest.build_digest(self.conn, name, channel, now, order) is not None
        return digests, health.check(self.conn, self.config, now)

    async def _drain(self, name: str) -> DispatchReport:
        report = DispatchReport()
        channel = self.config.channels.get(name)
        if channel is None:
            return report
        sender = self._sender(name, channel)
        lease = channel.timeout + LEASE_MARGIN
        for _ in range(PER_CHANNEL_LIMIT):
            row = await self._call(
                outbox.claim_next, self.conn, name, self.worker, self.clock.now(), lease
            )
            if row is None:
                break
            result = await self._attempt(row, name, channel, sender)
            if result.ok:
                if not await self._call(
                    outbox.mark_sent, self.conn, row.id, self.worker, self.clock.now()
                ):
                    log.warning("alert %s: sent, but its claim had expired", row.key)
                report.sent += 1
                continue
            status = await self._call(
                outbox.mark_failed,
                self.conn,
                row.id,
                self.worker,
                result.detail,
                self.clock.now(),
                channel.retry_for,
            )
            hint = (
                f"; `monitor alerts retry {row.id}` queues it again" if status == "failed" else ""
            )
            log.warning(
                "alert %s to %s failed (%s): %s%s", row.key, name, status, result.detail, hint
            )
            report.errors.append(f"{name}: {result.detail}")
            if status == "failed":
                report.failed += 1
            else:
                report.retrying += 1
            break  # the channel is in trouble: the rest wait behind this one, in order
        return report

    async def _attempt(
        self, row: outbox.OutboxRow, name: str, channel: Channel, sender: ChannelSender
    ) -> SendResult:
        try:
            message = self.render(row, channel)
        except Exception as exc:  # a bug or a broken template must not stop the other channels
            log.exception("alert %s: cannot render", row.key)
            return SendResult(False, f"cannot render the message: {exc!r}")
        return await sender.send(message)

    def _sender(self, name: str, channel: Channel) -> ChannelSender:
        sender = self._senders.get(name)
        if sender is None:
            sender = self._senders[name] = ChannelSender(name, channel, self.config.mask)
        return sender

    # ----------------------------------------------------------------- rendering

    def render(self, row: outbox.OutboxRow, channel: Channel) -> Message:
        """The message for a row; a broken custom template falls back to the default one."""
        payload = {**row.payload, "key": row.key, "attempt": row.attempts}
        template = self._template_for(row, channel)
        try:
            return self.renderer.render(
                row.kind, payload, channel.format, zone=channel.timezone, template=template
            )
        except (OSError, jinja2.TemplateError) as exc:
            if template is None:
                raise
            log.error("template %s failed (%s); using the default template", template, exc)
            return self.renderer.render(row.kind, payload, channel.format, zone=channel.timezone)

    def _template_for(self, row: outbox.OutboxRow, channel: Channel) -> Path | None:
        chosen: str | None = None
        if row.kind == "alert":
            topics = {t.name: t for t in self.config.topics}
            chosen = next(
                (topics[t].template for t in row.topics if t in topics and topics[t].template),
                channel.template,
            )
        elif row.kind == "digest":
            chosen = channel.template
        return self.config.path.parent / chosen if chosen else None

    # ----------------------------------------------------------------- other entry points

    async def send_test(self, name: str) -> SendResult:
        """`monitor alerts test CHANNEL`: a sample alert, straight to the channel (no outbox)."""
        channel = self.config.channels[name]
        now = self.clock.now()
        payload = sample_payload(utc_iso(now) or "")
        row = outbox.OutboxRow(
            id=0, key=f"test:{name}:{utc_iso(now)}", kind="alert", channel=name,
            mode="immediate", topics=tuple(payload["topics"]), item_id=None, development_id=None,
            revision=1, created_at=now, retry_since=now, status="sending", attempts=1,
            next_attempt_at=now, claimed_by=None, claimed_until=None, last_error=None,
            last_attempt_at=None, sent_at=None, digest_id=None, payload=payload,
        )  # fmt: skip
        sender = ChannelSender(name, channel, self.config.mask)
        try:
            return await self._attempt(row, name, channel, sender)
        finally:
            sender.close()

    async def config_rejected(self, problems: Sequence[str], path: str | None = None) -> int:
        """Tell the health channels that a config edit was rejected (once per distinct edit)."""
        incident = health.config_incident(list(problems), path or str(self.config.path))
        return await self._call(health.report, self.conn, self.config, [incident], self.clock.now())


def sample_payload(now: str) -> dict[str, Any]:
    return {
        "kind": "alert",
        "topics": ["news-monitor test"],
        "item": {
            "id": 0,
            "title": "Test alert from news-monitor: this channel works",
            "url": "https://example.org/news-monitor-test",
            "outlet": "news-monitor",
            "published": now,
            "first_seen": now,
            "language": "en",
        },
        "matches": [],
        "terms": ["test"],
        "snippet": "If you can read this, alerts to this channel arrive. **test** highlights look "
        "like this.",
        "relation": "first",
        "developments": [],
        "other_outlets": [],
    }


class AlertService:
    """The daemon's side: a dispatcher run every few seconds, right after a poll that stored new
    items (`kick`), and at each digest channel's cron time."""

    EVERY = timedelta(seconds=10)

    def __init__(
        self,
        config: Config,
        database: str | os.PathLike[str],
        clock: Clock | None = None,
    ) -> None:
        self.dispatcher = Dispatcher(config, database, clock)
        self.config = config
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, scheduler: Any) -> None:
        """Add the dispatcher's jobs to an APScheduler (AsyncIOScheduler)."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        scheduler.add_job(
            self.run,
            IntervalTrigger(seconds=self.EVERY.total_seconds()),
            id="alerts",
            next_run_time=self.dispatcher.clock.now(),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,  # late is fine; skipped is not
        )
        for name, channel in self.config.channels.items():
            if channel.mode == "digest" and channel.schedule:
                scheduler.add_job(
                    self.run,
                    CronTrigger.from_crontab(channel.schedule, timezone=channel.timezone),
                    id=f"digest:{name}",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=None,
                )

    def reconfigure(self, config: Config, scheduler: Any = None) -> None:
        """A new config: new channel settings, and digest jobs re-made when a scheduler is given."""
        self.dispatcher.reconfigure(config)
        self.config = config
        if scheduler is not None:
            for job in list(scheduler.get_jobs()):
                if job.id.startswith("digest:") or job.id == "alerts":
                    job.remove()
            self.schedule(scheduler)

    async def config_rejected(self, problems: Sequence[str], path: str | None = None) -> None:
        """Report a rejected config edit on the health channels and send it now."""
        if await self.dispatcher.config_rejected(problems, path):
            self.kick()

    def kick(self) -> None:
        """Send soon (a poll just queued alerts); a run already under way looks again."""
        task = asyncio.get_running_loop().create_task(self.run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        try:
            await self.dispatcher.send_due()
        except Exception:  # keep the daemon alive; the next run tries again
            log.exception("alert dispatch failed")

    async def aclose(self, grace: float = 20.0) -> None:
        """Let a send in flight finish (so it gets recorded), then close."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        try:
            async with asyncio.timeout(grace):
                await self.dispatcher.idle()  # a scheduled run in flight
        except TimeoutError:
            log.warning("stopping with an alert send still in flight")
        await self.dispatcher.aclose()
