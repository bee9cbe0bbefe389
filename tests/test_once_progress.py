"""`monitor once` on a terminal: per-feed log lines do not interleave with its progress bar; the
summary names each failure once. Off a terminal (no bar) the log lines are as ever."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from monitor.clock import FakeClock
from monitor.config import load_config
from monitor.once import run_once_command
from tests.alert_helpers import NOW
from tests.newsroom import Newsroom
from tests.newsroom_content import make_story


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def _config(newsroom: Newsroom, tmp_path: Path) -> Path:
    entry = newsroom.add_article("/en/news/a", make_story(1, "en", title="Summit"))
    good = newsroom.add_feed("/en.xml", [entry])
    missing = good.replace("/en.xml", "/missing.xml")
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: m.db
workers: 0
defaults: {{timeout: 2s}}
feeds: [{{name: Good, url: "{good}"}}, {{name: Missing, url: "{missing}"}}]
topics: [{{name: t, query: summit}}]
""",
        encoding="utf-8",
    )
    return path


def _once(path: Path, terminal: bool) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, width=100, highlight=False)
    config = load_config(path)
    assert asyncio.run(run_once_command(config, console, clock=FakeClock(NOW))) == 0
    return buffer.getvalue()


def test_on_a_terminal_only_the_summary_reports_the_feeds(
    newsroom: Newsroom, tmp_path: Path, log_stream: io.StringIO
) -> None:
    shown = _once(_config(newsroom, tmp_path), terminal=True)
    assert "poll feed=" not in shown and "poll feed=" not in log_stream.getvalue()
    assert "feeds: 1 ok, 1 failed" in shown
    assert shown.count("Missing: ") == 1  # the failure, once, in the summary
    # The handler is as it was once the bar is gone: no filter left, its own stream back.
    (handler,) = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert handler.filters == [] and handler.stream is log_stream


def test_off_a_terminal_the_log_lines_stay(
    newsroom: Newsroom, tmp_path: Path, log_stream: io.StringIO
) -> None:
    shown = _once(_config(newsroom, tmp_path), terminal=False)
    logged = log_stream.getvalue()
    assert "poll feed=Good status=ok" in logged and "poll feed=Missing status=" in logged
    assert "feeds: 1 ok, 1 failed" in shown
