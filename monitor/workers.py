"""What the extraction worker processes run, and nothing else.

The pool starts its workers fresh (spawn), and a worker imports only what it runs: extraction
(trafilatura, lxml), feed parsing (feedparser) and clustering features. Not `monitor.pipeline`,
which pulls in the store, the alert senders (apprise), the config models (pydantic) and the
scheduler, nor the language model (~70 MB; the daemon detects languages, see monitor.language).

This module itself imports only the standard library, so that the daemon can name these
functions to the pool without importing the extraction code: each function imports its stage
when first called, and the initializer does so ahead of the first task.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import signal
import sys
import threading
import time
import types
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.extracted import ExtractedPage
    from monitor.parse import HtmlPage
    from monitor.records import ParsedFeed

# What a worker needs, imported by `initialize` so that no task pays for it.
STAGES = ("monitor.extract", "monitor.parse", "monitor.cluster.features")

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_SECONDS = 1.0  # the portable fallback's reaction time to an orphaned worker


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from <malloc.h>
MALLOC_THRESHOLD_BYTES = 256 * 1024


def initialize(parent_pid: int) -> None:
    """Pool initializer: die with the parent; import the stages ahead of the first task."""
    exit_with_parent(parent_pid)
    _return_freed_memory()
    if "py3langid" not in sys.modules:
        # trafilatura imports py3langid (and numpy: 12 MB a worker) only for a language filter
        # we never ask for; workers leave language identification to the daemon.
        sys.modules["py3langid"] = None  # type: ignore[assignment]
    for name in STAGES:
        importlib.import_module(name)


def _return_freed_memory() -> None:
    """glibc raises its mmap threshold after large frees, so later page-sized buffers (HTML,
    parsed trees) come from the heap and stay resident when freed; fixed thresholds give them
    back (6 MB less per worker on the dev pages, no measurable CPU)."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, MALLOC_THRESHOLD_BYTES)
        libc.mallopt(M_TRIM_THRESHOLD, MALLOC_THRESHOLD_BYTES)
    except (OSError, AttributeError):  # not glibc: its allocator, its defaults
        pass


def exit_with_parent(parent_pid: int) -> None:
    """End this process when `parent_pid` dies, even by SIGKILL (no chance to shut the pool).

    Linux: the kernel sends SIGTERM on the parent's death (prctl PR_SET_PDEATHSIG). Elsewhere,
    or if that fails: a daemon thread watches for the parent to go (we get re-parented).
    The kernel's "parent" is the thread that started the worker: the pool starts them from the
    thread that submits (the event loop's) or from its own manager thread, both as long-lived
    as the pool.
    """
    if sys.platform.startswith("linux") and _set_parent_death_signal(signal.SIGTERM):
        # The parent may have died before prctl took effect: then nobody would signal us.
        if os.getppid() != parent_pid:
            os._exit(1)
        return
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True
    ).start()


def _set_parent_death_signal(signum: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)) == 0
    except (OSError, AttributeError):  # no libc symbol (not glibc/musl): use the watch thread
        return False


def _watch_parent(parent_pid: int) -> None:
    stop = threading.Event()
    while not stop.wait(PARENT_POLL_SECONDS):
        if os.getppid() != parent_pid:
            log.warning("parent process %d is gone; extraction worker exits", parent_pid)
            os._exit(1)


class WorkerProcess(SpawnProcess):
    def start(self) -> None:
        # A spawned child first re-runs the parent's __main__ script, so that functions defined
        # there can be unpickled. `monitor` is a console script whose first line imports the whole
        # CLI (~30 MB a worker); workers only run monitor.workers' functions, so the child is told
        # of no main script. The swap lasts while start() hands the child its instructions.
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            super().start()
        finally:
            sys.modules["__main__"] = main


class WorkerContext(SpawnContext):
    """Spawn, with processes that start without the parent's main script (WorkerProcess).

    The process object itself is pickled to the child, so this class lives here, in a module
    that imports nothing heavy (defined in monitor.pipeline, it would import the daemon)."""

    Process = WorkerProcess


def started() -> float:
    """A first task: it runs once the initializer has imported the stages, and returns the
    CPU seconds this worker spent starting."""
    return time.process_time()


def extract(html: bytes, url: str, content_type: str | None) -> ExtractedPage:
    """The page's article; its language is left to the caller (``html_lang`` is the fallback)."""
    from monitor.extract import extract_page

    return extract_page(html, url, content_type, detect=False)


def features_json_many(articles: list[tuple[str, str, str | None]]) -> list[str]:
    """The clustering features of (title, text, language) articles, serialised, in one trip."""
    from monitor.cluster.features import features

    return [features(title, text, language).to_json() for title, text, language in articles]


def parse(body: bytes, url: str, content_type: str | None) -> ParsedFeed | HtmlPage:
    from monitor.parse import parse_feed

    return parse_feed(body, url=url, content_type=content_type)
