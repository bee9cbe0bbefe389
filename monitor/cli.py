"""The `monitor` command.

Exit codes: 0 success; 2 config error (or bad usage); 1 any other fatal error.
`--config PATH` is accepted before or after the command name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

from monitor import __version__
from monitor.clock import SystemClock, parse_iso, utc_iso
from monitor.config import (
    Config,
    ConfigError,
    Locations,
    load_config,
    parse_duration,
    raw_locations,
)
from monitor.store import Store, StoreError

if TYPE_CHECKING:
    from monitor.alert.outbox import OutboxRow

Row = TypeVar("Row")

app = typer.Typer(
    name="monitor",
    help="news-monitor: watch news feeds for topics; one alert per new development.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _plain_help_metavars() -> None:
    """typer 0.2x renders help oddly: flags as `--json <bool>`, and arguments in usage lines as
    `{QUERY...}...` or `{file}`. Show them the click way: a flag alone, `QUERY...`, `[ID]...`;
    an argument given a `metavar=` (every one of ours) without a `<type>` beside it."""
    from typer import core

    option_cls, argument_cls = core.TyperOption, core.TyperArgument
    option_type = getattr(option_cls, "display_type_rich", None)
    argument_type = getattr(argument_cls, "display_type_rich", None)
    if option_type is None or argument_type is None:  # another typer: leave its help alone
        return

    def flag_type(self: Any, ctx: Any) -> str | None:
        return None if self.is_flag or self.count else option_type(self, ctx)

    def argument_type_unless_named(self: Any, ctx: Any) -> str | None:
        return None if self.metavar is not None else argument_type(self, ctx)

    def usage_name(self: Any) -> str:
        name = (self.metavar or self.name.upper()).removesuffix("...")
        name = name if self.required else f"[{name}]"
        return f"{name}..." if self.nargs != 1 else name

    option_cls.display_type_rich = flag_type  # type: ignore[method-assign]
    argument_cls.display_type_rich = argument_type_unless_named  # type: ignore[method-assign]
    if hasattr(argument_cls, "_usage_display_name"):
        argument_cls._usage_display_name = usage_name  # type: ignore[method-assign]


_plain_help_metavars()
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_FATAL = 1
EXIT_CONFIG = 2


class _State:
    config_path: str | None = None


STATE = _State()


# --------------------------------------------------------------------------- entry point


def split_config_option(argv: list[str]) -> tuple[list[str], str | None]:
    """Pull `--config PATH` / `--config=PATH` / `-c PATH` out of argv, wherever it stands."""
    rest: list[str] = []
    path: str | None = None
    args = iter(argv)
    for arg in args:
        if arg in ("--config", "-c"):
            path = next(args, None)
            if path is None:
                err.print("error: --config needs a path")
                raise SystemExit(EXIT_CONFIG)
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return rest, path


def main(argv: list[str] | None = None) -> None:
    args, STATE.config_path = split_config_option(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args, prog_name="monitor")
    finally:  # one invocation's --config must not outlive it (main is called in-process too)
        _forget_config_path()


def _version(value: bool) -> None:
    if value:
        out.print(f"news-monitor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file (else $MONITOR_CONFIG, else config/monitor.yaml).",
        ),
    ] = None,
) -> None:
    """news-monitor: watch news feeds for topics; one alert per new development."""
    if config is not None:  # `main` takes --config out first; this is the app called directly
        STATE.config_path = config
        ctx.call_on_close(_forget_config_path)


def _forget_config_path() -> None:
    STATE.config_path = None


# --------------------------------------------------------------------------- helpers


def fail(message: str, code: int = EXIT_FATAL) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(code)


def get_config(*, deep: bool = False) -> Config:
    try:
        return load_config(STATE.config_path, deep=deep)
    except ConfigError as exc:
        print_config_error(exc)
        raise typer.Exit(EXIT_CONFIG) from None


def load_or_locate() -> tuple[Config | Locations, ConfigError | None]:
    """The config; or, when it does not validate, where its daemon's files are (read from the raw
    file, else the defaults) with the error: the daemon runs on while an edit is broken."""
    try:
        return load_config(STATE.config_path), None
    except ConfigError as exc:
        return raw_locations(STATE.config_path), exc


def broken_config_warning(exc: ConfigError, where: Config | Locations) -> str:
    """One line for stderr: the config does not validate, and which heartbeat is judged instead."""
    default = isinstance(where, Locations) and not where.from_file
    return (
        f"warning: {where.path} does not validate ({plural(len(exc.problems), 'problem')}; "
        f"`monitor check` lists them): judging the daemon by {'the default ' if default else ''}"
        f"{where.heartbeat} and its lock"
    )


def print_config_error(exc: ConfigError) -> None:
    """Every problem as file:line: key: message (already masked), then whether a daemon runs on."""
    for problem in exc.problems:
        err.print(str(problem), soft_wrap=True, markup=False)
    note = running_daemon_note(raw_locations(STATE.config_path))
    if note:
        err.print(note, soft_wrap=True, markup=False)


def running_daemon_note(where: Locations) -> str | None:
    """One line when the daemon lock says a daemon runs on the file's database: a rejected edit
    leaves it running on the config it had (the problems above might suggest it stopped)."""
    from monitor.ops import daemon_lock_free, lock_holder

    if daemon_lock_free(where) is not False:
        return None
    pid = lock_holder(where)
    holder = f" (pid {pid})" if pid else ""
    return (
        f"the daemon running on {where.database}{holder} keeps its previous config "
        "until this file validates"
    )


@contextmanager
def open_store(config: Config, *, create: bool = False) -> Iterator[Store]:
    try:
        store = Store.open(config.database, create=create)
    except StoreError as exc:
        fail(str(exc))
    try:
        yield store
    finally:
        store.close()


def setup_logging(config: Config) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_MaskSecrets(config.mask))
    handler.addFilter(_not_apprise_warning)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.model.log_level)
    for noisy in (
        "httpx",
        "httpcore",
        "apscheduler",
        "trafilatura",
        "htmldate",
        "courlan",
        "apprise",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _not_apprise_warning(record: logging.LogRecord) -> bool:
    """apprise warns of every failed send, which monitor.alert logs already with the service's
    answer: one line per failure, not two. (Its logger keeps WARNING: the answer we report is
    read from what apprise captured at that level.)"""
    return not (record.name.startswith("apprise") and record.levelno < logging.ERROR)


class _MaskSecrets(logging.Filter):
    def __init__(self, mask: Callable[[str], str]) -> None:
        super().__init__()
        self.mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.mask(record.getMessage())
        record.args = None
        return True


def since_option(value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        result = parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    assert isinstance(result, timedelta)
    return result


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 development`, `2 developments`; `many` where adding an s is wrong (match, matches)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def print_json(value: Any) -> None:
    # Plain stdout (no rich): `--json` output must be exactly one JSON document.
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


# --------------------------------------------------------------------------- narrow terminals
# A table too wide for the terminal is folded by rich into slivers ("faile/d"); listings print a
# compact layout instead, and long text is wrapped at word boundaries under a hanging indent.

_UNBOUNDED = 10_000  # a width no table reaches: measures a table as it would like to be


def table_fits(table: Table, console: Console = out) -> bool:
    """Whether `table` fits the console with its no_wrap columns whole and no word folded.

    Rich narrows the widest wrapping columns to one common width first, so that width must still
    hold the longest word of every wrapping column.
    """
    wide = console.options.update_width(_UNBOUNDED)
    spans = [_column_span(console, wide, c) for c in table.columns if not c.no_wrap]
    word = max((span.minimum for span in spans), default=0)
    natural = Measurement.get(console, wide, table).maximum
    return natural - sum(max(0, span.maximum - word) for span in spans) <= console.width


def _column_span(console: Console, options: ConsoleOptions, column: Column) -> Measurement:
    """The longest word and the longest line among a column's header and cells."""
    found = [Measurement.get(console, options, cell) for cell in (column.header, *column.cells)]
    return Measurement(max(m.minimum for m in found), max(m.maximum for m in found))


def print_table_or(
    table: Table, rows: Iterable[Row], print_row: Callable[[Row], None], console: Console = out
) -> None:
    """`table` when it fits the terminal, else its title and each row in its compact layout."""
    if table_fits(table, console):
        console.print(table)
        return
    console.print(table.title, soft_wrap=False)
    for row in rows:
        print_row(row)


def print_fields(fields: Sequence[str], indent: int = 4, console: Console = out) -> None:
    """Short fields (markup) two spaces apart on one line, broken only between fields: a
    narrow terminal gets `created 3.0h ago` whole on the next line, not `created` / `3.0h ago`."""
    line, gap = Text(), ""
    for field in map(console.render_str, fields):
        if gap and line.cell_len + len(gap) + field.cell_len > console.width:
            console.print(line, soft_wrap=False, overflow="fold")
            line, gap = Text(" " * indent), ""
        line.append(gap)
        line.append_text(field)
        gap = "  "
    # Not soft-wrapped: one field wider than the terminal (a long feed name) wraps at its spaces.
    console.print(line, soft_wrap=False, overflow="fold")


def print_hanging(lead: str, body: str | Text, console: Console = out) -> None:
    """`lead`, then `body` (markup if a str) wrapped at word boundaries to the console's width
    with its next lines starting under its first: the terminal would cut words anywhere (a word
    longer than a whole line is still folded)."""
    text = console.render_str(body) if isinstance(body, str) else body
    width = max(console.width - cell_len(lead), 20)
    for index, line in enumerate(text.wrap(console, width, overflow="fold")):
        line.rstrip()  # the space a line was broken at
        console.print(Text(lead if index == 0 else " " * cell_len(lead)) + line, soft_wrap=True)


# --------------------------------------------------------------------------- commands


@app.command()
def check() -> None:
    """Validate the config; exit 0, or 2 listing every problem as file:line: key: message."""
    config = get_config(deep=True)
    enabled = sum(1 for f in config.feeds if f.enabled)
    out.print(f"{config.path}: OK")
    out.print(
        f"  {plural(len(config.feeds), 'feed')} ({enabled} enabled), "
        f"{plural(len(config.topics), 'topic')}, {plural(len(config.channels), 'channel')}; "
        f"database {config.database}"
    )
    for name, channel in config.channels.items():
        out.print(f"  channel {name}: {config.mask(channel.url)} ({channel.mode})", markup=False)


@app.command()
def once(
    no_alerts: Annotated[
        bool, typer.Option("--no-alerts", help="Do not send pending alerts before exiting.")
    ] = False,
) -> None:
    """One pass over every enabled feed now (ignoring back-off timers), then exit."""
    config = get_config()
    setup_logging(config)
    from monitor.once import run_once_command
    from monitor.ops import DaemonLockError, daemon_lock

    try:
        # The daemon's lock: a pass beside a running daemon would poll its feeds twice and race
        # it for its alerts.
        with daemon_lock(config):
            code = asyncio.run(run_once_command(config, out, send_alerts=not no_alerts))
    except (StoreError, DaemonLockError) as exc:
        fail(str(exc))
    raise typer.Exit(code)


@app.command()
def run(
    http: Annotated[
        str | None,
        typer.Option(help="Serve /healthz and /metrics on HOST:PORT (wins over `http:`)."),
    ] = None,
    time_scale: Annotated[
        float, typer.Option(hidden=True, min=0.001, help="Run the clock this many times faster.")
    ] = 1.0,
    time_epoch: Annotated[
        str | None, typer.Option(hidden=True, help="Where the fast clock starts (ISO-8601).")
    ] = None,
) -> None:
    """Run the service: poll feeds on their schedules until SIGINT/SIGTERM; apply config edits."""
    from monitor.cli_ops import run_daemon

    run_daemon(http, time_scale, time_epoch)


@app.command()
def healthcheck(
    max_age: Annotated[str, typer.Option(help="Oldest acceptable heartbeat.")] = "90s",
) -> None:
    """Exit 0 when the daemon runs and its heartbeat is fresh (for container healthchecks), else 1."""
    from monitor.ops import daemon_liveness, lock_file

    # Judged even when the config does not validate: after a rejected edit the daemon runs on,
    # and a typo must not mark a healthy container unhealthy.
    config, broken = load_or_locate()
    if broken is not None:
        err.print(broken_config_warning(broken, config), soft_wrap=True, markup=False)
    limit = since_option(max_age) or timedelta(seconds=90)
    live = daemon_liveness(config, SystemClock().now(), fresh=limit)
    if live.age is None:
        fail(f"no heartbeat at {config.heartbeat}")
    age = live.age.total_seconds()
    if live.stopped is not None:
        fail(f"the daemon stopped at {utc_iso(live.stopped)}")
    if live.crashed:
        fail(
            f"the daemon is not running: it stopped without a clean shutdown (nothing holds "
            f"{lock_file(config)}; last heartbeat {age:.0f}s ago)"
        )
    if not live.running:
        fail(f"heartbeat is {age:.0f}s old (limit {limit.total_seconds():.0f}s)")
    out.print(f"ok: heartbeat {age:.0f}s old")


@app.command()
def feeds(
    as_json: Annotated[bool, typer.Option("--json", help="One plain JSON array.")] = False,
) -> None:
    """A table of feeds: status, last fetch, next fetch, items, last error (or warning)."""
    from monitor.ops import daemon_liveness

    config = get_config()
    with open_store(config, create=True) as store:
        rows = {row["name"]: row for row in store.feed_overview()}
    found = [feed_json(config, feed.name, rows.get(feed.name, {})) for feed in config.feeds]
    if as_json:
        print_json(found)
        return
    now = SystemClock().now()
    running = daemon_liveness(config, now).running
    cells = [_feed_cells(feed, now, daemon_running=running) for feed in found]
    table = Table(title=plural(len(found), "feed"))
    for column in FEED_COLUMNS:
        table.add_column(column, overflow="fold", no_wrap=column != "last error / warning")
    for row in cells:
        table.add_row(*row)
    print_table_or(table, zip(found, cells, strict=True), lambda pair: _print_feed_compact(*pair))


FEED_COLUMNS = ("feed", "status", "last fetch", "next fetch", "items", "last error / warning")


def _feed_cells(feed: dict[str, Any], now: datetime, *, daemon_running: bool) -> list[str]:
    """One feed's cells (rich markup) in FEED_COLUMNS order, for the table and the compact layout."""
    return [
        escape(feed["name"]),
        _status_style(feed["status"]),
        _ago(feed["last_fetch"]),
        _next_fetch(feed, now, daemon_running=daemon_running),
        str(feed["items"]),
        escape(feed["error"] or (f"warning: {feed['warning']}" if feed["warning"] else "")),
    ]


def _print_feed_compact(feed: dict[str, Any], cells: list[str]) -> None:
    """A feed for a narrow terminal: its short fields on one line, then its error or warning."""
    name, status, last, following = cells[:4]
    fields = [name, status, f"last fetch {last}" if feed["last_fetch"] else "never fetched"]
    if following != "-":  # disabled and gone feeds are not fetched again
        fields.append(f"next fetch {following}")
    print_fields([*fields, plural(feed["items"], "item")])
    if feed["error"]:
        print_hanging("    error: ", escape(feed["error"]))
    elif feed["warning"]:
        print_hanging("    warning: ", escape(feed["warning"]))


def feed_json(config: Config, name: str, row: dict[str, Any]) -> dict[str, Any]:
    """One configured feed as `monitor feeds` shows it (`row`: its stored state, {} if none)."""
    feed = config.feed(name)
    assert feed is not None
    status = "disabled" if not feed.enabled else (row.get("status") or "new")
    polled = status not in ("disabled", "gone")  # the others are never fetched again as they are
    error = row.get("last_error") if status in ("error", "gone") else None
    warning = row.get("last_warning")  # read, but not cleanly
    return {
        "name": name,
        "url": config.mask(feed.url),
        "enabled": feed.enabled,
        "status": status,
        "last_fetch": row.get("last_fetch"),
        "last_success": row.get("last_success"),
        "next_fetch": row.get("next_fetch") if polled else None,
        "items": int(row.get("items") or 0),
        "error_count": int(row.get("error_count") or 0),
        "failing_since": row.get("failing_since"),
        "error": config.mask(error) if error else None,
        "warning": config.mask(warning) if warning else None,
    }


def _next_fetch(feed: dict[str, Any], now: datetime, *, daemon_running: bool) -> str:
    """When the feed is polled next. A past (or never set) time is not "5m ago": the feed is
    due, and a stopped daemon polls it when it starts."""
    if feed["status"] in ("disabled", "gone"):
        return "-"
    when = parse_iso(feed["next_fetch"])
    if when is None or (when - now).total_seconds() < 1:
        return "due" if daemon_running else "at next start"
    return _ago(feed["next_fetch"])


def _status_style(status: str) -> str:
    colour = {"ok": "green", "error": "red", "gone": "magenta", "disabled": "dim"}.get(status)
    return f"[{colour}]{status}[/{colour}]" if colour else status


def _ago(value: str | None) -> str:
    when = parse_iso(value)
    if when is None:
        return "-"
    seconds = (when - SystemClock().now()).total_seconds()
    span = abs(seconds)
    text = (
        f"{span:.0f}s"
        if span < 90
        else f"{span / 60:.0f}m"
        if span < 5400
        else f"{span / 3600:.1f}h"
        if span < 172800
        else f"{span / 86400:.0f}d"
    )
    return f"in {text}" if seconds > 0 else f"{text} ago"


@app.command()
def items(
    feed: Annotated[str | None, typer.Option(help="Only items this feed listed.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One plain JSON array.")] = False,
) -> None:
    """Recent items, newest first."""
    config = get_config()
    with open_store(config, create=True) as store:
        rows = store.recent_items(feed=feed, limit=limit)
    if feed is not None and not rows and config.feed(feed) is None:
        known = ", ".join(f.name for f in config.feeds) or "none configured"
        fail(f"no feed named {feed!r} (feeds: {known})", EXIT_CONFIG)
    if as_json:
        print_json([item_json(row) for row in rows])
        return
    table = Table(title=plural(len(rows), "recent item"))
    for column in ("id", "fetched", "feed", "title", "lang", "text", "topics"):
        table.add_column(column, overflow="fold", no_wrap=column not in ("title", "topics"))
    for row in rows:
        table.add_row(
            str(row["id"]),
            _ago(row["fetched"]),
            escape(row["feed"] or ""),
            escape(row["title"]),
            row["language"] or "",
            f"{row['text_source']} {len(row['text'])}c",
            escape(", ".join(row["topics"])),
        )
    print_table_or(table, rows, _print_item_compact)


def _print_item_compact(row: dict[str, Any]) -> None:
    """An item for a narrow terminal: its short fields on one line, then its title and topics."""
    fields = [f"#{row['id']}", escape(row["feed"] or ""), f"fetched {_ago(row['fetched'])}"]
    fields += [row["language"] or "", f"{row['text_source']} text {len(row['text'])}c"]
    print_fields([field for field in fields if field])
    topics = f"  [dim]({escape(', '.join(row['topics']))})[/dim]" if row["topics"] else ""
    print_hanging("    ", escape(row["title"]) + topics)


def item_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "title": row["title"],
        "feed": row["feed"],
        "feeds": row["feeds"],
        "published": row["published"],
        "fetched": row["fetched"],
        "language": row["language"],
        "text_source": row["text_source"],
        # Why the page's text was not used (fetch refused or failed, nothing extracted), or null.
        "extract_error": row.get("extract_error"),
        "text": row["text"],
        "author": row["author"],
        "site_name": row["site_name"],
        "guid": row["guid"],
        "topics": row["topics"],
    }


@app.command("import-opml")
def import_opml(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="An OPML export.", metavar="FILE")
    ],
) -> None:
    """Add the feeds of an OPML export to the config file (comments are kept)."""
    from monitor.opml import add_feeds_to_config, read_opml

    config = get_config()
    try:
        found = read_opml(file)
    except ValueError as exc:
        fail(str(exc))
    done = add_feeds_to_config(config.path, found.feeds)
    known = f"; {len(done.known)} already there" if done.known else ""
    out.print(
        f"{plural(len(found.feeds) + len(found.skipped), 'feed')} in {file}; added "
        f"{len(done.added)} to {config.path}{known}",
        markup=False,
    )
    for name in done.added:
        out.print(f"  + {name}", markup=False)
    for outline in done.known:
        out.print(f"  skipped (already configured): {outline}", markup=False)
    for outline in found.skipped:
        out.print(f"  skipped (not an http(s) feed URL): {outline}", markup=False)
    try:
        load_config(config.path)
    except ConfigError as exc:  # should not happen; say so rather than leave a silent bad file
        fail(f"the config no longer validates after the import:\n{exc}", EXIT_CONFIG)


@app.command("export-opml")
def export_opml(
    file: Annotated[
        Path | None,
        typer.Argument(
            dir_okay=False, help="Write here (default: standard output).", metavar="FILE"
        ),
    ] = None,
) -> None:
    """Write the configured feeds (disabled ones too) as an OPML subscription list."""
    from monitor.opml import OpmlFeed, write_opml

    config = get_config()
    document = write_opml(OpmlFeed(f.name, f.url) for f in config.feeds)
    if file is None or str(file) == "-":
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
        return
    try:
        file.write_bytes(document)
    except OSError as exc:
        fail(f"cannot write {file}: {exc}")
    err.print(f"wrote {plural(len(config.feeds), 'feed')} to {file}", markup=False)


def iso(value: Any) -> str | None:
    return utc_iso(value) if value is not None else None


# --------------------------------------------------------------------------- alerts

alerts_app = typer.Typer(
    help="The alert outbox: list alerts, retry failed ones, test a channel.",
    no_args_is_help=False,
)
app.add_typer(alerts_app, name="alerts")
ALERT_STATUSES = ("pending", "sending", "sent", "failed")


@alerts_app.callback(invoke_without_command=True)
def alerts(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help=f"Only alerts with this status: {', '.join(ALERT_STATUSES)}."),
    ] = None,
    channel: Annotated[str | None, typer.Option(help="Only alerts to this channel.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many (newest first).")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One plain JSON array.")] = False,
) -> None:
    """List alerts, newest first (`monitor alerts retry` and `monitor alerts test` below)."""
    if ctx.invoked_subcommand is not None:
        return
    if status is not None and status not in ALERT_STATUSES:
        raise typer.BadParameter(f"use one of {', '.join(ALERT_STATUSES)}", param_hint="--status")
    from monitor.alert import outbox

    config = get_config()
    now = SystemClock().now()
    with open_store(config, create=True) as store:
        rows = outbox.list_rows(store.conn, status=status, channel=channel, limit=limit)
        totals = outbox.counts(store.conn)
        if channel is not None and not rows and channel not in config.channels:
            check_channel(store.conn, config, channel)
        digest_at = _digest_times(store.conn, config, rows, now)
    if as_json:
        print_json([{**row.as_json(), "last_error": config.mask(row.last_error or "") or None}
                    for row in rows])  # fmt: skip
        return
    summary = alert_totals(totals)
    if not rows:
        out.print(f"no alerts to show (outbox: {summary})")
        return
    heading = f"{plural(len(rows), 'alert')} shown (outbox: {summary})"
    cells = [_alert_cells(config, row, digest_at, now) for row in rows]
    table = Table(title=heading)
    for column in cells[0]:
        table.add_column(column, overflow="fold", no_wrap=column not in ALERT_TEXT_COLUMNS)
    for found in cells:
        table.add_row(*found.values())
    print_table_or(table, zip(rows, cells, strict=True), lambda pair: _print_alert_compact(*pair))


ALERT_TEXT_COLUMNS = ("topics", "title", "last error")  # wrap; the other columns never do


def alert_totals(counts: dict[str, int]) -> str:
    """The outbox in words (`outbox.counts`): messages by status; a digest channel's alerts
    apart, since one digest message carries many of them."""
    parts = [f"{counts['pending']} pending"]
    if counts.get("sending"):
        parts.append(f"{counts['sending']} sending")
    if counts.get("waiting_for_digest"):
        parts.append(f"{counts['waiting_for_digest']} waiting for digest")
    parts.append(f"{counts['failed']} failed")
    if in_digests := counts.get("delivered_in_digests", 0):
        parts.append(
            f"{plural(counts['sent'], 'message')} sent, "
            f"{plural(in_digests, 'alert')} delivered in digests"
        )
    else:
        parts.append(f"{counts['sent']} sent")
    return ", ".join(parts)


def _waits_for_digest(row: OutboxRow) -> bool:
    """A digest channel's alert not yet collected into a digest message."""
    return row.mode == "digest" and row.digest_id is None and row.status in ("pending", "sending")


def _digest_times(
    conn: sqlite3.Connection, config: Config, rows: Sequence[OutboxRow], now: datetime
) -> dict[str, datetime]:
    """When each digest channel that has alerts waiting among `rows` sends its next digest."""
    from monitor.alert.digest import next_digest

    found: dict[str, datetime] = {}
    for name in sorted({row.channel for row in rows if _waits_for_digest(row)}):
        channel = config.channels.get(name)
        when = next_digest(conn, name, channel, now) if channel is not None else None
        if when is not None:
            found[name] = when
    return found


def _alert_cells(
    config: Config, row: OutboxRow, digest_at: dict[str, datetime], now: datetime
) -> dict[str, str]:
    """One alert's cells (rich markup) by column, for the table and the compact layout alike."""
    return {
        "id": str(row.id),
        "created": _ago(utc_iso(row.created_at)),
        "channel": escape(row.channel),
        "kind": row.kind if row.mode == "immediate" else f"{row.kind} (digest)",
        "status": _alert_status_style(row.status),
        "tries": str(row.total_attempts),
        "next / sent": _alert_when(config, row, digest_at, now),
        "topics": escape(", ".join(row.topics)),
        "title": escape(row.as_json()["title"] or ""),
        "last error": escape(config.mask(row.last_error or "")),
    }


def _alert_when(
    config: Config, row: OutboxRow, digest_at: dict[str, datetime], now: datetime
) -> str:
    """When it was sent, or goes next. A digest channel's alert goes with its digest: its own
    next attempt time (long past) would read as overdue."""
    if row.status == "failed":
        return "-"
    if row.status == "sent":
        return _ago(utc_iso(row.sent_at))
    if row.mode == "digest":
        if row.digest_id is not None:
            return f"in digest #{row.digest_id}"
        when, channel = digest_at.get(row.channel), config.channels.get(row.channel)
        if when is None or channel is None:
            return "waits for digest"
        return f"waits for digest {_digest_time(when, channel.timezone, now)}"
    return "due" if row.next_attempt_at <= now else _ago(utc_iso(row.next_attempt_at))


def _digest_time(when: datetime, zone: str, now: datetime) -> str:
    """`at 20:55 CET` in the channel's time zone (`tomorrow at`, `on Tue at`, `on 2026-03-09
    at` another day); `due now` when the time has come (the next dispatch sends it)."""
    if when <= now:
        return "due now"
    local, today = when.astimezone(ZoneInfo(zone)), now.astimezone(ZoneInfo(zone)).date()
    days = (local.date() - today).days
    if days == 0:
        day = ""
    elif days == 1:
        day = "tomorrow "
    else:
        day = f"on {local:%a} " if days < 7 else f"on {local:%Y-%m-%d} "
    return f"{day}at {local:%H:%M} {local.tzname() or zone}"


def _print_alert_compact(row: OutboxRow, cells: dict[str, str]) -> None:
    """An alert for a narrow terminal: its short fields on one line, then its title and topics,
    then its error, each wrapped as text."""
    fields = [f"#{row.id}", cells["status"], cells["channel"], cells["kind"]]
    fields += [plural(row.total_attempts, "try", "tries"), f"created {cells['created']}"]
    when = cells["next / sent"]
    if row.status == "sent":
        fields.append(f"sent {when}")
    elif row.status != "failed":  # a digest's alert says itself what it waits for
        fields.append(when if row.mode == "digest" else f"next {when}")
    print_fields(fields)
    topics = f"[dim]({cells['topics']})[/dim]" if cells["topics"] else ""
    if about := "  ".join(part for part in (cells["title"], topics) if part):
        print_hanging("    ", about)
    if cells["last error"]:
        print_hanging("    error: ", cells["last error"])


def check_channel(conn: sqlite3.Connection, config: Config, channel: str) -> None:
    """A misspelt --channel is an error, not "no alerts"; a channel removed from the config
    whose alerts are still stored stays listable."""
    from monitor.alert import outbox

    stored = outbox.stored_channels(conn)
    if channel in stored:
        return
    known = ", ".join(config.channels) or "none configured"
    gone = [name for name in stored if name not in config.channels]
    extra = f"; no longer configured but in the outbox: {', '.join(gone)}" if gone else ""
    fail(f"no channel named {channel!r} (channels: {known}{extra})", EXIT_CONFIG)


def _alert_status_style(status: str) -> str:
    colour = {"sent": "green", "failed": "red", "sending": "yellow"}.get(status)
    return f"[{colour}]{status}[/{colour}]" if colour else status


@alerts_app.command("retry")
def alerts_retry(
    ids: Annotated[
        list[int] | None,
        typer.Argument(help="Alert ids (default: every failed alert).", metavar="ID..."),
    ] = None,
) -> None:
    """Put failed alerts back in the queue; the daemon or the next `monitor once` sends them."""
    from monitor.alert import outbox

    config = get_config()
    with open_store(config, create=True) as store:
        found = outbox.statuses(store.conn, ids) if ids else {}
        count = outbox.retry_failed(store.conn, SystemClock().now(), ids or None)
    out.print(f"{plural(count, 'failed alert')} queued again")
    for alert_id in ids or ():
        status = found.get(alert_id)
        if status is None:
            err.print(f"alert {alert_id}: no such alert")
        elif status != "failed":
            err.print(f"alert {alert_id}: {status}, not failed: nothing to retry")
    if ids and any(found.get(i) is None for i in ids):
        raise typer.Exit(EXIT_FATAL)


@alerts_app.command("test")
def alerts_test(
    channel: Annotated[
        str, typer.Argument(help="A channel name from the config.", metavar="CHANNEL")
    ],
) -> None:
    """Send a sample alert to CHANNEL and report what it answered (exit 1 when it failed)."""
    from monitor.alert.dispatch import Dispatcher

    config = get_config()
    setup_logging(config)
    if channel not in config.channels:
        known = ", ".join(config.channels) or "none configured"
        fail(f"no channel named {channel!r} (channels: {known})", EXIT_CONFIG)

    async def send() -> Any:
        dispatcher = Dispatcher(config, config.database)
        try:
            return await dispatcher.send_test(channel)
        finally:
            await dispatcher.aclose()

    try:
        result = asyncio.run(send())
    except StoreError as exc:
        fail(str(exc))
    url = config.mask(config.channels[channel].url)
    if not result.ok:
        fail(f"{channel} ({url}) did not take the test alert: {result.detail}")
    out.print(f"sent a test alert to {channel} ({url}): {result.detail}", markup=False)


import monitor.cli_developments  # noqa: E402  (registers the developments command)
import monitor.cli_ops  # noqa: E402  (registers status and vacuum)
import monitor.cli_topics  # noqa: E402,F401  (registers the topic commands)
