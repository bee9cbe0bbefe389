"""`monitor developments`: each news event per topic, with the articles gathered under it."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.style import Style

from monitor.cli import (
    _ago,
    app,
    get_config,
    open_store,
    out,
    plural,
    print_hanging,
    print_json,
    since_option,
)
from monitor.cli_topics import find_topic
from monitor.clock import SystemClock, utc_iso


def development_summary(dev: dict[str, Any], outlets: list[str]) -> str:
    """`3 reports from 2 outlets · first seen 2.0h ago · last 10m ago` (one time when both
    read the same): short words, so a narrow terminal wraps it between them."""
    count = f"{plural(len(dev['items']), 'report')} from {plural(len(outlets), 'outlet')}"
    first, last = _ago(dev["first_seen"]), _ago(dev["last_seen"])
    seen = f"first seen {first}" + ("" if first == last else f" · last {last}")
    return f"{count} · {seen}"


def list_developments(
    conn: sqlite3.Connection, *, topic: str | None, since: timedelta | None
) -> list[dict[str, Any]]:
    """Developments, newest first seen first, each with its items in the order they arrived."""
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if topic is not None:
        where.append("d.topic = ?")
        params.append(topic)
    if since is not None:
        where.append("d.first_seen >= ?")
        params.append(utc_iso(SystemClock().now() - since))
    rows = conn.execute(
        f"""SELECT d.id, d.topic, d.title, d.first_seen, d.last_seen, d.merged_into,
                   d.split_from
            FROM developments d WHERE {" AND ".join(where)}
            ORDER BY d.first_seen DESC, d.id DESC""",
        params,
    ).fetchall()
    found = [
        {
            "id": r["id"],
            "topic": r["topic"],
            "title": r["title"],
            "first_seen": r["first_seen"],
            "last_seen": r["last_seen"],
            "merged_into": r["merged_into"],
            "split_from": r["split_from"],  # regrouping split it off this development
            "items": [],
        }
        for r in rows
    ]
    by_id = {d["id"]: d for d in found}
    if not by_id:
        return found
    marks = ",".join("?" * len(by_id))
    for item in conn.execute(
        f"""SELECT di.development_id, i.id, i.url, i.title, f.name AS feed, i.published,
                   di.relation, di.duplicate_of
            FROM development_items di JOIN items i ON i.id = di.item_id
            LEFT JOIN feeds f ON f.id = i.feed_id
            WHERE di.development_id IN ({marks})
            ORDER BY di.added_at, i.id""",
        list(by_id),
    ):
        by_id[item["development_id"]]["items"].append(
            {
                "id": item["id"],
                "url": item["url"],
                "title": item["title"],
                "feed": item["feed"],
                "published": item["published"],
                "relation": item["relation"],
                "duplicate_of": item["duplicate_of"],
            }
        )
    return found


@app.command()
def developments(
    topic: Annotated[str | None, typer.Option(help="Only this topic.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only developments first seen this recently, e.g. 7d.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One plain JSON array.")] = False,
) -> None:
    """News events per topic: the first report, later reports by other outlets, duplicates."""
    from monitor.alert.digest import development_outlets  # the outlets "also reported by" names

    config = get_config()
    with open_store(config, create=True) as store:
        found = list_developments(store.conn, topic=topic, since=since_option(since))
        outlets = {} if as_json else development_outlets(store.conn, [d["id"] for d in found])
    if topic is not None and not found:
        find_topic(config, topic)  # a misspelt name is an error, not "0 developments"
    if as_json:
        print_json(found)
        return
    out.print(f"[bold]{plural(len(found), 'development')}[/bold]")
    for dev in found:
        print_development(dev, outlets.get(str(dev["id"]), []))


def print_development(dev: dict[str, Any], outlets: list[str]) -> None:
    """A development and its items, each wrapped at word boundaries under a hanging indent."""
    merged = f" [dim](merged into #{dev['merged_into']})[/dim]" if dev["merged_into"] else ""
    if dev["split_from"]:
        merged += f" [dim](split from #{dev['split_from']})[/dim]"
    print_hanging(
        f"#{dev['id']} ",
        f"[cyan]{escape(dev['topic'])}[/cyan] {escape(dev['title'])}{merged}"
        f"  [dim]{escape(development_summary(dev, outlets))}[/dim]",
    )
    for item in dev["items"]:
        line = out.render_str(f"{escape(item['title'])} [dim]({escape(item['feed'] or '')})[/dim]")
        if item["url"]:  # a link even where a narrow terminal folds it
            line.append(" ").append(item["url"], Style(dim=True, link=item["url"]))
        print_hanging(f"    {item['relation']:<9} ", line)
