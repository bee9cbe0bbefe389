"""Owns a pool of extraction workers, for the test that kills it (tests/test_worker_lifetime.py).

    python -m tests.pool_owner extractor|watch

`extractor`: the daemon's own `monitor.pipeline.Extractor` with two workers (they die with it by
the parent-death signal). `watch`: the same kind of pool, but its workers use the portable fallback
(a thread that watches the parent), as where prctl is unavailable. Prints the workers' pids on one
line once both run, then blocks until stdin closes or the test kills it.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Executor, ProcessPoolExecutor

from monitor import workers


def watch_only(parent_pid: int) -> None:
    """The initializer as on a system without PR_SET_PDEATHSIG."""
    workers._set_parent_death_signal = lambda signum: False
    workers.initialize(parent_pid)


def pool_of(mode: str) -> Executor:
    if mode == "extractor":
        from monitor.pipeline import Extractor

        return Extractor(2)._pool
    from tests import pool_owner  # by its importable name: workers never see __main__

    return ProcessPoolExecutor(
        2,
        mp_context=workers.WorkerContext(),
        initializer=pool_owner.watch_only,
        initargs=(os.getpid(),),
    )


def main() -> None:
    pool = pool_of(sys.argv[1])
    # Two tasks at once start both workers; a task runs after its worker's initializer did.
    futures = [pool.submit(os.getpid) for _ in range(2)]
    for future in futures:
        future.result()
    processes = getattr(pool, "_processes", {})
    print(" ".join(str(pid) for pid in processes), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()


def loaded_packages() -> set[str]:
    """The top-level packages imported in this process (run as a task on a worker)."""
    return {name.split(".")[0] for name, module in sys.modules.items() if module is not None}
