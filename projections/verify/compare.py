"""Comparing expected and stored projections: row differences per customer, reference and
offset differences, bridge totals per month and movement type; and the customer-id ranges that
split the row comparison into slices."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

import msgspec

from projections.verify.model import BridgeDifference, Difference, ProjectionState, VerifyResult

class RowsCheck(msgspec.Struct):
    """The comparison of one slice of customers' rows, and its bridge totals (month, type)."""

    differences: list[Difference]
    expected_totals: dict[tuple[str, str], int]
    actual_totals: dict[tuple[str, str], int]
    current_rows: dict[str, int] = {}
    """Expected current rows per table (`projections.verify.rebuilt` fills it)."""
    mrr_now: dict[str, int] = {}
    """Expected MRR now per customer (`projections.verify.rebuilt` fills it)."""


def check_rows(want: Mapping[str, Counter[Any]], got: Mapping[str, Counter[Any]]) -> RowsCheck:
    """Every row of `want` not in `got` (`missing`) and the other way round (`unexpected`)."""
    differences: list[Difference] = []
    equal: set[str] = set()
    for name, expected in want.items():
        actual = got.get(name, Counter())
        if dict.__eq__(expected, actual):  # the usual case, in C (Counter's own == is Python)
            equal.add(str(name))
            continue
        for kind, extra in (("missing", expected - actual), ("unexpected", actual - expected)):
            for value, count in sorted(extra.items(), key=lambda item: _sort_key(item[0])):
                differences.extend([Difference(str(name), kind, value.customer_id, _describe(value))] * count)
    expected_totals = dict(_bridge_totals(want))
    same = equal.issuperset(_BRIDGE_TABLES)
    return RowsCheck(differences, expected_totals, dict(expected_totals) if same else dict(_bridge_totals(got)))


def customer_ranges(customers: Iterable[str], count: int) -> list[tuple[str | None, str | None]]:
    """`count` (at most) contiguous ranges [low, high) of customer ids in byte order, balanced
    by number of customers, covering every possible id (the first and last are open)."""
    ordered = sorted(set(customers), key=lambda c: c.encode())
    count = max(1, min(count, len(ordered)))
    bounds = [ordered[len(ordered) * k // count] for k in range(1, count)]
    edges: list[str | None] = [None, *bounds, None]
    return list(zip(edges[:-1], edges[1:]))


def in_range(customer_id: str, low: str | None, high: str | None) -> bool:
    key = customer_id.encode()
    return (low is None or key >= low.encode()) and (high is None or key < high.encode())


def compare(expected: ProjectionState, actual: ProjectionState, *, checked_at: dt.datetime,
            customers: int) -> VerifyResult:
    """Every difference between `expected` and `actual`."""
    return combine(expected, actual, [check_rows(expected.rows, actual.rows)],
                   checked_at=checked_at, customers=customers)


def combine(expected: ProjectionState, actual: ProjectionState, checks: Sequence[RowsCheck], *,
            checked_at: dt.datetime, customers: int) -> VerifyResult:
    """The result of the reference/offset comparison of `expected` and `actual` together with
    the row checks of every slice of customers."""
    differences = [d for check in checks for d in check.differences]
    for name, want in expected.reference.items():
        got = actual.reference.get(name, set())
        for kind, extra in (("missing", want - got), ("unexpected", got - want)):
            differences.extend(Difference(str(name), kind, None, ", ".join(row)) for row in sorted(extra))
    for p in sorted(set(expected.offsets) | set(actual.offsets)):
        want_offset, got_offset = expected.offsets.get(p, 0), actual.offsets.get(p, 0)
        if want_offset != got_offset:
            differences.append(Difference("projection_offsets", "different", None,
                                          f"partition {p}: stored {got_offset}, ledger read to {want_offset}"))
    want_totals: Counter[tuple[str, str]] = Counter()
    got_totals: Counter[tuple[str, str]] = Counter()
    for check in checks:
        want_totals.update(check.expected_totals)
        got_totals.update(check.actual_totals)
    bridge = [BridgeDifference(month, kind, want_totals.get((month, kind), 0), got_totals.get((month, kind), 0))
              for month, kind in sorted(set(want_totals) | set(got_totals))
              if want_totals.get((month, kind), 0) != got_totals.get((month, kind), 0)]
    return VerifyResult(checked_at=checked_at, offsets=dict(expected.offsets),
                        events=len(expected.reference.get("events", ())), customers=customers,
                        differences=differences, bridge=bridge)


def _sort_key(value: Any) -> tuple[str, str]:
    return (value.customer_id, repr(value))


def _describe(value: Any) -> str:
    fields = msgspec.structs.asdict(value)
    fields.pop("customer_id", None)
    return ", ".join(f"{k}={v.isoformat() if isinstance(v, dt.datetime) else v}" for k, v in fields.items())


_BRIDGE_TABLES = ("movements", "fx_impacts")


def _bridge_totals(rows: Mapping[str, Counter[Any]]) -> Counter[tuple[str, str]]:
    by_month: Counter[tuple[int, int, str]] = Counter()  # (year, month, type): no strftime per row
    for movement in rows.get("movements", Counter()).elements():
        at = movement.effective_at.astimezone(dt.UTC)
        by_month[(at.year, at.month, movement.type)] += movement.amount
    for impact in rows.get("fx_impacts", Counter()).elements():
        at = impact.effective_at.astimezone(dt.UTC)
        by_month[(at.year, at.month, "fx_impact")] += impact.amount
    totals: Counter[tuple[str, str]] = Counter()
    for (year, month, kind), amount in by_month.items():
        totals[(f"{year:04d}-{month:02d}", kind)] += amount
    return totals
