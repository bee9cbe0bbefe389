"""Operating commands: `monitor run` (its body), `monitor status`, `monitor backup`,
`monitor vacuum`."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from monitor.cli import (
    EXIT_CONFIG,
    EXIT_FATAL,
    alert_totals,
    app,
    err,
    fail,
    get_config,
    load_or_locate,
    open_store,
    out,
    plural,
    print_config_error,
    print_fields,
    print_hanging,
    print_json,
    setup_logging,
    table_fits,
)
from monitor.clock import SystemClock, parse_iso
from monitor.config import Config, Locations, parse_address
from monitor.ops import (
    BackupError,
    DaemonLockError,
    Status,
    backup,
    gather_status,
    human_size,
    human_span,
    vacuum,
)
from monitor.store import Store, StoreError


def run_daemon(http: str | None, time_scale: float, time_epoch: str | None) -> None:
    """`monitor run`: the daemon, watching its config file; `--http` wins over `http:`."""
    from monitor.daemon import Daemon
    from monitor.reload import WatchSettings
    from monitor.timescale import TimeScale

    config = get_config(deep=True)
    setup_logging(config)
    address = http if http is not None else config.model.http
    if address:
        try:
            parse_address(address)
        except ValueError as exc:
            where = "--http" if http is not None else f"{config.path}: http"
            fail(f"{where}: {exc}", EXIT_CONFIG)
    try:
        epoch = parse_iso(time_epoch)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--time-epoch") from None
    scale = TimeScale.fast(time_scale, epoch) if time_scale != 1 or epoch else None
    daemon = Daemon(config, time_scale=scale, http=address, watch=WatchSettings())
    try:
        asyncio.run(daemon.serve())
    except (StoreError, DaemonLockError) as exc:
        fail(str(exc))
    except OSError as exc:  # the HTTP port is taken, or the address is not ours
        fail(f"cannot serve HTTP on {address}: {exc}")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="One plain JSON object.")] = False,
) -> None:
    """Is the daemon running, since when; feeds ok / failing; items today; alerts; database size.

    With a config that does not validate: its problems, then the rest from the daemon's files
    (a rejected edit leaves the daemon running), and exit 2 so that scripts notice."""
    config, broken = load_or_locate()
    if broken is not None:
        err.print(f"[red]error:[/red] {escape(str(config.path))} does not validate:")
        print_config_error(broken)
    found = _status_of(config)
    if as_json:
        problems = [str(p) for p in broken.problems] if broken else []
        print_json({**found.as_json(), "config_problems": problems})
    else:
        print_status(found)
    if broken is not None:
        raise typer.Exit(EXIT_CONFIG)


def _status_of(config: Config | Locations) -> Status:
    # A config that failed may name a database by mistake (or not at all): open, never create.
    create = isinstance(config, Config)
    try:
        store = Store.open(config.database, create=create)
    except StoreError as exc:
        fail(str(exc), EXIT_FATAL if create else EXIT_CONFIG)
    try:
        return gather_status(config, store.conn, SystemClock())
    finally:
        store.close()


def print_status(found: Status) -> None:
    if found.running:
        uptime = human_span(found.uptime_seconds) if found.uptime_seconds is not None else "?"
        out.print(f"daemon: [green]running[/green] (pid {found.pid}, up {uptime})")
        if found.http:
            out.print(f"  http: http://{found.http}/healthz, /metrics", markup=False)
    else:
        out.print("daemon: [red]not running[/red]")
    for note in found.notes:
        out.print(f"  {note}", markup=False)
    feeds = found.feeds
    if feeds is None:
        out.print("feeds: not known while the config does not validate")
    else:
        out.print(
            f"feeds: {feeds['ok']} ok, {feeds['failing']} failing, {feeds['gone']} gone, "
            f"{feeds['new']} not yet polled, {feeds['disabled']} disabled"
        )
    if found.failing:
        print_failing(found)
    out.print(f"items: {found.items_today} today, {found.items_total} in all")
    out.print(f"alerts: {alert_totals(found.alerts)}")
    out.print(f"database: {found.database} ({human_size(found.database_bytes)})", markup=False)


def print_failing(found: Status) -> None:
    """The failing feeds: a table, or where it does not fit, a feed a line and its error below."""
    table = Table(show_header=True, box=None, pad_edge=False)
    for column in ("failing feed", "since", "last error"):
        table.add_column(column, overflow="fold", no_wrap=column != "last error")
    for feed in found.failing:
        table.add_row(escape(feed.name), feed.since or "-", escape(feed.error))
    if table_fits(table):
        out.print(table)
        return
    for feed in found.failing:
        print_fields([f"failing feed {escape(feed.name)}", f"since {feed.since or '-'}"])
        print_hanging("    last error: ", escape(feed.error))


@app.command("backup")
def backup_command(
    destination: Annotated[
        Path, typer.Argument(help="The backup file to write.", dir_okay=False, metavar="FILE")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Replace DESTINATION if it exists.")
    ] = False,
) -> None:
    """Copy the database to DESTINATION as one consistent snapshot (safe while the daemon runs)."""
    config = get_config()
    with open_store(config, create=False) as store:
        try:
            report = backup(store.conn, destination.expanduser(), overwrite=force)
        except BackupError as exc:
            fail(str(exc))
    out.print(
        f"backed up {config.database} to {report.destination}: {plural(report.items, 'item')}, "
        f"{human_size(report.size)}",
        markup=False,
    )


@app.command("vacuum")
def vacuum_command(
    as_json: Annotated[bool, typer.Option("--json", help="One plain JSON object.")] = False,
) -> None:
    """Apply the retention limit to every item, then compact the database (safe while it runs)."""
    config = get_config()
    with open_store(config, create=False) as store:
        try:
            report = vacuum(store.conn, config, config.database, SystemClock().now())
        except sqlite3.OperationalError as exc:
            fail(f"cannot vacuum {config.database} now: {exc} (try again later)")
    if as_json:
        print_json(
            {
                "dropped_text": report.dropped,
                "retention": report.retention,
                "size_before": report.size_before,
                "size_after": report.size_after,
            }
        )
        return
    if report.retention is None:
        out.print("retention: no limit set (retention.drop_text_after); all text kept")
    else:
        out.print(
            f"retention: dropped the text of {plural(report.dropped, 'item')} older than "
            f"{report.retention}"
        )
    out.print(
        f"database: {human_size(report.size_before)} → {human_size(report.size_after)}",
        markup=False,
    )
