"""What verification compares and reports: projection states, differences, results."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import msgspec

REFERENCE = ("events", "fx_rates", "acquisition_costs", "customer_attributes", "event_conflicts")


@dataclass
class ProjectionState:
    """What verification compares: per bitemporal table a Counter of current rows (engine
    Structs), per reference table a set of row tuples, and the offsets."""

    rows: dict[str, Counter[Any]] = field(default_factory=dict)
    reference: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
    offsets: dict[int, int] = field(default_factory=dict)


class Difference(msgspec.Struct, frozen=True):
    """One difference: `kind` is `missing` (expected, not in the projections) or `unexpected`."""

    table: str
    kind: str
    customer_id: str | None
    row: str


class BridgeDifference(msgspec.Struct, frozen=True):
    """A month whose bridge total of one movement type differs (minor units, reporting currency)."""

    month: str
    type: str
    expected: int
    actual: int


class VerifyResult(msgspec.Struct):
    """The outcome of one verification."""

    checked_at: dt.datetime
    offsets: dict[int, int]
    events: int
    customers: int
    differences: list[Difference]
    bridge: list[BridgeDifference]

    @property
    def ok(self) -> bool:
        return not self.differences and not self.bridge

    @property
    def difference_count(self) -> int:
        return len(self.differences) + len(self.bridge)


def _text(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in values)
