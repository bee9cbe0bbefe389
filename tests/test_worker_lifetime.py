"""Extraction workers exit when the process that owns their pool dies, even by SIGKILL."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_SECONDS = 20.0  # generous for a loaded machine; they go within a second


def wait_for_exit(pids: list[int], timeout: float) -> list[int]:
    """Block (no sleeping) until every process exits or the time is up; the survivors."""
    fds: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # already gone and reaped
            fds[os.pidfd_open(pid)] = pid
    try:
        deadline = time.monotonic() + timeout
        while fds:
            remaining = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select(list(fds), [], [], remaining)  # readable: it exited
            for fd in ready:
                os.close(fd)
                del fds[fd]
            if not ready and remaining == 0.0:
                break
        return sorted(fds.values())
    finally:
        for fd in fds:
            os.close(fd)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfd_open")
@pytest.mark.parametrize("mode", ["extractor", "watch"])
def test_workers_exit_when_their_owner_is_killed(mode: str, tmp_path: Path) -> None:
    # The killed owner's resource tracker reports the pool's semaphores it cleans up: its log.
    log = (tmp_path / "owner.log").open("w")
    owner = subprocess.Popen(
        [sys.executable, "-m", "tests.pool_owner", mode],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert owner.stdout is not None
        pids = [int(pid) for pid in owner.stdout.readline().split()]
        assert len(pids) == 2, (tmp_path / "owner.log").read_text()
        assert wait_for_exit(pids, 0.0) == pids  # alive while their owner is
        owner.kill()
        owner.wait()
        assert wait_for_exit(pids, DEADLINE_SECONDS) == []
    finally:
        owner.kill()
        owner.wait()
        log.close()
