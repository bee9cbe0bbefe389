"""Plumbing shared by the benchmarks: a newsroom in its own process, CPU accounting, configs.

The newsroom (tests/newsroom.py) is a threaded Python HTTP server; it runs in a spawned child
process so that its CPU is never counted as ours. The parent drives it over a pipe with small
commands (`RoomProcess.call`), each answered once done.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.config import Config, load_config  # noqa: E402

DATA_DIR = ROOT.parent / "shared" / "data"

# ---------------------------------------------------------------------------- CPU and wall time


@dataclass(frozen=True)
class Usage:
    """Wall and CPU seconds of a measured span. `children`: reaped worker processes only."""

    wall: float
    cpu_self: float
    cpu_children: float

    @property
    def cpu(self) -> float:
        return self.cpu_self + self.cpu_children


def _cpu() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # children that ended and were reaped
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


class Meter:
    """`with meter.span() as got: ...` then `got[0]` is the Usage of the block."""

    @contextmanager
    def span(self) -> Iterator[list[Usage]]:
        out: list[Usage] = []
        wall0, (self0, kids0) = time.perf_counter(), _cpu()
        try:
            yield out
        finally:
            self1, kids1 = _cpu()
            out.append(Usage(time.perf_counter() - wall0, self1 - self0, kids1 - kids0))


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each live thread of this process, by Python thread name (Linux; else {}).

    Names are shortened to their kind ("asyncio_3" -> "asyncio", "monitor-writer_0" ->
    "monitor-writer"), so threads of one pool are summed."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = thread.name.rstrip("0123456789").rstrip("_-") or thread.name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


# ---------------------------------------------------------------------------- the newsroom process

Command = Callable[..., Any]


class RoomProcess:
    """A `Newsroom(hosts=...)` in a spawned process; `call(name, *args)` runs a room command."""

    def __init__(self, hosts: int = 10) -> None:
        self._conn, child = mp.Pipe()
        self._process = mp.get_context("spawn").Process(
            target=_room_main, args=(child, hosts), daemon=True
        )
        self._process.start()
        self.base_urls: list[str] = self._conn.recv()

    def call(self, command: str, *args: Any) -> Any:
        self._conn.send((command, args))
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"newsroom command {command} failed: {value}")
        return value

    def close(self) -> None:
        with suppress(OSError):
            self._conn.send(("stop", ()))
        self._process.join(15)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)

    def __enter__(self) -> RoomProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _room_main(conn: Connection, hosts: int) -> None:
    from tests.newsroom import Newsroom

    # log_limit=0: the request log would grow by a million entries in the long runs.
    with Newsroom(hosts=hosts, log_limit=0, idle_timeout=600) as room:
        conn.send(room.base_urls)
        while True:
            command, args = conn.recv()
            if command == "stop":
                return
            try:
                conn.send((True, _command(command)(room, *args)))
            except Exception as exc:  # report, keep serving
                conn.send((False, repr(exc)))


def polling_feeds(room: Any, feeds: int, entries: int) -> list[str]:
    """`feeds` RSS feeds of `entries` entries each, feed i on host i mod hosts; their URLs."""
    from tests.newsroom import Entry

    hosts = len(room.base_urls)
    now = datetime(2025, 5, 1, 12, tzinfo=UTC)
    urls = []
    for n in range(feeds):
        host = n % hosts
        items = [_entry(Entry, room.url(f"/f{n}/a{i}", host), n, i, now) for i in range(entries)]
        path = f"/feeds/{n}.xml"
        room.add_feed(path, items, title=f"Site {n}")
        urls.append(room.url(path, host))
    return urls


def _entry(entry_type: Any, link: str, feed: int, i: int, now: datetime) -> Any:
    return entry_type(
        title=f"Report {i} from site {feed}: officials discuss the budget and the harbour",
        link=link,
        guid=link,
        published=now - timedelta(minutes=30 * i),
        summary=(
            f"Item {i} of site {feed}. The city council met on Tuesday to discuss the harbour "
            "project, the budget for next year and the new tram line; a vote is expected soon."
        ),
    )


def set_conditional(room: Any, urls: Sequence[str], honour: bool) -> int:
    for url in urls:
        room.set_conditional(url, honour)
    return len(urls)


def change_feeds(room: Any, urls: Sequence[str], new_entries: int, stamp: str) -> int:
    """Prepend `new_entries` new entries to each feed (the oldest fall off): a real update."""
    from tests.newsroom import Entry

    now = datetime(2025, 5, 2, 12, tzinfo=UTC)
    for url in urls:
        path = url.split("/", 3)[3]
        n = int(path.rsplit("/", 1)[1].split(".")[0])
        base = url.split("/feeds/")[0]
        items = [
            _entry(Entry, f"{base}/f{n}/{stamp}{i}", n, 1000 + i, now) for i in range(new_entries)
        ]
        keep = len(room.entries("/" + path))
        room.update_feed("/" + path, prepend=items, keep=keep)
    return len(urls)


def connections(room: Any) -> int:
    """How many connections the newsroom has accepted so far."""
    return int(room.connections_accepted)


COMMANDS: dict[str, Command] = {
    "connections": connections,
    "polling_feeds": polling_feeds,
    "set_conditional": set_conditional,
    "change_feeds": change_feeds,
}


def _command(name: str) -> Command:
    """A command of this module, or "package.module:function" of another benchmark."""
    if ":" not in name:
        return COMMANDS[name]
    module, function = name.split(":", 1)
    found: Command = getattr(importlib.import_module(module), function)
    return found


# ---------------------------------------------------------------------------- configs


def write_config(
    folder: Path,
    feeds: Sequence[tuple[str, str]],
    *,
    feed_extra: Sequence[str] = (),
    top: Sequence[str] = (),
) -> Config:
    """A monitor.yaml in `folder` with `feeds` (name, url); `top`: extra top-level lines."""
    lines = ["database: monitor.db", "defaults: {timeout: 60s}", *top, "feeds:"]
    for name, url in feeds:
        lines += [f"  - name: '{name}'", f"    url: '{url}'", *(f"    {x}" for x in feed_extra)]
    path = folder / "monitor.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_config(path)


# ---------------------------------------------------------------------------- profiles


@contextmanager
def profiled(
    out: Path | None, title: str, rate: int = 400, *, gil: bool = False, children: bool = False
) -> Iterator[None]:
    """Sample this process (every thread) with py-spy while the block runs; write a text report.

    py-spy leaves idle threads out, so the samples approximate CPU time; with `gil` only the
    thread holding the GIL is sampled (Python's own CPU, not threads waiting for their turn).
    With `children`, the child processes started during the block (the extraction workers;
    not the resource tracker) are sampled too and summarised after this process.
    Nothing when `out` is None.
    """
    if out is None:
        yield
        return
    import signal

    raw = out.with_suffix(".raw")
    spies = [_spy(os.getpid(), raw, rate, gil)]
    before = set(_children())
    stop = threading.Event()
    kids: dict[int, tuple[Any, Path]] = {}

    def watch() -> None:
        while not stop.wait(0.5):
            for pid in _children():
                if pid not in before and pid not in kids and _is_worker(pid):
                    path = out.with_suffix(f".{pid}.raw")
                    kids[pid] = (_spy(pid, path, rate // 4, gil=False), path)

    watcher = threading.Thread(target=watch, name="profile-watch", daemon=True)
    if children:
        watcher.start()
    time.sleep(1.0)  # let it attach before the measured work starts
    try:
        yield
    finally:
        stop.set()
        if children:
            watcher.join()
        for process in [*spies, *(spy for spy, _ in kids.values())]:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    report = summarise_profile(raw.read_text(encoding="utf-8"), title)
    raw.unlink()
    if kids:
        collapsed = ""
        for _, path in kids.values():
            if path.exists():
                collapsed += path.read_text(encoding="utf-8")
                path.unlink()
        report += "\n" + summarise_profile(collapsed, f"{title}: its {len(kids)} child processes")
    out.write_text(report, encoding="utf-8")


def _spy(pid: int, raw: Path, rate: int, gil: bool) -> Any:
    import shutil
    import subprocess

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
    command += ["--threads", "--function", "--gil" if gil else "--nonblocking", "-o", str(raw)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _children() -> list[int]:
    """This process's child processes (Linux; else none)."""
    found: list[int] = []
    with suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as f:
                found += [int(pid) for pid in f.read().split()]
    return found


def _is_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read()
    except OSError:
        return False
    return b"spawn_main" in command and b"resource_tracker" not in command


def summarise_profile(collapsed: str, title: str, top: int = 45) -> str:
    """Self and inclusive sample shares per function, and per thread, from collapsed stacks."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    threads: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread, frames = frames[0], [_short(f) for f in frames[1:]] or ["(thread)"]
        total += count
        threads[thread] = threads.get(thread, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    lines = [f"# {title}", f"# {total} samples (py-spy, idle excluded, all threads)", ""]
    lines += ["## samples per thread"]
    lines += [f"{100 * n / total:6.1f}%  {t}" for t, n in _top(threads, top)]
    lines += ["", "## self (where the CPU is spent)"]
    lines += [f"{100 * n / total:6.1f}%  {f}" for f, n in _top(own, top)]
    lines += ["", "## inclusive (function and what it calls)"]
    lines += [f"{100 * n / total:6.1f}%  {f}" for f, n in _top(inclusive, top)]
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    """'fn (/long/path/site-packages/pkg/mod.py:12)' -> 'fn (pkg/mod.py:12)'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})" if where else name


def _top(counts: dict[str, int], n: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: -kv[1])[:n]
