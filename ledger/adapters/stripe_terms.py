"""Stripe subscription object -> ledger `terms` (status, currency, items, discount, periods).

Rules (docs/stripe.md has the full table):
- items: one ledger item per `items.data[]`, from its `price` (legacy `plan` if no price).
  `unit_amount` null with an integral `unit_amount_decimal` uses that; a fractional one is
  folded into the quantity (`unit_amount = round_half_up(decimal × quantity)`, `quantity = 1`)
  so MRR stays exact to the minor unit. Metered items (`recurring.usage_type = metered`) keep the
  price's unit amount (0 if none) and quantity 0: MRR_SPEC §2 counts them 0 either way.
  Tiered prices (`billing_scheme = tiered`) are refused: their amount needs the tiers.
- discount: the subscription's `discount` (API versions before 2025-03-31) or its `discounts[]`
  when expanded (an id repeating an expanded discount is the same one); coupon from
  `discount.coupon` or `discount.source.coupon`; a `repeating` coupon's `duration_in_months` is
  converted to billing intervals of the first licensed item, rounded up. The ledger holds one
  discount: with several, the first is used and a warning names the rest. Unexpanded discount ids
  (webhooks of recent API versions) cannot be resolved without an API call: warning, no discount.
  Item-level discounts are not represented (warning).
- periods: `current_period_start/end` of the subscription (API versions before 2025-03-31) or of
  the first item carrying them (later versions).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from ledger.adapters.stripe_common import (
    StripeMappingError,
    currency_code,
    ledger_minor,
    optional_instant,
)

# Stripe status -> ledger terms status; statuses absent here are handled by the caller.
TERMS_STATUS = {
    "trialing": "trialing",
    "active": "active",
    "past_due": "past_due",
    "unpaid": "past_due",  # retries exhausted, left open: still billed, still owed
    "paused": "paused",
}


def items_of(sub: dict[str, Any]) -> list[dict[str, Any]]:
    """`items.data` of a subscription (a list), or raise."""
    data = (sub.get("items") or {}).get("data")
    if not isinstance(data, list) or not data:
        raise StripeMappingError("data.object.items.data", "must have at least 1 item")
    return data


def period(sub: dict[str, Any], field: str) -> Any:
    """`current_period_start`/`_end` of the subscription, else of its first item with it."""
    if sub.get(field) is not None:
        return sub[field]
    for item in (sub.get("items") or {}).get("data") or []:
        if isinstance(item, dict) and item.get(field) is not None:
            return item[field]
    return None


def build_terms(sub: dict[str, Any], status: str, warnings: list[str]) -> dict[str, Any]:
    """The ledger `terms` of a Stripe subscription object whose ledger status is `status`."""
    currency = currency_code(
        sub.get("currency") or _price(items_of(sub)[0], 0).get("currency"),
        "data.object.currency",
    )
    items = [_item(item, index, currency) for index, item in enumerate(items_of(sub))]
    if any(item.get("discounts") or item.get("discount") for item in items_of(sub)):
        warnings.append("item-level discounts are not represented in the ledger terms")
    return {
        "status": status,
        "currency": currency,
        "items": items,
        "discount": _discount(sub, currency, _billing_interval(items), warnings),
        "current_period_start": optional_instant(
            period(sub, "current_period_start"), "data.object.current_period_start"
        ),
        "current_period_end": optional_instant(
            period(sub, "current_period_end"), "data.object.current_period_end"
        ),
        "trial_end": optional_instant(sub.get("trial_end"), "data.object.trial_end"),
    }


def _price(item: dict[str, Any], index: int) -> dict[str, Any]:
    price = item.get("price") or item.get("plan")
    if not isinstance(price, dict):
        raise StripeMappingError(f"data.object.items.data[{index}].price", "is required")
    return price


def _item(item: dict[str, Any], index: int, currency: str) -> dict[str, Any]:
    path = f"data.object.items.data[{index}].price"
    price = _price(item, index)
    recurring = price.get("recurring") or {}
    if "interval" in price and "recurring" not in price:  # a legacy `plan` object
        recurring = price
    if recurring.get("interval") not in ("day", "week", "month", "year"):
        raise StripeMappingError(f"{path}.recurring.interval", "a recurring interval is required")
    metered = recurring.get("usage_type") == "metered"
    quantity = item.get("quantity")
    quantity = 0 if metered else (1 if quantity is None else quantity)
    unit = price.get("unit_amount", price.get("amount"))
    if unit is None:
        unit, quantity = _unit_from_decimal(price, path, quantity, metered)
    return {
        "price_id": price.get("id") or _missing(f"{path}.id"),
        "unit_amount": ledger_minor(unit, currency, f"{path}.unit_amount"),
        "quantity": quantity,
        "interval": recurring["interval"],
        "interval_count": recurring.get("interval_count") or 1,
        "usage_type": "metered" if metered else "licensed",
    }


def _unit_from_decimal(
    price: dict[str, Any], path: str, quantity: int, metered: bool
) -> tuple[int | Decimal, int]:
    raw = price.get("unit_amount_decimal")
    if raw is None:
        if metered:
            return 0, quantity
        if price.get("billing_scheme") == "tiered":
            raise StripeMappingError(f"{path}.billing_scheme", "tiered prices are not supported")
        raise StripeMappingError(f"{path}.unit_amount", "is required for a licensed price")
    value = Decimal(str(raw))
    if value == value.to_integral_value() or metered:
        return value.to_integral_value(rounding=ROUND_HALF_UP), quantity
    return (value * quantity).to_integral_value(rounding=ROUND_HALF_UP), 1


def _billing_interval(items: list[dict[str, Any]]) -> tuple[str, int]:
    """Interval of the first licensed item (the engine normalises discounts by it)."""
    first = next((i for i in items if i["usage_type"] == "licensed"), items[0])
    return first["interval"], first["interval_count"]


def _discount(
    sub: dict[str, Any], currency: str, interval: tuple[str, int], warnings: list[str]
) -> dict[str, Any] | None:
    candidates: list[Any] = []
    if sub.get("discount"):
        candidates.append(sub["discount"])
    candidates += [d for d in sub.get("discounts") or [] if d]
    resolved = [d for d in candidates if isinstance(d, dict)]
    known = {d.get("id") for d in resolved}
    unresolved = [d for d in candidates if not isinstance(d, dict) and d not in known]
    if unresolved and not resolved:
        warnings.append(
            f"discounts {unresolved} are not expanded in the payload: mapped without a discount"
        )
        return None
    if not resolved:
        return None
    if len(resolved) > 1 or unresolved:
        warnings.append("several discounts: only the first is represented in the ledger terms")
    return _coupon_to_discount(resolved[0], currency, interval)


def _coupon_to_discount(
    discount: dict[str, Any], currency: str, interval: tuple[str, int]
) -> dict[str, Any]:
    coupon = discount.get("coupon") or (discount.get("source") or {}).get("coupon")
    if discount.get("object") == "coupon":
        coupon = discount
    path = "data.object.discount.coupon"
    if not isinstance(coupon, dict):
        raise StripeMappingError(path, "the coupon must be expanded in the payload")
    duration = coupon.get("duration")
    if duration not in ("once", "repeating", "forever"):
        raise StripeMappingError(f"{path}.duration", f"unknown duration {duration!r}")
    out: dict[str, Any] = {"duration": duration, "code": _code(discount, coupon)}
    if coupon.get("percent_off") is not None:
        out |= {"kind": "percent", "value": str(coupon["percent_off"])}
    elif coupon.get("amount_off") is not None:
        coupon_currency = currency_code(coupon.get("currency") or currency, f"{path}.currency")
        if coupon_currency != currency:
            raise StripeMappingError(
                f"{path}.currency", f"{coupon_currency} differs from the subscription's {currency}"
            )
        out |= {
            "kind": "amount",
            "value": ledger_minor(coupon["amount_off"], currency, f"{path}.amount_off"),
        }
    else:
        raise StripeMappingError(path, "needs percent_off or amount_off")
    if duration == "repeating":
        out["duration_in_intervals"] = _intervals(coupon.get("duration_in_months") or 1, interval)
    return out


_MONTHS_PER_UNIT = {"day": Decimal(12) / 365, "week": Decimal(12) / 52, "month": 1, "year": 12}


def _intervals(months: int, interval: tuple[str, int]) -> int:
    """`duration_in_months` in billing intervals, rounded up, at least 1."""
    unit, count = interval
    per_interval = Decimal(_MONTHS_PER_UNIT[unit]) * count
    return max(1, int((Decimal(months) / per_interval).to_integral_value(rounding=ROUND_CEILING)))


def _missing(path: str) -> str:
    raise StripeMappingError(path, "is required")


def _code(discount: dict[str, Any], coupon: dict[str, Any]) -> str | None:
    promo = discount.get("promotion_code")
    if isinstance(promo, dict) and promo.get("code"):
        return str(promo["code"])
    return coupon.get("id") or coupon.get("name")
