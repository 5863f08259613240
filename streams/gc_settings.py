"""Garbage-collector settings of the long-running jobs (`mrr worker`, `mrr replay`, `mrr verify`).

They allocate millions of small, long-lived objects (decoded events, engine rows, projection
rows) that hold no reference cycles and are freed by reference counting. CPython's cyclic
collector still scans them: with its default thresholds (700, 10, 10) collection took ~15 % of
the projector benchmark and a third of a replay's compute time, and full collections paused the
worker for about a second every few seconds (measured with a gc callback on `python -m bench
worker`, and by timing `projections.rebuild` with the collector on and off).
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator

GC_THRESHOLDS = (10_000, 10, 1_000)
"""Larger young-generation thresholds cut the collector's share; a large third threshold makes
full collections rare."""


def tune_gc() -> None:
    """Freeze the objects alive now (never collectable) and collect less often (the worker)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside the block (a batch computation over objects it keeps until
    the end); the collector is re-enabled afterwards if it was on."""
    was_enabled = gc.isenabled()
    gc.freeze()  # what exists now (e.g. the decoded ledger) is never scanned again
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
