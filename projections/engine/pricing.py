"""Subscription MRR from its terms (MRR_SPEC.md §2), exact, in the subscription's own currency.

Every item's monthly amount is `unit_amount × quantity × k / (12 × interval_count)` with k = 1
(year), 12 (month), 52 (week), 365 (day), so all items share the denominator 12 × lcm(counts) and
the sum stays an exact fraction of integers until the one rounding per subscription.
"""

from __future__ import annotations

from fractions import Fraction
from math import lcm

from ledger.events import Discount, Item, Terms
from projections.engine.fx import round_half_up

MONTHS_NUMERATOR = {"year": 1, "month": 12, "week": 52, "day": 365}

ZERO_STATUSES = frozenset({"trialing", "paused"})


def months_factor(interval: str, interval_count: int) -> Fraction:
    """Factor turning an amount per billing interval into an amount per month."""
    return Fraction(MONTHS_NUMERATOR[interval], 12 * interval_count)


def _licensed(items: list[Item]) -> list[Item]:
    return [item for item in items if item.usage_type == "licensed"]


def _items_total(items: list[Item]) -> tuple[int, int]:
    """Monthly total of the licensed items as (numerator, denominator)."""
    common = 1
    for item in items:
        common = lcm(common, item.interval_count)
    numerator = 0
    for item in items:
        numerator += (
            item.unit_amount
            * item.quantity
            * MONTHS_NUMERATOR[item.interval]
            * (common // item.interval_count)
        )
    return numerator, 12 * common


def _discounted(total: Fraction, discount: Discount, billing_item: Item | None) -> Fraction:
    if discount.kind == "percent":
        return total * (1 - Fraction(discount.value) / 100)
    if billing_item is None:
        return total
    monthly_off = Fraction(discount.value) * months_factor(
        billing_item.interval, billing_item.interval_count
    )
    return max(Fraction(0), total - monthly_off)


def list_mrr(terms: Terms, once_discounts_reduce_mrr: bool = False) -> int:
    """The subscription's MRR in minor units of its currency, ignoring its status.

    Metered items count 0. `forever` and `repeating` discounts reduce MRR (a percent of the items'
    total, or the per-invoice amount normalised by the billing interval of the first licensed
    item); a `once` discount only when the setting says so. Rounded half up once.
    """
    items = _licensed(terms.items)
    if not items:
        return 0
    numerator, denominator = _items_total(items)
    discount = terms.discount
    if discount is not None and (discount.duration != "once" or once_discounts_reduce_mrr):
        total = _discounted(Fraction(numerator, denominator), discount, items[0])
        numerator, denominator = total.numerator, total.denominator
    return round_half_up(numerator, denominator)


def billing_interval_label(terms: Terms) -> str:
    """`month`, `year`, `3 month`, … of the first licensed item (the first item if none)."""
    items = _licensed(terms.items) or terms.items
    item = items[0]
    return item.interval if item.interval_count == 1 else f"{item.interval_count} {item.interval}"


def plan_of(terms: Terms) -> str:
    """The plan a subscription is reported under: its first licensed item's price id."""
    items = _licensed(terms.items) or terms.items
    return items[0].price_id
