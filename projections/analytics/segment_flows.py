"""How one customer's MRR change at one instant splits across segments (pure: no SQL, no clock).

A customer's MRR is the sum of its *pieces*: subscription intervals (segments by plan, currency,
billing interval) or its customer intervals cut where an attribute changes (segments by
attribute). At an instant t where pieces end or start, each segment S changes by d_S, and
Σ d_S = the customer's movement at t + its FX impact at t. The split, exact in minor units:

1. FX impact: a subscription whose native MRR, currency and convertibility are unchanged while
   its reporting MRR changed was revalued only: its whole change is FX impact. What remains of
   the customer's FX impact goes to the other subscriptions that had MRR before, in proportion
   to it (largest remainder); with attribute pieces, all to the customer's segment after t.
2. The rest r_S = d_S − fx_S sums to the movement m. MRR that left one segment for another at the
   same instant is a transfer (`moved_out` < 0, `moved_in` > 0); the movement (typed as the
   customer's movement) is attributed where the net change went: if m ≥ 0 every decrease is a
   transfer out and the increases are transfers in up to that amount (pro rata), the remainder
   being the movement; if m < 0 the other way round. So the transfer is the smaller side: a
   switch from plan A at 50 to plan B at 30 is A: `moved_out` −30, `contraction` −20 and B:
   `moved_in` +30; from A at 30 to B at 50 it is A: `moved_out` −30 and B: `moved_in` +30,
   `expansion` +20. With no movement at t (an attribute change, a swap at the same price)
   everything is a transfer. Worked examples: docs/analytics.md.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from projections.queries.common import BridgeImbalanceError


class SegmentImbalanceError(BridgeImbalanceError):
    """Segment changes do not add up to the customer's movement and FX impact."""


@dataclass(frozen=True)
class Piece:
    """One unit (a subscription, or the customer) in force on [valid_from, valid_to) in a segment."""

    unit: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    segment: str
    mrr: int | None
    """Reporting currency; None (no FX rate) counts as 0, as in every total."""
    native: int | None = None
    currency: str | None = None


@dataclass
class Flow:
    """What one customer's change at instant `at` did to one segment."""

    at: dt.datetime
    segment: str
    delta: int
    customers: int
    """+1: the customer's MRR in the segment became > 0; −1: it went back to 0."""
    amounts: dict[str, int] = field(default_factory=dict)
    """Non-zero parts of `delta`: a movement type, `moved_in`, `moved_out`, `fx_impact`."""


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to positive `weights`, summing exactly (largest remainder,
    ties to the first)."""
    whole = sum(weights)
    if not weights or whole <= 0:
        raise ValueError("allocate needs positive weights")
    sign, total = (-1 if total < 0 else 1), abs(total)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return [sign * s for s in shares]


def _split(r: dict[str, int], m: int) -> dict[str, int]:
    """Transfer part of each segment's non-FX change r_S, given Σ r_S = m."""
    give = {s: v for s, v in r.items() if (v < 0 if m >= 0 else v > 0)}  # wholly transfers
    take = [s for s, v in r.items() if (v > 0 if m >= 0 else v < 0)]
    moved = {**give}
    if take and give:
        for s, share in zip(take, allocate(-sum(give.values()), [abs(r[s]) for s in take])):
            moved[s] = share
    return moved


def customer_flows(pieces: Sequence[Piece], movements: dict[dt.datetime, tuple[str, int]],
                   fx: dict[dt.datetime, int], since: dt.datetime, until: dt.datetime,
                   customer_id: str = "") -> Iterator[Flow]:
    """The flows of one customer's pieces; changes at `since <= t < until` are split into parts
    (`movements`/`fx` hold the customer's movement and FX impact at those instants), earlier
    ones only carry their delta (they make up opening levels), later ones are not produced."""
    starts: dict[dt.datetime, dict[str, Piece]] = defaultdict(dict)
    ends: dict[dt.datetime, dict[str, Piece]] = defaultdict(dict)
    for p in pieces:
        starts[p.valid_from][p.unit] = p
        if p.valid_to is not None:
            ends[p.valid_to][p.unit] = p
    level: dict[str, int] = defaultdict(int)
    for t in sorted(set(starts) | set(ends)):
        if t >= until:
            break
        d: dict[str, int] = defaultdict(int)
        fx_parts: dict[str, int] = defaultdict(int)
        weights: list[tuple[str, int]] = []
        after, before = starts.get(t, {}), ends.get(t, {})
        for unit in sorted(set(after) | set(before)):
            b, a = before.get(unit), after.get(unit)
            mb, ma = (b.mrr or 0) if b else 0, (a.mrr or 0) if a else 0
            if b:
                d[b.segment] -= mb
            if a:
                d[a.segment] += ma
            if b and a and b.mrr is not None and a.mrr is not None and b.native and b.native == a.native \
                    and b.currency == a.currency:
                fx_parts[a.segment] += ma - mb  # same price, new rate: revalued only
            elif b and a and mb:
                weights.append((a.segment, mb))
        yield from _flows(customer_id, t, d, fx_parts, weights, level, movements, fx, t >= since)


def _flows(customer_id: str, t: dt.datetime, d: dict[str, int], fx_parts: dict[str, int],
           weights: list[tuple[str, int]], level: dict[str, int], movements: dict[dt.datetime, tuple[str, int]],
           fx: dict[dt.datetime, int], classify: bool) -> Iterator[Flow]:
    parts: dict[str, dict[str, int]] = defaultdict(dict)
    if classify:
        rest = fx.get(t, 0) - sum(fx_parts.values())
        if rest:
            if not weights:
                raise SegmentImbalanceError(f"customer {customer_id}: FX impact {rest} at {t.isoformat()} "
                                            "has no subscription to belong to")
            for (segment, _), share in zip(weights, allocate(rest, [w for _, w in weights])):
                fx_parts[segment] += share
        kind, m = movements.get(t, (None, 0))
        r = {s: d.get(s, 0) - fx_parts.get(s, 0) for s in set(d) | set(fx_parts)}
        if sum(r.values()) != m:
            raise SegmentImbalanceError(f"customer {customer_id}: segment changes at {t.isoformat()} "
                                        f"sum to {sum(r.values())}, its movement is {m}")
        moved = _split(r, m)
        for s, v in r.items():
            x = moved.get(s, 0)
            candidates = ((kind, v - x), ("moved_in" if x > 0 else "moved_out", x),
                          ("fx_impact", fx_parts.get(s, 0)))
            parts[s].update({key: amount for key, amount in candidates if key and amount})
    for s in sorted(set(d) | set(parts)):
        before = level[s]
        level[s] += d.get(s, 0)
        count = (level[s] > 0) - (before > 0)
        if d.get(s, 0) or count or parts[s]:
            yield Flow(t, s, d.get(s, 0), count, parts[s])
