"""Topic commands: `monitor search`, `monitor topics`, `monitor topics test`, `monitor rematch`."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.style import Style
from rich.table import Table
from rich.text import Text

from monitor.cli import (
    EXIT_CONFIG,
    _ago,
    app,
    fail,
    get_config,
    open_store,
    out,
    plural,
    print_fields,
    print_hanging,
    print_json,
    print_table_or,
    since_option,
)
from monitor.clock import SystemClock, utc_iso
from monitor.config import Config, Topic, compiled_query
from monitor.match import archive
from monitor.match.percolate import TopicSpec
from monitor.match.query import QueryError, compile_query
from monitor.pipeline import configure_developments

topics_app = typer.Typer(
    help="Watch topics: list them with their match counts, or try one on stored items.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(topics_app, name="topics")

_BOLD = re.compile(r"\\\*\\\*(.+?)\\\*\\\*|\*\*(.+?)\*\*")


def rich_highlight(text: str) -> str:
    """`**hit**` markers (from the matcher) as rich bold, the rest escaped as literal text."""
    parts: list[str] = []
    last = 0
    for found in re.finditer(r"\*\*(.+?)\*\*", text, flags=re.DOTALL):
        parts.append(escape(text[last : found.start()]))
        parts.append(f"[bold yellow]{escape(found.group(1))}[/bold yellow]")
        last = found.end()
    parts.append(escape(text[last:]))
    return "".join(parts)


def topic_spec(topic: Topic) -> TopicSpec:
    languages = tuple(topic.languages) if topic.languages else None
    return TopicSpec(topic.name, compiled_query(topic), languages)


def find_topic(config: Config, name: str) -> Topic:
    for topic in config.topics:
        if topic.name == name:
            return topic
    known = ", ".join(t.name for t in config.topics) or "none configured"
    fail(f"no topic named {name!r} (topics: {known})", EXIT_CONFIG)


def hit_json(hit: archive.SearchHit) -> dict[str, Any]:
    return {
        "id": hit.item_id,
        "url": hit.url,
        "title": hit.title,
        "published": utc_iso(hit.published),
        "fetched": utc_iso(hit.fetched),
        "language": hit.language,
        "score": round(hit.score, 4) if hit.score is not None else None,  # None: newest first
        "terms": list(hit.terms),
        "snippet": hit.snippet,
        "outlet": hit.outlet,
    }


def hit_about(hit: archive.SearchHit) -> str:
    """`seen 10m ago · published 2026-12-05 · Outlet · en · #12`: when it was first seen (what
    --since filters on) and published, and where."""
    parts = [f"seen {_ago(utc_iso(hit.fetched))}"]
    if hit.published is not None:
        parts.append(f"published {hit.published:%Y-%m-%d}")
    parts += [p for p in (hit.outlet, hit.language) if p]
    return " · ".join([*parts, f"#{hit.item_id}"])


def print_hits(hits: list[archive.SearchHit], heading: str) -> None:
    """Each hit: its title line, link and snippet wrapped under its rank at any terminal width."""
    out.print(f"[bold]{escape(heading)}[/bold]", soft_wrap=False)
    for rank, hit in enumerate(hits, start=1):
        print_hanging(
            f"{rank:>3}. ",
            f"{rich_highlight(hit.title_highlighted)}  [dim]{escape(hit_about(hit))}[/dim]",
        )
        if hit.url:
            print_hanging("     ", Text(hit.url, style=Style(color="blue", link=hit.url)))
        if hit.snippet:
            print_hanging("     ", rich_highlight(hit.snippet))


def run_search(
    config: Config,
    query: str,
    *,
    since: timedelta | None,
    limit: int | None,
    topic: str | None = None,
    languages: tuple[str, ...] | None = None,
    sort: archive.Sort = "relevance",
) -> list[archive.SearchHit]:
    try:
        compile_query(query)
    except QueryError as exc:
        fail(f"bad query: {exc}", EXIT_CONFIG)
    with open_store(config, create=True) as store:
        return archive.search(
            store.conn,
            query,
            since=since,
            limit=limit,
            topic=topic,
            languages=languages,
            sort=sort,
            now=SystemClock().now(),
        )


class SearchOrder(StrEnum):
    newest = "newest"
    relevance = "relevance"


@app.command()
def search(
    words: Annotated[
        list[str],
        typer.Argument(
            help="Query, e.g. '(kursk OR курск*) AND \"north korea\"'; several words are one "
            "query (kursk troops = kursk AND troops)",
            metavar="QUERY...",
        ),
    ],
    topic: Annotated[str | None, typer.Option(help="Only items matched by this topic.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only items first seen this recently, e.g. 7d.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many results.")] = 20,
    sort: Annotated[
        SearchOrder,
        typer.Option(
            help="newest: the most recently stored first (fast at any archive size); "
            "relevance: best bm25 score first (scores every hit: add --since on a large archive)."
        ),
    ] = SearchOrder.newest,
    as_json: Annotated[bool, typer.Option("--json", help="One plain JSON array.")] = False,
) -> None:
    """Search stored items, newest first (or --sort relevance), with highlighted snippets.

    The query language is the one topics use: AND, OR, NOT, parentheses, "exact phrases",
    prefix*, NEAR(a b, 10), title: field filter.
    """
    query = " ".join(words)
    config = get_config()
    if topic is not None:
        find_topic(config, topic)
    hits = run_search(
        config, query, since=since_option(since), limit=limit, topic=topic, sort=sort.value
    )
    if as_json:
        print_json([hit_json(h) for h in hits])
        return
    print_hits(hits, f"{plural(len(hits), 'result')} for {query}")


@topics_app.callback()
def topics_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One plain JSON array.")] = False,
) -> None:
    """Each topic, its compiled query, and its matches in the last day / week / all time."""
    if ctx.invoked_subcommand is not None:
        return
    config = get_config()
    with open_store(config, create=True) as store:
        counts = archive.topic_counts(store.conn, now=SystemClock().now())
    rows: list[dict[str, Any]] = []
    for topic in config.topics:
        count = counts.get(topic.name, archive.TopicCounts(0, 0, 0))
        rows.append(
            {
                "name": topic.name,
                "description": topic.description,
                "query": compiled_query(topic),
                "compiled": compile_query(compiled_query(topic)).fts,
                "languages": topic.languages,
                "notify": topic.notify,
                "day": count.day,
                "week": count.week,
                "total": count.total,
            }
        )
    if as_json:
        print_json(rows)
        return
    table = Table(title=plural(len(rows), "topic"))
    for column in ("topic", "query", "day", "week", "all", "notify"):
        table.add_column(column, overflow="fold", no_wrap=column not in ("topic", "query"))
    for row in rows:
        label = escape(row["name"]) + (
            f"\n[dim]{escape(row['description'])}[/dim]" if row["description"] else ""
        )
        table.add_row(
            label,
            escape(row["query"]) + f"\n[dim]compiled: {escape(row['compiled'])}[/dim]",
            str(row["day"]),
            str(row["week"]),
            str(row["total"]),
            escape(", ".join(row["notify"])) or "-",
        )
    print_table_or(table, rows, _print_topic_compact)


def _print_topic_compact(row: dict[str, Any]) -> None:
    """A topic for a narrow terminal: name and counts on one line, then its description and its
    query as written and compiled, each wrapped as text."""
    counts = [f"{row['day']} last day", f"{row['week']} last week", f"{row['total']} in all"]
    notify = escape(", ".join(row["notify"])) or "-"
    print_fields([escape(row["name"]), *counts, f"notify {notify}"])
    if row["description"]:
        print_hanging("    ", f"[dim]{escape(row['description'])}[/dim]")
    print_hanging("    query: ", escape(row["query"]))
    print_hanging("    compiled: ", f"[dim]{escape(row['compiled'])}[/dim]")


@topics_app.command("test")
def topics_test(
    name: Annotated[
        str | None, typer.Argument(help="A topic from the config on disk.", metavar="TOPIC")
    ] = None,
    query: Annotated[str | None, typer.Option(help="Try a query instead of a topic.")] = None,
    since: Annotated[str, typer.Option(help="How far back to look.")] = "30d",
    limit: Annotated[int, typer.Option(min=1, help="How many results.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One plain JSON array.")] = False,
) -> None:
    """What a topic (as written in the config on disk) or a query would match among stored items.

    Nothing is recorded and no alert is sent.
    """
    if name is None and query is None:
        fail("give a topic NAME (from the config) or --query QUERY to try", EXIT_CONFIG)
    if name is not None and query is not None:
        fail("give a topic NAME or --query, not both", EXIT_CONFIG)
    config = get_config()
    languages: tuple[str, ...] | None = None
    if name is not None:
        spec = topic_spec(find_topic(config, name))
        query, languages = spec.query, spec.languages
    assert query is not None
    hits = run_search(config, query, since=since_option(since), limit=limit, languages=languages)
    if as_json:
        print_json([hit_json(h) for h in hits])
        return
    verb = "matches" if len(hits) == 1 else "match"
    print_hits(
        hits, f"{plural(len(hits), 'stored item')} in the last {since} {verb} {name or query}"
    )


@app.command()
def rematch(
    topic: Annotated[str | None, typer.Option(help="Only this topic.")] = None,
) -> None:
    """Apply new or changed topics to stored items, without alerting.

    History, search and developments are then complete for a topic added after its news arrived.
    """
    config = get_config()
    topics = [find_topic(config, topic)] if topic else list(config.topics)
    specs = [topic_spec(t) for t in topics]
    now = SystemClock().now()
    with open_store(config, create=True) as store, store.transaction():
        results = archive.rematch(store.conn, specs, now=now)
        configure_developments(store, config)
        built = store.rebuild_developments([s.name for s in specs], now)
    for result in results:
        developments = built.get(result.topic, 0)
        out.print(
            f"{result.topic}: {plural(result.matched, 'item')} match"
            f"{'es' if result.matched == 1 else ''} ({result.added} new), "
            f"{plural(developments, 'development')}",
            markup=False,
        )
        if result.kept:
            out.print(
                f"  {plural(result.kept, 'earlier match', 'earlier matches')} that the topic "
                "as now written would not make stay in its history (and its developments)",
                markup=False,
            )
