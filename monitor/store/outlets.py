"""An article's outlet, as alerts, digests and "also reported by" name it.

The outlet is the site name the page declares (og:site_name, JSON-LD publisher, ...), else the name
the user gave the feed in the config, else the article's host. `items.site_name` holds only a
declared name, so the feed's name is taken when the item is read (`OUTLET_SQL`): a renamed feed
shows its new name, and feeds served from one host stay apart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from urllib.parse import urlsplit

from monitor.sqlin import in_chunks

# For a query over `items i LEFT JOIN feeds f ON f.id = i.feed_id`.
OUTLET_SQL = "coalesce(i.site_name, f.name)"


def page_host(url: str | None) -> str | None:
    """The host extraction names a page by when it declares no site name (no `www.`)."""
    try:
        host = urlsplit(url or "").hostname or ""
    except ValueError:  # a malformed stored URL (bad IPv6 literal): no host
        return None
    return host.removeprefix("www.") or None


def declared_site_name(site_name: str | None, page_url: str | None) -> str | None:
    """The site name the page itself gives; None when it is only extraction's fallback (the
    page's host), so that the configured feed name is used instead."""
    if not site_name or site_name == page_host(page_url):
        return None
    return site_name


def outlet_name(site_name: str | None, feed_name: str | None, url: str | None) -> str | None:
    """What `OUTLET_SQL` says, for an article not read from the database."""
    return site_name or feed_name or page_host(url)


def outlets_of(conn: sqlite3.Connection, item_ids: Iterable[int]) -> dict[int, str | None]:
    """The outlet of each of these stored items (as `OUTLET_SQL`, else the page's host)."""
    found: dict[int, str | None] = {}
    for chunk, marks in in_chunks(sorted(set(item_ids))):
        rows = conn.execute(
            f"""SELECT i.id, {OUTLET_SQL}, coalesce(i.page_url, i.url) FROM items i
                LEFT JOIN feeds f ON f.id = i.feed_id WHERE i.id IN ({marks})""",
            chunk,
        )
        found.update((int(item_id), outlet or page_host(url)) for item_id, outlet, url in rows)
    return found
