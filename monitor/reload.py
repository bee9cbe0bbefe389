"""Config hot reload: what changed between two configs, and a watcher for the config file.

`diff_configs(old, new)` is pure: it names the feeds, topics and channels added (+), removed (-) and
changed (~), the other live settings that changed, and the settings that only take effect after a
restart. `effective_config(old, new)` is the config the running daemon switches to: the new one, with
the restart-only settings kept as they were (the daemon goes on using its database, its worker
processes, its HTTP address and its HTTP client).

`ConfigWatcher` watches the config file's folder with watchfiles (editors replace files by renaming,
and a folder watch sees that) and also re-reads the file every few seconds, so a missed event (bind
mounts, network file systems, symlink swaps) only delays a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from watchfiles import Change, awatch

from monitor.config import Config, Feed

log = logging.getLogger("monitor.reload")
logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it logs every event at INFO

# Built once at start-up: changing them needs a restart (the daemon keeps the old values).
RESTART_KEYS = ("database", "heartbeat", "workers", "http")
RESTART_FETCH_KEYS = (
    "max_connections",
    "per_host",
    "max_redirects",
    "max_body",
    "user_agent",
    "article_concurrency",
    "proxy",
    "no_proxy",
)


def format_duration(value: timedelta | None) -> str:
    """15m, 1h30m, 90s -> the shortest exact spelling; None -> 'default'."""
    if value is None:
        return "default"
    seconds = value.total_seconds()
    if seconds != int(seconds):
        return f"{seconds:g}s"
    left, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class ConfigDiff:
    feeds: tuple[str, ...] = ()  # "+Yonhap", "-TASS", "~Meduza interval 15m→5m"
    topics: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()  # other live settings: "defaults.interval 15m→10m"
    restart: tuple[str, ...] = ()  # changed, but only after a restart: "database", "workers"
    # For applying it: feeds whose job must be added, removed or re-made.
    start: frozenset[str] = field(default_factory=frozenset)
    stop: frozenset[str] = field(default_factory=frozenset)
    retime: frozenset[str] = field(default_factory=frozenset)  # effective interval changed
    refetch: frozenset[str] = field(default_factory=frozenset)  # what is fetched changed
    # Topics added, or whose matching changed (query, terms, languages): they apply to new
    # articles from now on; `monitor rematch` applies them to the stored ones.
    rematch: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.feeds or self.topics or self.channels or self.settings or self.restart)

    @property
    def live(self) -> bool:
        return bool(self.feeds or self.topics or self.channels or self.settings)

    def summary(self) -> str:
        """'feeds: +Yonhap, -TASS, ~Meduza interval 15m→5m; topics: ~kursk'."""
        parts = [
            f"{name}: {', '.join(items)}"
            for name, items in (
                ("feeds", self.feeds),
                ("topics", self.topics),
                ("channels", self.channels),
                ("settings", self.settings),
            )
            if items
        ]
        if self.restart:
            parts.append(f"needs a restart: {', '.join(self.restart)}")
        return "; ".join(parts) or "no change"


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    feeds, start, stop, retime, refetch = _feed_changes(old, new)
    return ConfigDiff(
        feeds=tuple(feeds),
        topics=tuple(
            _named_changes({t.name: t for t in old.topics}, {t.name: t for t in new.topics})
        ),
        channels=tuple(_named_changes(old.channels, new.channels)),
        rematch=tuple(_rematch_topics(old, new)),
        settings=tuple(_setting_changes(old, new)),
        restart=tuple(_restart_changes(old, new)),
        start=frozenset(start),
        stop=frozenset(stop),
        retime=frozenset(retime),
        refetch=frozenset(refetch),
    )


def _feed_changes(
    old: Config, new: Config
) -> tuple[list[str], set[str], set[str], set[str], set[str]]:
    before = {f.name: f for f in old.feeds}
    after = {f.name: f for f in new.feeds}
    lines: list[str] = []
    start: set[str] = set()
    stop: set[str] = set()
    retime: set[str] = set()
    refetch: set[str] = set()
    for name, feed in after.items():
        was = before.get(name)
        if was is None:
            lines.append(f"+{name}")
            if feed.enabled:
                start.add(name)
            continue
        details = _feed_details(was, feed)
        if details:
            lines.append(
                f"~{name} {details[0]}" if len(details) == 1 else f"~{name} ({', '.join(details)})"
            )
        if was.enabled and not feed.enabled:
            stop.add(name)
        elif feed.enabled and not was.enabled:
            start.add(name)
        elif feed.enabled and old.feed_interval(was) != new.feed_interval(feed):
            retime.add(name)
        if feed.enabled and (was.url, was.headers, was.fetch_article) != (
            feed.url,
            feed.headers,
            feed.fetch_article,
        ):
            refetch.add(name)
    for name, feed in before.items():
        if name not in after:
            lines.append(f"-{name}")
            if feed.enabled:
                stop.add(name)
    return lines, start, stop, retime, refetch


def _feed_details(was: Feed, now: Feed) -> list[str]:
    details: list[str] = []
    if was.interval != now.interval:
        details.append(f"interval {format_duration(was.interval)}→{format_duration(now.interval)}")
    if was.timeout != now.timeout:
        details.append(f"timeout {format_duration(was.timeout)}→{format_duration(now.timeout)}")
    if was.enabled != now.enabled:
        details.append("enabled" if now.enabled else "disabled")
    if was.url != now.url:
        details.append("url")
    if was.fetch_article != now.fetch_article:
        details.append(f"fetch_article {str(now.fetch_article).lower()}")
    if was.headers != now.headers:
        details.append("headers")
    return details


def _named_changes(before: dict[str, Any], after: dict[str, Any]) -> Iterable[str]:
    for name, value in after.items():
        if name not in before:
            yield f"+{name}"
        elif before[name] != value:
            yield f"~{name}"
    for name in before:
        if name not in after:
            yield f"-{name}"


_MATCHING_KEYS = ("query", "all", "any", "none", "languages")


def _rematch_topics(old: Config, new: Config) -> Iterable[str]:
    before = {t.name: t for t in old.topics}
    for topic in new.topics:
        was = before.get(topic.name)
        if was is None or any(getattr(was, k) != getattr(topic, k) for k in _MATCHING_KEYS):
            yield topic.name


def _setting_changes(old: Config, new: Config) -> Iterable[str]:
    for key, value in old.defaults:
        other = getattr(new.defaults, key)
        if other != value:
            yield f"defaults.{key} {_show(value)}→{_show(other)}"
    for key, value in old.fetch:
        if key not in RESTART_FETCH_KEYS and getattr(new.fetch, key) != value:
            yield f"fetch.{key} {_show(value)}→{_show(getattr(new.fetch, key))}"
    for key in ("health", "retention", "log_level"):
        if getattr(old.model, key) != getattr(new.model, key):
            yield key


def _restart_changes(old: Config, new: Config) -> Iterable[str]:
    if old.database != new.database:
        yield "database"
    if old.heartbeat != new.heartbeat:
        yield "heartbeat"
    for key in ("workers", "http"):
        if getattr(old.model, key) != getattr(new.model, key):
            yield key
    for key in RESTART_FETCH_KEYS:
        if getattr(old.fetch, key) != getattr(new.fetch, key):
            yield f"fetch.{key}"


def _show(value: object) -> str:
    if isinstance(value, timedelta):
        return format_duration(value)
    if value is None:
        return "off"
    return str(value).lower() if isinstance(value, bool) else str(value)


def effective_config(old: Config, new: Config) -> Config:
    """The new config, but with the settings that need a restart as the running daemon has them."""
    fetch = new.fetch.model_copy(update={k: getattr(old.fetch, k) for k in RESTART_FETCH_KEYS})
    update: dict[str, Any] = {k: getattr(old.model, k) for k in RESTART_KEYS}
    model = new.model.model_copy(update={**update, "fetch": fetch})
    return replace(new, model=model, database=old.database, heartbeat=old.heartbeat)


# --------------------------------------------------------------------------- watching


def _ms(value: timedelta) -> int:
    return max(1, int(value.total_seconds() * 1000))


def file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def valid_again_message(diff: ConfigDiff) -> str:
    """The log line for a fixed file that changes nothing: the daemon's own is DEBUG (a touch, a
    comment), which after an ERROR for the broken file left the fix unacknowledged."""
    if diff.empty:
        return "config is valid again (matches the running config); nothing to change"
    return (
        f"config is valid again (matches the running config; {', '.join(diff.restart)} still "
        "waits for a restart); nothing to change"
    )


@dataclass(frozen=True)
class WatchSettings:
    debounce: timedelta = timedelta(milliseconds=1600)  # longest wait to group a burst of events
    step: timedelta = timedelta(milliseconds=50)  # quiet time that ends a burst
    recheck_every: timedelta = timedelta(seconds=5)  # re-read the file even without an event
    settle: timedelta = timedelta(milliseconds=300)  # two reads this far apart must agree


class ConfigWatcher:
    """Calls `on_change` after the config file's content changed (and settled).

    The first check happens right after start-up (or at the first recheck), so an edit made while the
    daemon was starting is not missed; `on_change` must treat "no difference" as nothing to do.
    """

    def __init__(
        self,
        path: Path,
        on_change: Callable[[], Awaitable[object]],
        settings: WatchSettings | None = None,
    ) -> None:
        self.path = path.absolute()
        self.on_change = on_change
        self.settings = settings or WatchSettings()
        self._seen: str | None = None  # None: the first check always asks
        self.watching = asyncio.Event()  # set once the folder watch is running

    def _wanted(self, change: Change, path: str) -> bool:
        name = Path(path).name
        # `..data` and friends: Kubernetes swaps a ConfigMap's files by renaming a symlinked folder.
        return name == self.path.name or name.startswith("..")

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set; without file events (no inotify), re-read the file."""
        try:
            await self._watch(stop)
        except (OSError, RuntimeError) as exc:  # e.g. the inotify watch limit is reached
            every = self.settings.recheck_every.total_seconds()
            log.warning("cannot watch %s (%s); re-reading it every %gs", self.path, exc, every)
            self.watching.set()
            while not stop.is_set():
                await self._check()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)

    async def _watch(self, stop: asyncio.Event) -> None:
        changes = awatch(
            self.path.parent,
            watch_filter=self._wanted,
            debounce=_ms(self.settings.debounce),
            step=_ms(self.settings.step),
            rust_timeout=_ms(self.settings.recheck_every),
            yield_on_timeout=True,  # the periodic re-read
            stop_event=stop,
            recursive=False,
        )
        iterator = aiter(changes)
        pending = asyncio.ensure_future(anext(iterator))
        try:
            # The generator's first step sets up the folder watch before it waits in a thread.
            await asyncio.sleep(0)
            self.watching.set()
            await self._check()  # an edit made while the daemon was starting
            while True:
                try:
                    await pending
                except StopAsyncIteration:
                    return
                await self._check()
                pending = asyncio.ensure_future(anext(iterator))
        finally:
            pending.cancel()  # (awatch then sets `stop`, which ends its thread)

    async def _check(self) -> None:
        digest = file_digest(self.path)
        if digest == self._seen:
            return
        # A half-written file must not be refused: wait until two reads agree.
        while True:
            await asyncio.sleep(self.settings.settle.total_seconds())
            again = file_digest(self.path)
            if again == digest:
                break
            digest = again
        self._seen = digest
        try:
            await self.on_change()
        except Exception:  # a bug in applying must not end the watch
            log.exception("applying the edited config failed")
