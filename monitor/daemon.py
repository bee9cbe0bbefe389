"""`monitor run`: the long-running service, scheduled by APScheduler.

One job per enabled feed (its interval, plus jitter; never two runs of a feed at once; first polls
spread over the first minute), the alert dispatcher's jobs, a daily retention job, a heartbeat job the
container healthcheck reads, and a clean stop on SIGINT/SIGTERM that lets in-flight database writes
finish.

A feed's stored `next_fetch` (and a server's Retry-After) decide when it is polled: after each poll
the feed's job is moved to that time, so back-off and Retry-After are waited out exactly and a
restart picks up where the last run left off. The job's interval is the fallback.

Optional parts: the config file is watched and edits are applied live (`monitor.reload`); an HTTP
server answers `/healthz` and `/metrics` (`monitor.metrics`). A `TimeScale` lets the daemon's clock
run faster than real time (soaks, crash tests); every clock duration is waited out divided by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import shlex
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.alert.dispatch import AlertService
from monitor.clock import Clock, SystemClock, parse_iso, utc_iso
from monitor.config import Config, ConfigError, load_config, parse_address
from monitor.metrics import DatabaseCollector, Health, Metrics, OpsServer
from monitor.ops import (
    daemon_lock,
    drop_text_batch,
    mark_daemon_stopped,
    read_watermark,
    retention_cutoff,
    write_daemon_state,
    write_watermark,
)
from monitor.pipeline import Pipeline, PollOutcome
from monitor.reload import (
    ConfigDiff,
    ConfigWatcher,
    WatchSettings,
    diff_configs,
    effective_config,
    valid_again_message,
)
from monitor.schedule import FeedStatus, startup_offset
from monitor.service import open_pipeline
from monitor.timescale import TimeScale

log = logging.getLogger("monitor.daemon")
HEARTBEAT_EVERY = timedelta(seconds=15)  # real time: the heartbeat is about the process being alive
HEARTBEAT_STALE = timedelta(seconds=90)
LOOP_PROBE = timedelta(seconds=5)  # /healthz fails when the event loop does not answer this fast
RETENTION_EVERY = timedelta(days=1)
RETENTION_FIRST = timedelta(minutes=5)  # after start-up, when the first polls are done
MIN_JOB_PERIOD = timedelta(milliseconds=500)  # floor for scaled housekeeping jobs


class _ExpectedSkips(logging.Filter):
    """A job whose previous run is still going is skipped: that is the design, not a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


@dataclass(frozen=True)
class ReloadResult:
    applied: bool
    diff: ConfigDiff | None = None
    problems: tuple[str, ...] = ()


class _CountingAlerts(AlertService):
    """The alert service, with its deliveries counted for /metrics."""

    def __init__(self, config: Config, clock: Clock, metrics: Metrics) -> None:
        super().__init__(config, config.database, clock)
        self.metrics = metrics

    async def run(self) -> None:
        try:
            report = await self.dispatcher.send_due()
        except Exception:  # keep the daemon alive; the next run tries again
            log.exception("alert dispatch failed")
            return
        self.metrics.observe_dispatch(report.sent, report.retrying, report.failed)


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        startup_spread: timedelta = timedelta(minutes=1),
        on_poll: Callable[[PollOutcome], None] | None = None,
        time_scale: TimeScale | None = None,
        http: str | None = None,
        watch: WatchSettings | None = None,
        on_reload: Callable[[ReloadResult], None] | None = None,
    ) -> None:
        """`http`: HOST:PORT for /healthz and /metrics (None: the config's `http:`, if any).
        `watch`: apply edits of the config file while running (None: don't watch)."""
        self.config = config
        self.time = time_scale or TimeScale.real(clock)
        self.clock = self.time.clock
        self.startup_spread = startup_spread
        self.on_poll = on_poll
        self.on_reload = on_reload
        self.http = http if http is not None else config.model.http
        self.watcher = ConfigWatcher(config.path, self.reload, watch) if watch is not None else None
        self.metrics = Metrics()
        self.stopping = asyncio.Event()
        self.phase = "starting"  # running, stopping, stopped
        self.started_at = SystemClock().now()
        self.http_address: str | None = None  # as bound (port 0 picks a free one)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._restart_pending: set[str] = set()  # restart-only changes already logged
        self._refused = False  # the last reload refused the file (its fix is acknowledged)
        self._pipeline: Pipeline | None = None
        self._alerts: _CountingAlerts | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self.loop_probe = LOOP_PROBE
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beat_at: float | None = None

    def request_stop(self) -> None:
        self.stopping.set()

    # ----------------------------------------------------------------- life cycle

    async def serve(self) -> None:
        """Run until ``request_stop`` (or SIGINT / SIGTERM); ``DaemonRunning`` if another daemon
        serves the same database."""
        with daemon_lock(self.config):
            await self._serve()

    async def _serve(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
                loop.add_signal_handler(sig, self.request_stop)
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, self._reload_soon)  # the classic "re-read it"
        quiet = _ExpectedSkips()
        logging.getLogger("apscheduler.scheduler").addFilter(quiet)
        server, collector = self._start_http()
        background: list[asyncio.Task[Any]] = []
        watch_stop = asyncio.Event()
        try:
            async with open_pipeline(self.config, clock=self.clock) as pipeline:
                self._pipeline = pipeline
                pipeline.extractor.start()
                scheduler = self._scheduler = AsyncIOScheduler(event_loop=loop, timezone="UTC")
                self._schedule_feeds(scheduler)
                self._schedule_alerts(scheduler)
                self._schedule_housekeeping(scheduler)
                scheduler.start()
                # Start-up objects (modules, config, models) live as long as the daemon: keep
                # them out of the collector's full passes, which otherwise walk them every time.
                gc.freeze()
                self._write_state()
                if self.watcher is not None:
                    background.append(loop.create_task(self._watch(self.watcher, watch_stop)))
                self.phase = "running"
                self._log_started()
                await self.stopping.wait()
                self.phase = "stopping"
                log.info("stopping: letting in-flight work finish")
                watch_stop.set()
                scheduler.pause()  # no new runs; the ones under way end below, not cut off
                await self._finish_tasks()
                if self._alerts is not None:
                    await self._alerts.aclose()  # a send in flight gets recorded
        finally:
            if self._scheduler is not None and self._scheduler.running:
                self._scheduler.shutdown(wait=False)
            logging.getLogger("apscheduler.scheduler").removeFilter(quiet)
            self.phase = "stopped"
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if server is not None:
                server.stop()
            if collector is not None:
                collector.close()
            self._mark_stopped()
        log.info("stopped")

    def _log_started(self) -> None:
        enabled = sum(1 for f in self.config.feeds if f.enabled)
        scale = f", time x{self.time.factor:g}" if self.time.factor != 1 else ""
        log.info(
            "started: %d feeds, %d topics, database %s%s",
            enabled,
            len(self.config.topics),
            self.config.database,
            scale,
        )

    def _start_http(self) -> tuple[OpsServer | None, DatabaseCollector | None]:
        """Bind the HTTP server first: a taken port fails the start, before any work."""
        if not self.http:
            return None, None
        host, port = parse_address(self.http)
        collector = DatabaseCollector(lambda: self.config)
        self.metrics.registry.register(collector)
        server = OpsServer(host, port, self.metrics, self.health).start()
        self.http_address = server.address
        self.metrics.started.set(self.started_at.timestamp())
        log.info("serving /healthz and /metrics on http://%s", server.address)
        return server, collector

    def _write_state(self) -> None:
        try:
            write_daemon_state(self.config, self.started_at, self.http_address)
        except OSError as exc:
            log.warning("cannot write the daemon state file: %s", exc)

    def _mark_stopped(self) -> None:
        # A daemon that never wrote its record (it failed to start) finds another's: left alone.
        try:
            mark_daemon_stopped(self.config, self.started_at, SystemClock().now())
        except OSError as exc:
            log.warning("cannot write the daemon state file: %s", exc)

    def _loop_answers(self) -> float | None:
        """Seconds the event loop took to run a callback, None when it did not within the probe."""
        answered = threading.Event()
        started = time.monotonic()
        try:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(answered.set)
        except (AssertionError, RuntimeError):  # no loop, or it is closed
            return None
        if not answered.wait(self.loop_probe.total_seconds()):
            return None
        return time.monotonic() - started

    def health(self) -> Health:
        """For /healthz; called from the HTTP server's threads."""
        lag = self._loop_answers()
        beat = time.monotonic() - self._beat_at if self._beat_at is not None else None
        problems = []
        if self.phase != "running":
            problems.append(self.phase)
        if lag is None:
            limit = self.loop_probe.total_seconds()
            problems.append(f"the event loop did not answer within {limit:g}s")
        if beat is None or beat > HEARTBEAT_STALE.total_seconds():
            problems.append("no fresh heartbeat")
        uptime = (SystemClock().now() - self.started_at).total_seconds()
        return Health(
            ok=not problems,
            body={
                "status": "ok" if not problems else "unhealthy",
                "phase": self.phase,
                "uptime_seconds": round(uptime, 1),
                "loop_lag_seconds": round(lag, 3) if lag is not None else None,
                "heartbeat_age_seconds": round(beat, 1) if beat is not None else None,
                "problems": problems,
            },
        )

    async def _finish_tasks(self) -> None:
        """Cancel polls still waiting on the network; writes already handed over still complete."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _track(self) -> Callable[[], None]:
        task = asyncio.current_task()
        if task is None:
            return lambda: None
        self._tasks.add(task)
        return lambda: self._tasks.discard(task)

    # ----------------------------------------------------------------- jobs

    def _real(self, delay: timedelta) -> float:
        return self.time.real_delay(delay).total_seconds()

    def _schedule_feeds(self, scheduler: AsyncIOScheduler) -> None:
        for feed in self.config.feeds:
            if feed.enabled:
                self._add_feed_job(scheduler, feed.name)

    def _feed_trigger(self, name: str) -> IntervalTrigger:
        feed = self.config.feed(name)
        assert feed is not None
        jitter = self._real(self.config.defaults.jitter)
        return IntervalTrigger(
            seconds=self._real(self.config.feed_interval(feed)), jitter=jitter or None
        )

    def _add_feed_job(self, scheduler: AsyncIOScheduler, name: str) -> None:
        first = self.time.real_time(self.clock.now() + startup_offset(name, self.startup_spread))
        scheduler.add_job(
            self._poll,
            self._feed_trigger(name),
            args=[name],
            id=f"feed:{name}",
            next_run_time=first,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            replace_existing=True,
        )

    def _schedule_alerts(self, scheduler: AsyncIOScheduler) -> None:
        alerts = self._alerts = _CountingAlerts(self.config, self.clock, self.metrics)
        # Its "every 10 s" is clock time: a fast clock retries (and digests) on its own time.
        alerts.EVERY = max(self.time.real_delay(AlertService.EVERY), MIN_JOB_PERIOD)
        alerts.schedule(scheduler)

    def _schedule_housekeeping(self, scheduler: AsyncIOScheduler) -> None:
        real_now = SystemClock().now()
        scheduler.add_job(
            self._heartbeat,
            IntervalTrigger(seconds=HEARTBEAT_EVERY.total_seconds()),
            id="heartbeat",
            next_run_time=real_now,
        )
        every = max(self.time.real_delay(RETENTION_EVERY), MIN_JOB_PERIOD)
        scheduler.add_job(
            self._retention,
            IntervalTrigger(seconds=every.total_seconds()),
            id="retention",
            next_run_time=real_now + max(self.time.real_delay(RETENTION_FIRST), MIN_JOB_PERIOD),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    async def _poll(self, name: str) -> None:
        feed = self.config.feed(name)
        if feed is None or not feed.enabled or self._pipeline is None:
            return  # removed by a config edit while its run was due
        untrack = self._track()
        self._hold_job(name)  # however long this poll takes, its job does not fire meanwhile
        try:
            started = time.monotonic()
            try:
                outcome = await self._pipeline.poll(feed)
            except asyncio.CancelledError:
                if self.stopping.is_set():
                    return  # cut short by the stop (a write already handed over completes)
                raise
            seconds = time.monotonic() - started
            self.metrics.observe_poll(outcome.status, outcome.new, outcome.updated, seconds)
            if outcome.new and self._alerts is not None:
                self._alerts.kick()  # new items may have queued alerts: send them now
        finally:
            untrack()
            if not self.stopping.is_set():
                await self._plan_next(name)
        if self.on_poll is not None:
            self.on_poll(outcome)

    def _hold_job(self, name: str) -> None:
        if self._scheduler is not None:
            with contextlib.suppress(JobLookupError):
                self._scheduler.pause_job(f"feed:{name}")

    async def _plan_next(self, name: str) -> None:
        """Move the feed's job to when the feed is next due (interval, back-off, Retry-After)."""
        feed = self.config.feed(name)
        if feed is None or not feed.enabled or self._pipeline is None:
            return
        now = self.clock.now()
        due = now + self.config.feed_interval(feed)
        writer = self._pipeline.writer
        try:
            state = await writer.call(writer.store.feed_state, name)
        except Exception:  # keep polling it on its interval
            log.exception("cannot read the state of feed %s", name)
            state = None
        if state is not None and state.status is not FeedStatus.GONE:
            stored = max((t for t in (state.next_fetch, state.retry_after) if t), default=None)
            if stored is not None and stored > now:
                due = stored
        self._move_job(name, due)

    def _move_job(self, name: str, due: datetime, trigger: IntervalTrigger | None = None) -> None:
        jitter = timedelta(seconds=random.uniform(0, self.config.defaults.jitter.total_seconds()))
        changes: dict[str, Any] = {"next_run_time": self.time.real_time(due + jitter)}
        if trigger is not None:
            changes["trigger"] = trigger
        if self._scheduler is not None:
            with contextlib.suppress(JobLookupError):  # removed by a config edit meanwhile
                self._scheduler.modify_job(f"feed:{name}", **changes)

    async def _heartbeat(self) -> None:
        if write_heartbeat(self.config.heartbeat, SystemClock()):
            self._beat_at = time.monotonic()

    async def _retention(self) -> None:
        """Drop the text of items older than `retention.drop_text_after`, batch by batch."""
        cutoff = retention_cutoff(self.config, self.clock.now())
        if cutoff is None or self._pipeline is None:
            return
        writer = self._pipeline.writer
        conn = writer.store.conn
        untrack = self._track()
        try:
            since = await writer.call(read_watermark, conn)
            total = 0
            while not self.stopping.is_set():
                count = await writer.call(drop_text_batch, conn, cutoff, since)
                if not count:
                    await writer.call(write_watermark, conn, cutoff)
                    break
                total += count
            self.metrics.retention_dropped.inc(total)
            if total:
                log.info(
                    "retention: dropped the text of %d items first seen before %s",
                    total,
                    utc_iso(cutoff),
                )
        except asyncio.CancelledError:
            if not self.stopping.is_set():
                raise  # stopped mid-way: the watermark was not moved, the next run resumes
        except Exception:
            log.exception("retention failed; it runs again tomorrow")
        finally:
            untrack()

    # ----------------------------------------------------------------- config reload

    async def _watch(self, watcher: ConfigWatcher, stop: asyncio.Event) -> None:
        log.info("watching %s for edits", self.config.path)
        await watcher.run(stop)

    def _reload_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> ReloadResult:
        """Read the config file again; apply it when valid, else keep the current one."""
        if self.phase != "running":
            return ReloadResult(False)
        try:
            new = load_config(self.config.path, deep=True)
        except ConfigError as exc:
            return await self._reject([self.config.mask(str(p)) for p in exc.problems])
        diff = diff_configs(self.config, new)
        was_refused, self._refused = self._refused, False
        if diff.empty or (not diff.live and set(diff.restart) <= self._restart_pending):
            # A restart-only change stays in the diff (the running values are kept), so every
            # later reload would report it again: once is enough. After a refused edit the fix
            # is acknowledged, though: the ERROR for the broken file would stand unanswered.
            if was_refused:
                log.info("%s", valid_again_message(diff))
            else:
                log.debug("config file changed, settings did not")
            return ReloadResult(False, diff)
        old = self.config
        try:
            await self._apply(effective_config(old, new), diff)
        except Exception:
            log.exception("applying the edited config failed; going back to the previous one")
            await self._apply(old, diff_configs(new, old))
            return await self._reject(["the edited config could not be applied (see the log)"])
        self.metrics.reloads.labels("applied").inc()
        log.info("config reloaded: %s", diff.summary())
        for name in diff.rematch:
            log.info(
                "topic %s matches new articles from now on; `monitor rematch --topic %s` "
                "applies it to the stored ones (no alerts)",
                name,
                shlex.quote(name),
            )
        if diff.restart:
            log.warning(
                "not applied until a restart: %s (still using the running values)",
                ", ".join(diff.restart),
            )
        self._restart_pending = set(diff.restart)
        if not any(f.enabled for f in new.feeds):
            log.warning(
                "the edited config has no enabled feed: nothing is polled until one is added"
            )
        result = ReloadResult(True, diff)
        if self.on_reload is not None:
            self.on_reload(result)
        return result

    async def _reject(self, problems: list[str]) -> ReloadResult:
        self._refused = True
        self.metrics.reloads.labels("rejected").inc()
        log.error(
            "config edit rejected; the previous config stays in use:\n  %s", "\n  ".join(problems)
        )
        if self._alerts is not None:
            try:
                await self._alerts.config_rejected(problems, str(self.config.path))
            except Exception:
                log.exception("cannot queue the health notice")
        result = ReloadResult(False, None, tuple(problems))
        if self.on_reload is not None:
            self.on_reload(result)
        return result

    async def _apply(self, config: Config, diff: ConfigDiff) -> None:
        assert self._pipeline is not None and self._scheduler is not None
        self.config = config
        self._pipeline.reconfigure(config)
        await self._pipeline.sync_feeds()
        scheduler = self._scheduler
        for name in diff.stop:
            with contextlib.suppress(JobLookupError):
                scheduler.remove_job(f"feed:{name}")
        for name in diff.start:
            self._add_feed_job(scheduler, name)
        for name in diff.retime - diff.refetch:
            await self._retime(name)
        for name in diff.refetch - diff.start:  # its state was reset: poll it soon
            self._move_job(name, self.clock.now(), self._feed_trigger(name))
        if self._alerts is not None:
            self._alerts.reconfigure(config, scheduler)
        logging.getLogger().setLevel(config.model.log_level)

    async def _retime(self, name: str) -> None:
        """A new interval: due one new interval after the last fetch (back-off stays as it is)."""
        assert self._pipeline is not None
        feed = self.config.feed(name)
        assert feed is not None
        writer = self._pipeline.writer
        due = await writer.call(
            set_next_fetch, writer.store.conn, name, self.config.feed_interval(feed)
        )
        self._move_job(name, due or self.clock.now(), self._feed_trigger(name))


def set_next_fetch(conn: Any, name: str, interval: timedelta) -> datetime | None:
    """For a healthy feed, make it due `interval` after its last fetch; returns when it is due."""
    row = conn.execute(
        "SELECT status, last_fetch, next_fetch FROM feeds WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    last = parse_iso(row["last_fetch"])
    if row["status"] != FeedStatus.OK.value or last is None:
        return parse_iso(row["next_fetch"])
    due = last + interval
    conn.execute("UPDATE feeds SET next_fetch = ? WHERE name = ?", (utc_iso(due), name))
    return due


def write_heartbeat(path: Path, clock: Clock) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(utc_iso(clock.now()) or "", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        log.warning("cannot write heartbeat %s: %s", path, exc)
        return False
    return True


def last_heartbeat(path: Path) -> datetime | None:
    """When the daemon last wrote its heartbeat; None when there is none."""
    try:
        return parse_iso(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def heartbeat_age(path: Path, clock: Clock) -> timedelta | None:
    """How old the daemon's last heartbeat is; None when there is none."""
    when = last_heartbeat(path)
    return clock.now() - when if when else None
