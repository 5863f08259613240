"""`map_forked`: run one call per process, each a fork of this one, sharing large read-only
data without sending it through a pipe.

The replay's shards and `mrr verify`'s customer slices are pure CPU work over data this process
already holds (the decoded ledger). Forked children see that data as it is at the fork (copy on
write); only each call's small arguments and result are pickled. A single call runs in a thread
of this process instead (no fork). The functions must be module-level (pickled by name).
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1
_SHARED: Any = None
"""The data of the running `map_forked`, set before the pool forks."""


def _call(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    return fn(_SHARED, *args)


def _die_with_parent(parent: int) -> None:
    """Pool initializer: a child must not outlive a killed parent (an orphan would go on
    COPYing into a schema that a resumed or aborted replay is dropping). Linux: the kernel
    sends SIGKILL when the parent dies; elsewhere nothing is arranged."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


async def map_forked(shared: Any, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> list[T]:
    """`[fn(shared, *args) for args in calls]`, each call in its own forked process (in a
    thread of this process when there is one call). Exceptions of a call are raised here."""
    global _SHARED
    _SHARED = shared
    try:
        if len(calls) == 1:
            return [await asyncio.to_thread(_call, fn, tuple(calls[0]))]
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=len(calls), mp_context=context,
                                 initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
            return list(await asyncio.gather(*(loop.run_in_executor(pool, _call, fn, tuple(args))
                                               for args in calls)))
    finally:
        _SHARED = None
