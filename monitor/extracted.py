"""What extraction yields for a page: a small, dependency-free record.

Its own module so that the daemon can unpickle a worker's result without importing the
extraction code (trafilatura, lxml), which only the worker processes need.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ExtractedPage:
    """What a page yielded. ``text`` is "" (and ``error`` says why) when there was no article."""

    title: str | None
    text: str
    author: str | None
    published: datetime | None  # timezone-aware UTC
    site_name: str | None
    language: str | None  # ISO 639-1, e.g. "en"
    error: str | None = None
    # The page's <html lang>: the fallback when ``language`` is left to the caller to detect.
    html_lang: str | None = None
