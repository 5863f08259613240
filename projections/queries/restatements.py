"""Restatements: closed periods whose bridge changed after they closed, and the late events why.

A period [start, end) is *closed* at `end` (recorded time; `close_delay` moves the close later,
e.g. the demo's "books close on the 3rd"). A period closed by `known_at` (and fully before
`as_of`) is *restated* when its bridge as known at its close differs from its bridge as known at
`known_at` in any money field (opening, each movement type, fx_impact, closing).

Causes, per restated period closed at C: the movement and FX-impact rows effective before the
period's end that are in one of the two views only (inserted at R or superseded at R, C < R <=
known_at). Rows effective inside the period give causes marked `period`; rows effective earlier
give causes marked `opening`, listed only when the opening MRR changed. For each such row, the
causes are the events of its `event_ids` recorded in (C, known_at] plus the customer's events
recorded exactly at R (a row that disappeared names no late event itself); when neither exists,
the FX rates recorded in (C, R] and effective on or before the row's day (a late rate).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any, Sequence

from sqlalchemy import Connection, and_, or_, select

from projections import schema
from projections.periods import Period
from projections.queries.bridge import MONEY_FIELDS, BridgeRow, bridge
from projections.queries.common import Scope, for_customer, report_envelope
from projections.queries.money import format_major

NO_DELAY = dt.timedelta(0)


@dataclass(frozen=True)
class Cause:
    """A late event (or FX rate) behind a restatement; `changed` is `period` or `opening`."""

    event_id: str
    type: str
    customer_id: str | None
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    changed: str = "period"


@dataclass
class Restatement:
    """One restated closed period: its bridge at close and now (minor units), and the causes."""

    period: Period
    closed_at: dt.datetime
    at_close: BridgeRow
    now: BridgeRow
    causes: list[Cause]

    @property
    def delta(self) -> dict[str, int]:
        return {f: getattr(self.now, f) - getattr(self.at_close, f) for f in MONEY_FIELDS}


@dataclass(frozen=True)
class _Row:
    customer_id: str
    effective_at: dt.datetime
    event_ids: tuple[str, ...]
    recorded_at: dt.datetime
    superseded_at: dt.datetime | None

    def visible(self, known_at: dt.datetime) -> bool:
        return self.recorded_at <= known_at and (self.superseded_at is None or self.superseded_at > known_at)

    def changed_at(self, close: dt.datetime, known_at: dt.datetime) -> dt.datetime | None:
        """When the row entered or left the books after `close`, if it is in one view only."""
        then, now = self.visible(close), self.visible(known_at)
        if then == now:
            return None
        return self.recorded_at if now else self.superseded_at


def closed_periods(periods: Sequence[Period], scope: Scope, close_delay: dt.timedelta = NO_DELAY) -> list[Period]:
    """The periods closed by `known_at` and wholly before `as_of`."""
    return [p for p in periods if p.end + close_delay <= scope.known_at and p.end <= scope.cutoff]


def bridge_at_close(conn: Connection, periods: Sequence[Period], scope: Scope,
                    close_delay: dt.timedelta = NO_DELAY) -> list[BridgeRow]:
    """Each period's bridge row as known when it closed (`period.end + close_delay`)."""
    return [bridge(conn, [p], Scope(scope.as_of, p.end + close_delay, scope.customer_id))[0] for p in periods]


def restatements(conn: Connection, periods: Sequence[Period], scope: Scope,
                 close_delay: dt.timedelta = NO_DELAY) -> list[Restatement]:
    """The closed periods among `periods` (ascending, contiguous) whose bridge changed after
    they closed, with their causes (see the module docstring)."""
    closed = closed_periods(periods, scope, close_delay)
    if not closed:
        return []
    pairs = zip(closed, bridge(conn, closed, scope), bridge_at_close(conn, closed, scope, close_delay))
    found = [r for r in (Restatement(p, p.end + close_delay, then, now, []) for p, now, then in pairs)
             if any(r.delta.values())]
    if found:
        rows = _changed_rows(conn, scope, found[0].closed_at, found[-1].period.end)
        events, rates = _late_events(conn, {r.customer_id for r in rows}, found[0].closed_at, scope.known_at)
        for restated in found:
            restated.causes = _causes(restated, rows, events, rates, scope.known_at)
    return found


def _changed_rows(conn: Connection, scope: Scope, after: dt.datetime, before: dt.datetime) -> list[_Row]:
    """Movement and FX-impact rows effective before `before`, recorded or superseded in (after, known_at]."""
    found: list[_Row] = []
    for t in (schema.movements, schema.fx_impacts):
        query = select(t.c.customer_id, t.c.effective_at, t.c.event_ids, t.c.recorded_at, t.c.superseded_at).where(
            *for_customer(t, scope), t.c.effective_at < before,
            or_(and_(t.c.recorded_at > after, t.c.recorded_at <= scope.known_at),
                and_(t.c.superseded_at > after, t.c.superseded_at <= scope.known_at)))
        found.extend(_Row(c, at, tuple(ids), rec, sup) for c, at, ids, rec, sup in conn.execute(query))
    return found


def _late_events(conn: Connection, customers: set[str], after: dt.datetime,
                 known_at: dt.datetime) -> tuple[list[Cause], list[tuple[Cause, dt.date]]]:
    """The given customers' events and all FX rates (with their effective day) recorded in (after, known_at]."""
    e, r = schema.events, schema.fx_rates
    late = and_(e.c.recorded_at > after, e.c.recorded_at <= known_at)
    columns = (e.c.event_id, e.c.type, e.c.customer_id, e.c.occurred_at, e.c.recorded_at)
    ids = sorted(customers)
    events = [Cause(*row) for i in range(0, len(ids), 500)
              for row in conn.execute(select(*columns).where(late, e.c.customer_id.in_(ids[i:i + 500])))]
    rates = [(Cause(*row[:5]), row[5]) for row in conn.execute(
        select(*columns, r.c.effective_date).join(r, r.c.event_id == e.c.event_id).where(late))]
    return events, rates


def _causes(found: Restatement, rows: list[_Row], events: list[Cause],
            rates: list[tuple[Cause, dt.date]], known_at: dt.datetime) -> list[Cause]:
    period, close = found.period, found.closed_at
    by_id = {ev.event_id: ev for ev in events}
    by_instant: dict[tuple[str | None, dt.datetime], list[Cause]] = {}
    for ev in events:
        by_instant.setdefault((ev.customer_id, ev.recorded_at), []).append(ev)
    causes: dict[str, Cause] = {}
    for row in rows:
        instant = row.changed_at(close, known_at)
        if instant is None or row.effective_at >= period.end:
            continue
        changed = "period" if row.effective_at >= period.start else "opening"
        if changed == "opening" and not found.delta["opening_mrr"]:
            continue
        hits = [by_id[i] for i in row.event_ids if i in by_id and by_id[i].recorded_at > close]
        hits += by_instant.get((row.customer_id, instant), [])
        if not hits:
            hits = [rate for rate, day in rates
                    if close < rate.recorded_at <= instant and day <= row.effective_at.date()]
        for ev in hits:
            prior = causes.get(ev.event_id)
            if prior is None or prior.changed == "opening":  # a cause inside the period wins
                causes[ev.event_id] = replace(ev, changed=changed)
    return sorted(causes.values(), key=lambda c: (c.recorded_at, c.event_id))


def restatements_json(rows: Sequence[Restatement], currency: str, kind: str, scope: Scope) -> dict[str, Any]:
    """The `--json` payload: the report envelope, one row per restated period."""
    def money(values: dict[str, int]) -> dict[str, Any]:
        return {f: format_major(values[f], currency) for f in MONEY_FIELDS}

    return report_envelope(currency, kind, scope, [
        {"period": r.period.label, "closed_at": r.closed_at.isoformat(),
         "at_close": money(vars(r.at_close)), "now": money(vars(r.now)), "delta": money(r.delta),
         "causes": [{**vars(c), "occurred_at": c.occurred_at.isoformat(),
                     "recorded_at": c.recorded_at.isoformat()} for c in r.causes]}
        for r in rows
    ], customer_id=scope.customer_id)


def csv_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """`--csv`: one row per restated period (`at_close.*`, `now.*`, `delta.*`, cause event ids)."""
    return [{**row, "causes": [c["event_id"] for c in row["causes"]]} for row in payload["rows"]]
