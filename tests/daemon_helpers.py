"""Running a real `Daemon` inside a test's event loop, and waiting for what it reports (no sleeps)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from monitor.daemon import Daemon, ReloadResult
from monitor.pipeline import PollOutcome


class Events:
    """The daemon's callbacks and log records, as conditions a test can await."""

    def __init__(self) -> None:
        self.polls: list[PollOutcome] = []
        self.reloads: list[ReloadResult] = []
        self.logs: list[str] = []
        self._changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def poll(self, outcome: PollOutcome) -> None:
        self.polls.append(outcome)
        self._changed.set()

    def reload(self, result: ReloadResult) -> None:
        self.reloads.append(result)
        self._changed.set()

    def log(self, message: str) -> None:
        self.logs.append(message)
        self._changed.set()

    def polled(self, feed: str, status: str | None = None) -> int:
        return sum(1 for o in self.polls if o.feed == feed and status in (None, o.status))

    async def until(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait until `ready()` holds; re-checked whenever the daemon reports something."""
        async with asyncio.timeout(timeout):
            while not ready():
                if self.task is not None and self.task.done():
                    self.task.result()  # the daemon died: raise its error here
                    raise AssertionError("the daemon stopped")
                self._changed.clear()
                waiter = asyncio.ensure_future(self._changed.wait())
                pending = {waiter} if self.task is None else {waiter, self.task}
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()


class _Forward(logging.Handler):
    def __init__(self, events: Events, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.INFO)
        self.events = events
        self.loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        self.loop.call_soon_threadsafe(self.events.log, record.getMessage())


@asynccontextmanager
async def running(daemon: Daemon, events: Events) -> AsyncIterator[Daemon]:
    """Serve `daemon` in a task; stop it (and wait for a clean stop) on the way out."""
    handler = _Forward(events, asyncio.get_running_loop())
    logging.getLogger("monitor").addHandler(handler)
    logging.getLogger("monitor").setLevel(logging.INFO)
    events.task = asyncio.create_task(daemon.serve())
    try:
        yield daemon
    finally:
        daemon.request_stop()
        try:
            await asyncio.wait_for(events.task, timeout=30)
        finally:
            logging.getLogger("monitor").removeHandler(handler)


def write_config(path: Path, text: str) -> Path:
    """Replace the file the way editors do: write a temporary file, rename it over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def feeds_yaml(feeds: dict[str, str], **options: Any) -> str:
    """`feeds:` entries: name -> url, options applied per name as {name: "interval: 30m"}."""
    lines = ["feeds:"]
    for name, url in feeds.items():
        extra = options.get(name)
        lines.append(f"  - {{name: {name}, url: '{url}'{', ' + extra if extra else ''}}}")
    return "\n".join(lines) + "\n"
