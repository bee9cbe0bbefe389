"""`monitor once`: one pass over every enabled feed, with a progress bar and a summary."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from monitor.clock import Clock
from monitor.config import Config
from monitor.pipeline import PollOutcome
from monitor.service import open_pipeline


async def run_once_command(
    config: Config,
    console: Console,
    *,
    send_alerts: bool = True,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    feeds = [f for f in config.feeds if f.enabled]
    progress = Progress(
        TextColumn("polling"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )
    async with open_pipeline(config, clock=clock, transport=transport) as pipeline:
        with progress, _logging_beside(progress):
            task = progress.add_task("", total=len(feeds))

            def done(outcome: PollOutcome) -> None:
                progress.update(task, advance=1, description=outcome.feed)

            outcomes = await pipeline.run_once(feeds, ignore_backoff=True, on_done=done)
        if send_alerts:
            await pipeline.deliver_alerts()
    print_summary(console, config, outcomes)
    return 0


def _summary_has_it(record: logging.LogRecord) -> bool:
    """Beside the bar: the per-feed poll lines are left to the summary (it names every failure
    and warning once); other records print from WARNING up."""
    return record.name != "monitor.poll" and record.levelno >= logging.WARNING


@contextmanager
def _logging_beside(progress: Progress) -> Iterator[None]:
    """While the progress bar is on a terminal, log lines must not interleave with it: only
    problems print, and above the bar (through rich's redirected stderr)."""
    if progress.disable:
        yield
        return
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.setStream(sys.stderr) for h in handlers]  # rich's proxy while the bar is live
    for handler in handlers:
        handler.addFilter(_summary_has_it)
    try:
        yield
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            handler.removeFilter(_summary_has_it)
            if stream is not None:
                handler.setStream(stream)


def print_summary(console: Console, config: Config, outcomes: list[PollOutcome]) -> None:
    kinds = Counter(
        "ok"
        if o.status in ("ok", "unchanged")
        else "skipped"
        if o.status == "skipped"
        else "failed"
        for o in outcomes
    )
    new = sum(o.new for o in outcomes)
    updated = sum(o.updated for o in outcomes)
    console.print(
        f"feeds: {kinds['ok']} ok, {kinds['failed']} failed, {kinds['skipped']} skipped; "
        f"new items: {new}, updated: {updated}",
        markup=False,
    )
    for outcome in outcomes:
        if outcome.status in ("error", "gone"):
            console.print(
                f"  failed  {outcome.feed}: {config.mask(outcome.error or '')}", markup=False
            )
        elif outcome.status == "skipped":
            console.print(f"  skipped {outcome.feed}: {outcome.skipped}", markup=False)
        elif outcome.used_url:
            console.print(
                f"  {outcome.feed}: using discovered feed {outcome.used_url}", markup=False
            )
        if outcome.warning:
            console.print(f"  warning {outcome.feed}: {outcome.warning}", markup=False)
