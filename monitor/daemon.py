"""`monitor run`: the long-running service, scheduled by APScheduler.

One job per enabled feed (its interval, plus jitter; never two runs of a feed at once; first polls
spread over the first minute), a heartbeat job the container healthcheck reads, and a clean stop on
SIGINT/SIGTERM that lets in-flight database writes finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.alert.dispatch import AlertService
from monitor.clock import Clock, SystemClock, parse_iso, utc_iso
from monitor.config import Config, Feed
from monitor.pipeline import Pipeline, PollOutcome
from monitor.schedule import startup_offset
from monitor.service import open_pipeline

log = logging.getLogger("monitor.daemon")
HEARTBEAT_EVERY = timedelta(seconds=15)


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        startup_spread: timedelta = timedelta(minutes=1),
        on_poll: Callable[[PollOutcome], None] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.startup_spread = startup_spread
        self.on_poll = on_poll
        self.stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[object]] = set()
        self._pipeline: Pipeline | None = None
        self._alerts: AlertService | None = None

    def request_stop(self) -> None:
        self.stopping.set()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
                loop.add_signal_handler(sig, self.request_stop)
        async with open_pipeline(self.config, clock=self.clock) as pipeline:
            self._pipeline = pipeline
            scheduler = AsyncIOScheduler(event_loop=loop, timezone="UTC")
            self._schedule_feeds(scheduler, pipeline)
            alerts = self._alerts = AlertService(self.config, self.config.database, self.clock)
            alerts.schedule(scheduler)
            scheduler.add_job(
                self._heartbeat,
                IntervalTrigger(seconds=HEARTBEAT_EVERY.total_seconds()),
                id="heartbeat",
                next_run_time=self.clock.now(),
            )
            scheduler.start()
            enabled = sum(1 for f in self.config.feeds if f.enabled)
            log.info(
                "started: %d feeds, %d topics, database %s",
                enabled,
                len(self.config.topics),
                self.config.database,
            )
            await self.stopping.wait()
            log.info("stopping: letting in-flight work finish")
            scheduler.shutdown(wait=False)
            await self._finish_tasks()
            await alerts.aclose()
        log.info("stopped")

    def _schedule_feeds(self, scheduler: AsyncIOScheduler, pipeline: Pipeline) -> None:
        now = self.clock.now()
        jitter = int(self.config.defaults.jitter.total_seconds())
        for feed in self.config.feeds:
            if not feed.enabled:
                continue
            scheduler.add_job(
                self._poll,
                IntervalTrigger(
                    seconds=self.config.feed_interval(feed).total_seconds(), jitter=jitter or None
                ),
                args=[feed],
                id=f"feed:{feed.name}",
                next_run_time=now + startup_offset(feed.name, self.startup_spread),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )

    async def _poll(self, feed: Feed) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        try:
            assert self._pipeline is not None
            outcome = await self._pipeline.poll(feed)
            if outcome.new and self._alerts is not None:
                self._alerts.kick()  # new items may have queued alerts: send them now
            if self.on_poll is not None:
                self.on_poll(outcome)
        finally:
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]

    async def _heartbeat(self) -> None:
        write_heartbeat(self.config.heartbeat, self.clock)

    async def _finish_tasks(self) -> None:
        """Cancel polls still waiting on the network; writes already handed over still complete."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def write_heartbeat(path: Path, clock: Clock) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(utc_iso(clock.now()) or "", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        log.warning("cannot write heartbeat %s: %s", path, exc)


def heartbeat_age(path: Path, clock: Clock) -> timedelta | None:
    """How old the daemon's last heartbeat is; None when there is none."""
    try:
        when = parse_iso(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return clock.now() - when if when else None
