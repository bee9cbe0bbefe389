"""A dispatcher process for the crash test, started once and forked for every round.

    python tests/alert_crash_worker.py   # then, on stdin: "run CONFIG OFFSET_SECONDS", "go" | "quit"

The process imports news-monitor once (single-threaded, so forking is safe), then for each `run` forks
a child that runs the real `Dispatcher` until the outbox is empty, prints `pid N`, lets the child
start on the next line (`go`: the test arms its killer first), waits for the child
and prints `exit CODE` (-9 when the test SIGKILLed it). The child's clock is the system clock plus
OFFSET: each round starts later than the leases of the killed rounds before it, without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from datetime import datetime, timedelta

from monitor.alert import outbox
from monitor.alert.dispatch import Dispatcher
from monitor.clock import SystemClock
from monitor.config import load_config


class OffsetClock:
    def __init__(self, offset: float) -> None:
        self.offset = timedelta(seconds=offset)

    def now(self) -> datetime:
        return SystemClock().now() + self.offset


async def dispatch_until_empty(config_path: str, offset: float) -> int:
    config = load_config(config_path)
    dispatcher = Dispatcher(config, config.database, OffsetClock(offset))
    try:
        for _ in range(50):
            await dispatcher.send_due()
            left = outbox.counts(dispatcher.conn)
            if left["pending"] + left["sending"] == 0:
                return 0
        return 3
    finally:
        await dispatcher.aclose()


def warm_up() -> None:
    """Load what every child needs once, here, so a round takes milliseconds (all single-threaded)."""
    import apprise
    from apscheduler.triggers.cron import CronTrigger

    from monitor.alert.dispatch import sample_payload
    from monitor.alert.render import Renderer
    from monitor.match.query import validate_query

    apprise.Apprise.instantiate("json://127.0.0.1:9/")  # apprise loads its plugins on first use
    CronTrigger.from_crontab("0 8 * * *")
    validate_query("x")
    Renderer().render("alert", sample_payload("2026-01-01T00:00:00Z"), "text")


def main() -> None:
    warm_up()
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        # The child waits for "go" until the test has armed its killer with the child's pid: a
        # child that ran ahead would send unwatched and could empty the outbox in one round.
        gate_read, gate_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(gate_write)
                os.read(gate_read, 1)
                code = asyncio.run(dispatch_until_empty(command[1], float(command[2])))
            finally:
                os._exit(code)
        os.close(gate_read)
        print(f"pid {pid}", flush=True)
        sys.stdin.readline()  # "go"
        with contextlib.suppress(BrokenPipeError):  # killed as it started ("start" phase)
            os.write(gate_write, b"g")
        os.close(gate_write)
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    main()
