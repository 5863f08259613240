"""The pure MRR engine: events in, MRR timelines out. No I/O, no clock, no SQL, no Kafka.

Public API:
- `FxTable`: FX rates by effective date, with inverse and cross rates.
- `compute_timeline(customer_id, events, settings, fx)`: one customer's `Timeline` from scratch;
  `events` are that customer's events in recorded order.
- `CustomerEngine`: the same, incrementally (`apply(batch)` returns the new `Timeline`), resuming
  its run instead of re-running the history whenever that gives the same result; `advance(batch)`
  answers `TimelineParts` (rows so far, how many are unchanged, the open tail) so a consumer can
  diff in O(what changed) instead of O(history).
- `NATIVE`: whether it runs compiled (mypyc; `make native`) or as plain Python.
"""

from projections.engine.native import check as _check_native

NATIVE = _check_native()
"""Whether the engine's hot modules run compiled by mypyc (`projections.engine.native`)."""

from projections.engine.fx import FxTable  # noqa: E402  (after the check: it may refuse stale compiled modules)
from projections.engine.model import (
    MOVEMENT_TYPES,
    CustomerInterval,
    FxImpact,
    Movement,
    SubscriptionInterval,
    Timeline,
)
from projections.engine.settings import MrrSettings
from projections.engine.incremental import CustomerEngine, TimelineParts
from projections.engine.timeline import compute_timeline

__all__ = [
    "MOVEMENT_TYPES",
    "NATIVE",
    "CustomerEngine",
    "CustomerInterval",
    "FxImpact",
    "FxTable",
    "Movement",
    "MrrSettings",
    "SubscriptionInterval",
    "Timeline",
    "TimelineParts",
    "compute_timeline",
]
