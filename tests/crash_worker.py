"""Starts `monitor run` quickly, again and again, for the crash test.

    python tests/crash_worker.py     # then on stdin, one per line (tab-separated):
                                     #   run <TAB> LOG_FIFO <TAB> monitor arguments...  |  quit

The process imports news-monitor once (single-threaded, so forking is safe) and warms up what the
first poll and the first alert would load; then for each `run` it forks a child that sends its stderr
(the daemon's log) to LOG_FIFO and calls the real command line, `monitor.cli.main(["run", ...])`. It
prints `pid N`, waits for the child and prints `exit CODE` (-9 when the test SIGKILLed it). A start
then costs milliseconds instead of the second and a half of a fresh interpreter.
"""

from __future__ import annotations

import os
import sys


def warm_up() -> None:
    import apprise
    from apscheduler.triggers.cron import CronTrigger

    import monitor.cli
    import monitor.daemon
    from monitor.alert.dispatch import sample_payload
    from monitor.alert.render import Renderer
    from monitor.extract import extract_page
    from monitor.language import warm_up
    from monitor.match.query import validate_query

    assert monitor.cli and monitor.daemon
    warm_up()
    extract_page(b"<html><body><article><p>Warm up.</p></article></body></html>", "http://x/", None)
    apprise.Apprise.instantiate("json://127.0.0.1:9/")  # apprise loads its plugins on first use
    CronTrigger.from_crontab("0 8 * * *")
    validate_query("x")
    Renderer().render("alert", sample_payload("2026-01-01T00:00:00Z"), "text")


def child(fifo: str, args: list[str]) -> None:
    code = 1
    try:
        log = os.open(fifo, os.O_WRONLY)
        os.dup2(log, 2)
        os.close(log)
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)  # stdout is the worker's channel to the test
        os.close(quiet)
        from monitor.cli import main

        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    warm_up()
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.rstrip("\n").split("\t")
        if command[0] != "run":
            break
        pid = os.fork()
        if pid == 0:
            child(command[1], command[2:])
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    main()
