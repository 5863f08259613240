"""`invoice.paid`, `invoice.payment_failed` and `charge.refunded` -> ledger payment events.

- Invoices: the subscription is `parent.subscription_details.subscription` (API versions from
  2025-03-31) or the top-level `subscription` (earlier). An invoice with no subscription (a
  one-off invoice) is ignored: it has no MRR effect and the ledger's invoice events require one.
  `invoice.paid` -> `invoice.paid` with `amount_paid`; `invoice.payment_failed` ->
  `invoice.payment_failed` with `amount_due`.
- `charge.refunded` -> `refund.issued`. `amount` is this refund only: `amount_refunded` minus
  `previous_attributes.amount_refunded` when Stripe sends it (the charge carries the cumulative
  total). `invoice_id` is `charge.invoice` (API versions before 2025-03-31), else the charge id
  (the ledger field is named for invoices; a charge id is the closest stable reference).
  Charges without a customer are ignored (the ledger keys events by customer).
"""

from __future__ import annotations

from typing import Any

from ledger.adapters.stripe_common import (
    Mapped,
    StripeMappingError,
    currency_code,
    envelope,
    ledger_minor,
    object_id,
    optional_id,
)

INVOICE_EVENTS = frozenset({"invoice.paid", "invoice.payment_failed"})
CHARGE_EVENTS = frozenset({"charge.refunded"})


def map_invoice(
    stripe_type: str, invoice: dict[str, Any], previous: dict[str, Any], occurred_at: str
) -> Mapped:
    """Map `invoice.paid` / `invoice.payment_failed` (`invoice` = `data.object`)."""
    del previous  # invoices are mapped from their current state only
    subscription = _invoice_subscription(invoice)
    if subscription is None:
        return Mapped.ignore("invoice has no subscription (one-off invoice): no MRR effect")
    customer_id = object_id(invoice.get("customer"), "data.object.customer")
    currency = currency_code(invoice.get("currency"), "data.object.currency")
    invoice_id = object_id(invoice.get("id"), "data.object.id")
    field = "amount_paid" if stripe_type == "invoice.paid" else "amount_due"
    amount = ledger_minor(_amount(invoice, field), currency, f"data.object.{field}")
    return Mapped(
        [
            envelope(
                stripe_type,  # the ledger uses Stripe's names for these two
                customer_id,
                occurred_at,
                subscription_id=subscription,
                invoice_id=invoice_id,
                currency=currency,
                **{field: amount},
            )
        ]
    )


def map_charge(
    stripe_type: str, charge: dict[str, Any], previous: dict[str, Any], occurred_at: str
) -> Mapped:
    """Map `charge.refunded` (`charge` = `data.object`) to `refund.issued`."""
    del stripe_type
    customer_id = optional_id(charge.get("customer"))
    if customer_id is None:
        return Mapped.ignore("charge has no customer: not attributable to a subscription")
    currency = currency_code(charge.get("currency"), "data.object.currency")
    total = _amount(charge, "amount_refunded")
    before = previous.get("amount_refunded")
    refunded = total - before if isinstance(before, int) and before <= total else total
    if refunded <= 0:
        return Mapped.ignore("charge.refunded with no refunded amount")
    invoice_id = optional_id(charge.get("invoice")) or object_id(charge.get("id"), "data.object.id")
    return Mapped(
        [
            envelope(
                "refund.issued",
                customer_id,
                occurred_at,
                invoice_id=invoice_id,
                amount=ledger_minor(refunded, currency, "data.object.amount_refunded"),
                currency=currency,
            )
        ]
    )


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return optional_id(details.get("subscription")) or optional_id(invoice.get("subscription"))


def _amount(obj: dict[str, Any], field: str) -> int:
    value = obj.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StripeMappingError(f"data.object.{field}", f"expected an amount >= 0, got {value!r}")
    return value
