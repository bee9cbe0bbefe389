"""Operating the service: `monitor status`, the daemon's state file, retention and `monitor vacuum`.

- The daemon writes `daemon.json` (pid, start time, version, HTTP address) next to its heartbeat file
  when it starts; `monitor status` reads it with the heartbeat to say whether it runs and for how long.
- `monitor backup DEST` copies the database with SQLite's online backup API: a consistent snapshot
  even while the daemon writes (a plain file copy of a WAL database can miss or tear the last
  transactions), written beside DEST and renamed into place, so DEST is never half a database.
- Retention (`retention.drop_text_after`) empties the text and summary of items first seen before the
  cutoff and removes them from the search index; title, link, dates, feeds, matches, developments and
  alerts stay. The daemon runs it once a day from where the last run stopped (a watermark in `kv`);
  `monitor vacuum` runs it over everything, then compacts the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from time import sleep
from typing import Any, Protocol

from monitor import __version__
from monitor.clock import Clock, parse_iso, utc_iso
from monitor.config import Config, Locations
from monitor.match import archive

log = logging.getLogger(__name__)

HEARTBEAT_FRESH = timedelta(seconds=90)  # the daemon writes one every 15 s
RETENTION_WATERMARK = "retention.text_dropped_before"
RETENTION_BATCH = 500
LOCK_PROBE_PAUSES = (0.01, 0.1)  # seconds between tries for the daemon lock (see _lock_exclusive)


# --------------------------------------------------------------------------- one daemon per database


class DaemonLockError(Exception):
    """The daemon cannot take the database's lock (its folder is read-only, say)."""


class DaemonRunning(DaemonLockError):
    """Another daemon holds the database's lock."""


class DaemonFiles(Protocol):
    """Where a daemon's files are: a `Config`, or the `Locations` read from a config file that
    does not validate (the daemon runs on; `healthcheck` and `status` still judge it)."""

    @property
    def database(self) -> Path: ...

    @property
    def heartbeat(self) -> Path: ...


def lock_file(config: DaemonFiles) -> Path:
    return config.database.with_name(config.database.name + ".daemon.lock")


def lock_holder(config: DaemonFiles) -> int | None:
    """The pid the daemon wrote into its lock file (None: none, or not a pid)."""
    try:
        text = lock_file(config).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def daemon_lock(config: Config) -> Iterator[None]:
    """Hold the database's daemon lock while the block runs: a second daemon on the same
    database would poll every feed twice and race the first for its alerts. The operating
    system releases the lock when the process ends, however it ends, so a crash leaves none."""
    path = lock_file(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DaemonLockError(f"cannot create the daemon lock {path}: {exc.strerror}") from None
    try:
        try:
            _lock_exclusive(fd)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise DaemonRunning(
                f"another daemon is running on {config.database}{pid}: stop it first"
            ) from None
        except OSError as exc:  # a file system without locks (some network mounts): run unguarded
            log.warning("cannot lock %s (%s): a second daemon would not be refused", path, exc)
        else:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race a new holder)


def _lock_exclusive(fd: int) -> None:
    """Take the lock without waiting for a daemon; BlockingIOError while another holds it. A
    `monitor status` or `healthcheck` probing the lock holds it for microseconds: a start that
    meets such a probe tries again shortly rather than report a daemon that is not there."""
    for pause in (*LOCK_PROBE_PAUSES, None):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if pause is None:
                raise
            _pause(pause)


def _pause(seconds: float) -> None:
    sleep(seconds)


def daemon_lock_free(config: DaemonFiles) -> bool | None:
    """True when no process holds the database's daemon lock, so no daemon runs on it whatever
    its heartbeat says (after a `kill -9`, say); False while one holds it; None when it cannot
    tell. A non-blocking try for a shared lock, dropped at once: it never waits, and it cannot
    take a running daemon's exclusive lock from it."""
    try:
        # Read-only and never created: a missing file may be a daemon that predates the lock
        # (or a deleted file), so it proves nothing either way.
        fd = os.open(lock_file(config), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks: the daemon runs unguarded there too
        return None
    finally:
        os.close(fd)  # releases the probe's lock with the descriptor
    return True


# --------------------------------------------------------------------------- daemon state file


def state_file(config: DaemonFiles) -> Path:
    return config.heartbeat.with_name("daemon.json")


def write_daemon_state(config: Config, started: datetime, http: str | None) -> None:
    data = {"pid": os.getpid(), "started": utc_iso(started), "version": __version__, "http": http}
    _write_state_file(config, data)


def mark_daemon_stopped(config: Config, started: datetime, when: datetime) -> None:
    """Record a clean stop, so ``monitor status`` says "stopped" at once rather than "running"
    until the last heartbeat grows stale. Only our own record is marked: another daemon sharing
    the heartbeat file (another database) may have written it since."""
    state = read_daemon_state(config)
    if state.get("pid") == os.getpid() and state.get("started") == utc_iso(started):
        _write_state_file(config, {**state, "stopped": utc_iso(when)})


def daemon_stopped(state: dict[str, Any], last_beat: datetime | None) -> datetime | None:
    """When the daemon that wrote ``state`` stopped cleanly; None while it runs (or crashed).
    A heartbeat written after the stop mark wins: a daemon is beating that did not (or could
    not) rewrite the record."""
    try:
        stopped = parse_iso(state.get("stopped"))
    except (TypeError, ValueError):  # a hand-edited file: judge by the heartbeat alone
        return None
    if stopped is None or (last_beat is not None and last_beat > stopped):
        return None
    return stopped


def _write_state_file(config: Config, data: dict[str, Any]) -> None:
    path = state_file(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)


def read_daemon_state(config: DaemonFiles) -> dict[str, Any]:
    try:
        data = json.loads(state_file(config).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- status


def database_size(path: Path) -> int:
    """Bytes on disk: the database plus its write-ahead log."""
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += Path(f"{path}{suffix}").stat().st_size
    return total


@dataclass(frozen=True)
class FailingFeed:
    name: str
    since: str | None
    error: str


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    started: str | None
    uptime_seconds: float | None
    heartbeat_age_seconds: float | None
    http: str | None
    # ok, failing, gone, new, disabled; None: the config does not validate, so which feeds are
    # configured is not known
    feeds: dict[str, int] | None
    failing: list[FailingFeed]
    items_total: int
    items_today: int
    alerts: dict[str, int]  # pending, sending, sent, failed
    database: str
    database_bytes: int
    version: str = __version__
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def feed_statuses(
    config: Config, rows: list[sqlite3.Row] | list[dict[str, Any]]
) -> tuple[dict[str, int], list[FailingFeed]]:
    """Configured feeds by status (ok / failing / gone / new / disabled), and the failing ones."""
    by_name = {str(row["name"]): row for row in rows}
    counts: Counter[str] = Counter({"ok": 0, "failing": 0, "gone": 0, "new": 0, "disabled": 0})
    failing: list[FailingFeed] = []
    for feed in config.feeds:
        row = by_name.get(feed.name)
        status = "disabled" if not feed.enabled else str(row["status"]) if row else "new"
        if status == "error":
            status = "failing"
            assert row is not None
            error = config.mask(str(row["last_error"] or ""))
            failing.append(FailingFeed(feed.name, row["failing_since"], error))
        counts[status if status in counts else "new"] += 1
    return dict(counts), failing


@dataclass(frozen=True)
class Liveness:
    """What the heartbeat, the state file and the daemon lock say of the daemon at one moment."""

    age: timedelta | None  # of the last heartbeat; None: there is none
    stopped: datetime | None  # when it stopped cleanly
    unlocked: bool  # nobody holds the daemon lock: its process is gone (`kill -9`, a crash)
    fresh: timedelta = HEARTBEAT_FRESH

    @property
    def running(self) -> bool:
        beating = self.age is not None and self.age <= self.fresh
        return beating and self.stopped is None and not self.unlocked

    @property
    def crashed(self) -> bool:
        """It stopped without recording a clean stop."""
        return self.age is not None and self.stopped is None and self.unlocked


def daemon_liveness(
    config: DaemonFiles,
    now: datetime,
    state: dict[str, Any] | None = None,
    fresh: timedelta = HEARTBEAT_FRESH,
) -> Liveness:
    from monitor.daemon import last_heartbeat

    beat = last_heartbeat(config.heartbeat)
    stopped = daemon_stopped(read_daemon_state(config) if state is None else state, beat)
    return Liveness(
        age=now - beat if beat is not None else None,
        stopped=stopped,
        unlocked=daemon_lock_free(config) is True,
        fresh=fresh,
    )


def gather_status(config: Config | Locations, conn: sqlite3.Connection, clock: Clock) -> Status:
    """What `monitor status` shows; from a config that does not validate (`Locations`), all but
    the feeds (the database keeps feeds since removed from the config: counting them would lie)."""
    from monitor.alert import outbox

    now = clock.now()
    state = read_daemon_state(config)
    live = daemon_liveness(config, now, state)
    age, stopped, running = live.age, live.stopped, live.running
    started = parse_iso(state.get("started")) if running else None
    feeds: dict[str, int] | None = None
    failing: list[FailingFeed] = []
    if isinstance(config, Config):
        rows = conn.execute("SELECT name, status, last_error, failing_since FROM feeds").fetchall()
        feeds, failing = feed_statuses(config, rows)
    midnight = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    today = conn.execute(
        "SELECT count(*) FROM items WHERE fetched >= ?", (utc_iso(midnight),)
    ).fetchone()[0]
    total = conn.execute("SELECT count(*) FROM items").fetchone()[0]
    notes = []
    if age is None:
        notes.append(f"no heartbeat at {config.heartbeat}: the daemon has not run here")
    elif stopped is not None:
        notes.append(f"the daemon stopped {_span(now - stopped)} ago")
    elif live.crashed:
        notes.append(
            "the daemon is not running (it stopped without a clean shutdown; "
            f"last heartbeat {_span(age)} ago)"
        )
    elif not running:
        notes.append(f"the daemon is not running (last heartbeat {_span(age)} ago)")
    return Status(
        running=running,
        pid=state.get("pid") if running else None,
        started=utc_iso(started) if started else None,
        uptime_seconds=(now - started).total_seconds() if started else None,
        heartbeat_age_seconds=age.total_seconds() if age is not None else None,
        http=state.get("http") if running else None,
        feeds=feeds,
        failing=failing,
        items_total=int(total),
        items_today=int(today),
        alerts=outbox.counts(conn),
        database=str(config.database),
        database_bytes=database_size(config.database),
        notes=notes,
    )


def _span(value: timedelta) -> str:
    seconds = value.total_seconds()
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def human_span(seconds: float) -> str:
    return _span(timedelta(seconds=seconds))


# --------------------------------------------------------------------------- retention


def drop_text_batch(
    conn: sqlite3.Connection, cutoff: datetime, since: datetime | None = None
) -> int:
    """Empty the text of up to RETENTION_BATCH items first seen in [since, cutoff); one transaction.

    Returns how many items it emptied (0: nothing left to do)."""
    low = utc_iso(since) if since else ""
    rows = conn.execute(
        """SELECT id FROM items WHERE fetched >= ? AND fetched < ? AND (text != '' OR summary != '')
           ORDER BY fetched LIMIT ?""",
        (low, utc_iso(cutoff), RETENTION_BATCH),
    ).fetchall()
    if not rows:
        return 0
    ids = [int(row[0]) for row in rows]
    marks = ",".join("?" * len(ids))
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Out of the history index first: the index entry is recomputed from the text.
        archive.delete_items(conn, ids)
        conn.execute(f"UPDATE items SET text = '', summary = '' WHERE id IN ({marks})", ids)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(ids)


def retention_cutoff(config: Config, now: datetime) -> datetime | None:
    keep = config.model.retention.drop_text_after
    return now - keep if keep is not None else None


def read_watermark(conn: sqlite3.Connection) -> datetime | None:
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (RETENTION_WATERMARK,)).fetchone()
    return parse_iso(row[0]) if row else None


def write_watermark(conn: sqlite3.Connection, cutoff: datetime) -> None:
    conn.execute(
        "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (RETENTION_WATERMARK, utc_iso(cutoff)),
    )


def apply_retention(conn: sqlite3.Connection, config: Config, now: datetime, *, full: bool) -> int:
    """Drop the text of every item older than the retention limit; returns how many items.

    `full=False` starts from the last run's cutoff (the daemon's daily job); `full=True` looks at every
    old item (`monitor vacuum`)."""
    cutoff = retention_cutoff(config, now)
    if cutoff is None:
        return 0
    since = None if full else read_watermark(conn)
    total = 0
    while count := drop_text_batch(conn, cutoff, since):
        total += count
    write_watermark(conn, cutoff)
    return total


@dataclass(frozen=True)
class VacuumReport:
    dropped: int
    retention: str | None  # "90d", or None when no limit is configured
    size_before: int
    size_after: int


def vacuum(conn: sqlite3.Connection, config: Config, database: Path, now: datetime) -> VacuumReport:
    """Apply retention over every item, then compact the search index and the database file."""
    from monitor.reload import format_duration

    before = database_size(database)
    dropped = apply_retention(conn, config, now, full=True)
    table = archive.FTS_TABLE
    conn.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
    conn.execute("VACUUM")
    conn.execute("PRAGMA optimize")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    keep = config.model.retention.drop_text_after
    return VacuumReport(
        dropped, format_duration(keep) if keep else None, before, database_size(database)
    )


@dataclass(frozen=True)
class BackupReport:
    destination: Path
    size: int
    items: int


class BackupError(Exception):
    """The backup could not be made (the message says why); nothing was left at the destination."""


def backup(conn: sqlite3.Connection, destination: Path, *, overwrite: bool = False) -> BackupReport:
    """Copy the open database ``conn`` to ``destination`` as one consistent snapshot."""
    if destination.is_dir():
        raise BackupError(f"{destination} is a folder: name the backup file")
    live = _database_file(conn)
    if live is not None:
        own = {live, Path(f"{live}-wal"), Path(f"{live}-shm"), Path(f"{live}-journal")}
        if destination.resolve() in own:
            raise BackupError(
                f"{destination} is the database itself (or its journal): not a backup"
            )
    if destination.exists() and not overwrite:
        raise BackupError(f"{destination} exists (use --force to replace it)")
    if not destination.parent.is_dir():
        raise BackupError(f"{destination.parent} is not a folder")
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        target = sqlite3.connect(partial)
        try:
            # One step (pages=-1): the copy is read in a single read transaction, so writes the
            # daemon commits meanwhile are either wholly in it or not at all.
            conn.backup(target, pages=-1)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
            items = int(target.execute("SELECT count(*) FROM items").fetchone()[0])
        finally:
            target.close()
        os.replace(partial, destination)
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise BackupError(f"cannot back up to {destination}: {exc}") from exc
    return BackupReport(destination, destination.stat().st_size, items)


def _database_file(conn: sqlite3.Connection) -> Path | None:
    row = conn.execute("PRAGMA database_list").fetchone()
    return Path(row[2]).resolve() if row and row[2] else None
